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

/** The live objects among `keys` (owner and bytes' sha256): one query for a whole batch. */
export async function liveObjects(db: Queryable, keys: string[]): Promise<Map<string, Pick<ObjectRow, "owner" | "sha256">>> {
  const { rows } = await db.query<{ key: string; owner: string; sha256: string }>(
    "SELECT key, owner, sha256 FROM storage.objects WHERE key = ANY($1) AND deleted_at IS NULL",
    [keys],
  );
  return new Map(rows.map((r) => [r.key, { owner: r.owner, sha256: r.sha256 }]));
}

/** Bytes a user keeps in live objects, the one under `exceptKey` left out (it is being replaced). */
export async function usedBytes(db: Queryable, owner: string, exceptKey: string): Promise<number> {
  const { rows } = await db.query<{ used: number }>(
    "SELECT coalesce(sum(size), 0)::float8 AS used FROM storage.objects WHERE owner = $1 AND deleted_at IS NULL AND key <> $2",
    [owner, exceptKey],
  );
  return rows[0]?.used ?? 0;
}

/**
 * Inserts or replaces the object `key`. A key keeps its first owner forever, deleted or not: the row is
 * only replaced for that owner, so two users racing to create one new key cannot both win. False when
 * the key belongs to someone else (nothing written).
 */
export async function upsertObject(
  db: Queryable,
  o: Pick<ObjectRow, "key" | "owner" | "blob" | "size" | "contentType" | "sha256" | "etag">,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO storage.objects (key, owner, size, content_type, sha256, etag, blob)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (key) DO UPDATE SET size = $3, content_type = $4, sha256 = $5, etag = $6, blob = $7,
       created_at = CASE WHEN storage.objects.deleted_at IS NULL THEN storage.objects.created_at ELSE now() END,
       updated_at = now(), deleted_at = NULL
     WHERE storage.objects.owner = $2`,
    [o.key, o.owner, o.size, o.contentType, o.sha256, o.etag, o.blob],
  );
  return rowCount > 0;
}

/**
 * Serialises one owner's uploads until the transaction ends, so the quota sum and the insert that
 * follows it are one step: parallel uploads cannot each see room that only one of them may take.
 */
export async function lockOwnerQuota(db: Queryable, owner: string): Promise<void> {
  await db.query("SELECT pg_advisory_xact_lock(hashtext('storage.quota'), hashtext($1))", [owner]);
}

export async function markDeleted(db: Queryable, key: string): Promise<void> {
  await db.query("UPDATE storage.objects SET deleted_at = now() WHERE key = $1", [key]);
}
