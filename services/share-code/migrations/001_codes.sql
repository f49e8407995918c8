CREATE TABLE sharecode.codes (
  code text PRIMARY KEY,
  page text NOT NULL,
  params jsonb NOT NULL,
  created_by text NOT NULL,
  provider text NOT NULL,
  image_key text NOT NULL,
  image_gone boolean NOT NULL DEFAULT false,
  scans bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz
);
CREATE INDEX codes_expiry ON sharecode.codes (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX codes_image ON sharecode.codes (image_key);
