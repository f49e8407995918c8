CREATE TABLE storage.objects (
  key text PRIMARY KEY,
  owner text NOT NULL,
  blob text NOT NULL,
  size bigint NOT NULL,
  content_type text NOT NULL,
  sha256 text NOT NULL,
  etag text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz
);
CREATE INDEX objects_owner_live ON storage.objects (owner) WHERE deleted_at IS NULL;
