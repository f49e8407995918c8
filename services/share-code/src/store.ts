import type { Queryable } from "@snapmesh/runtime";

export interface CodeRow {
  code: string;
  page: string;
  params: Record<string, unknown>;
  scans: number;
  expiresAt: string | null;
  imageGone: boolean;
  expired: boolean;
}

const ROW = `code, page, params, scans::int AS scans, image_gone AS "imageGone",
  to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS "expiresAt",
  (expires_at IS NOT NULL AND expires_at <= now()) AS expired`;

/** Inserts unless the code is taken (then returns false, and the caller draws another). */
export async function insertCode(
  tx: Queryable,
  c: { code: string; page: string; params: unknown; createdBy: string; provider: string; imageKey: string; ttlSeconds: number },
): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO sharecode.codes (code, page, params, created_by, provider, image_key, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7)) ON CONFLICT (code) DO NOTHING`,
    [c.code, c.page, JSON.stringify(c.params), c.createdBy, c.provider, c.imageKey, c.ttlSeconds],
  );
  return rowCount > 0;
}

export async function expiryOf(tx: Queryable, code: string): Promise<string> {
  const { rows } = await tx.query<{ e: string }>(
    `SELECT to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS e FROM sharecode.codes WHERE code = $1`,
    [code],
  );
  return rows[0]!.e;
}

/** Counts a scan of a live code (the row lock makes concurrent scans exact); undefined when not live. */
export async function scan(tx: Queryable, code: string): Promise<CodeRow | undefined> {
  const { rows } = await tx.query<CodeRow>(
    `UPDATE sharecode.codes SET scans = scans + 1
     WHERE code = $1 AND (expires_at IS NULL OR expires_at > now()) RETURNING ${ROW}`,
    [code],
  );
  return rows[0];
}

export async function findCode(db: Queryable, code: string): Promise<CodeRow | undefined> {
  const { rows } = await db.query<CodeRow>(`SELECT ${ROW} FROM sharecode.codes WHERE code = $1`, [code]);
  return rows[0];
}

export async function purgeExpired(tx: Queryable, graceSeconds: number): Promise<number> {
  const { rowCount } = await tx.query("DELETE FROM sharecode.codes WHERE expires_at < now() - make_interval(secs => $1)", [
    graceSeconds,
  ]);
  return rowCount;
}

export async function markImageGone(tx: Queryable, imageKey: string): Promise<void> {
  await tx.query("UPDATE sharecode.codes SET image_gone = true WHERE image_key = $1", [imageKey]);
}
