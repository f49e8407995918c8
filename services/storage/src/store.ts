import type { Queryable } from "@snapmesh/runtime";

export interface ObjectRow {
  key: string;
  owner: string;
  /** Where the bytes are in the backend: a fresh name per upload, so a replaced object never mixes versions. */
  blob: string;
  size: number;
  contentType: string;
  sha256: string;
  etag: string;
  createdAt: string;
  deletedAt: string | null;
}

const COLUMNS = `key, owner, blob, size::float8 AS size, content_type AS "contentType", sha256, etag,
  created_at AS "createdAt", deleted_at AS "deletedAt"`;

export async function findObject(
  db: Queryable,
  key: string,
  options: { forUpdate?: boolean } = {},
): Promise<ObjectRow | undefined> {
  const { rows } = await db.query<ObjectRow>(
    `SELECT ${COLUMNS} FROM storage.objects WHERE key = $1${options.forUpdate ? " FOR UPDATE" : ""}`,
    [key],
  );
  return rows[0];
}

export async function liveObject(db: Queryable, key: string): Promise<ObjectRow | undefined> {
  const row = await findObject(db, key);
  return row && !row.deletedAt ? row : undefined;
}

/** Which of `keys` name live objects: one query for a whole batch. */
export async function liveKeys(db: Queryable, keys: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ key: string }>("SELECT key FROM storage.objects WHERE key = ANY($1) AND deleted_at IS NULL", [
    keys,
  ]);
  return new Set(rows.map((r) => r.key));
}

/** Bytes a user keeps in live objects, the one under `exceptKey` left out (it is being replaced). */
export async function usedBytes(db: Queryable, owner: string, exceptKey: string): Promise<number> {
  const { rows } = await db.query<{ used: number }>(
    "SELECT coalesce(sum(size), 0)::float8 AS used FROM storage.objects WHERE owner = $1 AND deleted_at IS NULL AND key <> $2",
    [owner, exceptKey],
  );
  return rows[0]?.used ?? 0;
}

export async function upsertObject(
  db: Queryable,
  o: Pick<ObjectRow, "key" | "owner" | "blob" | "size" | "contentType" | "sha256" | "etag">,
): Promise<void> {
  await db.query(
    `INSERT INTO storage.objects (key, owner, size, content_type, sha256, etag, blob)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (key) DO UPDATE SET owner = $2, size = $3, content_type = $4, sha256 = $5, etag = $6, blob = $7,
       created_at = CASE WHEN storage.objects.deleted_at IS NULL THEN storage.objects.created_at ELSE now() END,
       updated_at = now(), deleted_at = NULL`,
    [o.key, o.owner, o.size, o.contentType, o.sha256, o.etag, o.blob],
  );
}

export async function markDeleted(db: Queryable, key: string): Promise<void> {
  await db.query("UPDATE storage.objects SET deleted_at = now() WHERE key = $1", [key]);
}
