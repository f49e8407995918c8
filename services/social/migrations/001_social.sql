-- Photo -> owner, projected from storage's object facts (or learned through permission checks).
CREATE TABLE social.photos (
  photo_id text PRIMARY KEY,
  owner text NOT NULL,
  deleted_at timestamptz
);

CREATE TABLE social.likes (
  photo_id text NOT NULL,
  user_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (photo_id, user_id)
);

-- seq orders a photo's comments newest first and is the keyset for pagination: inserts only ever
-- get larger values, so pages already read never shift.
CREATE TABLE social.comments (
  id text PRIMARY KEY,
  seq bigserial NOT NULL UNIQUE,
  photo_id text NOT NULL,
  author_id text NOT NULL,
  parent_id text REFERENCES social.comments (id) ON DELETE CASCADE,
  text text NOT NULL,
  idempotency_key text,
  created_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  deleted_by text
);
CREATE INDEX comments_page ON social.comments (photo_id, seq DESC);
CREATE UNIQUE INDEX comments_idempotency ON social.comments (author_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Exact counters, changed in the same transaction as the rows they count.
CREATE TABLE social.counters (
  photo_id text PRIMARY KEY,
  likes integer NOT NULL DEFAULT 0 CHECK (likes >= 0),
  comments integer NOT NULL DEFAULT 0 CHECK (comments >= 0)
);
