// storage's table for the baselines: its migration (services/storage/migrations/001_objects.sql) under a schema
// of our own, seeded with the rows storage holds, and its object key rule.
import type pg from "pg";
import type { ObjectRow } from "./storage-fixture.ts";

export const OBJECTS_SCHEMA = `
  CREATE SCHEMA IF NOT EXISTS base;
  CREATE TABLE IF NOT EXISTS base.objects (key text PRIMARY KEY, owner text NOT NULL, blob text NOT NULL,
    size bigint NOT NULL, content_type text NOT NULL, sha256 text NOT NULL, etag text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now(), deleted_at timestamptz);
  CREATE INDEX IF NOT EXISTS objects_owner_live ON base.objects (owner) WHERE deleted_at IS NULL;`;

export async function seedObjects(pool: pg.Pool, rows: ObjectRow[]): Promise<void> {
  await pool.query(OBJECTS_SCHEMA);
  for (const r of rows) {
    await pool.query(
      `INSERT INTO base.objects (key, owner, blob, size, content_type, sha256, etag, created_at, updated_at, deleted_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (key) DO NOTHING`,
      [r.key, r.owner, r.blob, r.size, r.content_type, r.sha256, r.etag, r.created_at, r.updated_at, r.deleted_at],
    );
  }
}

/** The object key rule of @snapmesh/events and storage's keys.ts. */
export function validKey(key: unknown): key is string {
  return (
    typeof key === "string" &&
    key.length > 0 &&
    key.length <= 512 &&
    /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(key) &&
    !key.split("/").some((s) => s === "." || s === "..")
  );
}
