CREATE TABLE auth.users (
  id text PRIMARY KEY,
  provider text NOT NULL,
  subject text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_sign_in_at timestamptz NOT NULL DEFAULT now(),
  sign_ins bigint NOT NULL DEFAULT 1,
  UNIQUE (provider, subject)
);
