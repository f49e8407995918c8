import type { Queryable } from "@snapmesh/runtime";

export interface CommentRow {
  id: string;
  seq: string;
  photoId: string;
  authorId: string;
  parentId: string | null;
  text: string;
  createdAt: string;
  deleted: boolean;
}

const COMMENT = `id, seq::text AS seq, photo_id AS "photoId", author_id AS "authorId", parent_id AS "parentId",
  CASE WHEN deleted_at IS NULL THEN text ELSE '' END AS text,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "createdAt", deleted_at IS NOT NULL AS deleted`;

/**
 * Sets or clears one user's like and moves the exact counter, in one statement: whether the row changed,
 * and the count after it (the counter's new value when it moved; otherwise its current one).
 */
export async function writeLike(
  tx: Queryable,
  photoId: string,
  userId: string,
  on: boolean,
): Promise<{ changed: boolean; likes: number }> {
  const { rows } = await tx.query<{ changed: boolean; likes: number }>(on ? LIKE_SET : LIKE_UNSET, [photoId, userId]);
  return rows[0]!;
}

// A data-modifying CTE's effect is invisible to the rest of its statement, so the count comes from `bumped`
// when the counter moved and from the table (unchanged) when it did not.
export const LIKE_SET = `
  WITH changed AS (
    INSERT INTO social.likes (photo_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1),
  bumped AS (
    INSERT INTO social.counters (photo_id, likes) SELECT $1, 1 FROM changed
    ON CONFLICT (photo_id) DO UPDATE SET likes = social.counters.likes + 1 RETURNING likes)
  SELECT EXISTS (SELECT 1 FROM changed) AS changed,
    coalesce((SELECT likes FROM bumped), (SELECT likes FROM social.counters WHERE photo_id = $1), 0) AS likes`;

export const LIKE_UNSET = `
  WITH changed AS (
    DELETE FROM social.likes WHERE photo_id = $1 AND user_id = $2 RETURNING 1),
  bumped AS (
    INSERT INTO social.counters (photo_id, likes) SELECT $1, 0 FROM changed
    ON CONFLICT (photo_id) DO UPDATE SET likes = social.counters.likes - 1 RETURNING likes)
  SELECT EXISTS (SELECT 1 FROM changed) AS changed,
    coalesce((SELECT likes FROM bumped), (SELECT likes FROM social.counters WHERE photo_id = $1), 0) AS likes`;

async function bump(tx: Queryable, photoId: string, column: "likes" | "comments", delta: number): Promise<void> {
  await tx.query(
    `INSERT INTO social.counters (photo_id, ${column}) VALUES ($1, GREATEST($2, 0))
     ON CONFLICT (photo_id) DO UPDATE SET ${column} = social.counters.${column} + $2`,
    [photoId, delta],
  );
}

/** Likes, comments and whether `userId` liked the photo: one round trip. */
export async function socialSummary(db: Queryable, photoId: string, userId: string | undefined) {
  const { rows } = await db.query<{ likes: number; comments: number; likedByMe: boolean }>(
    `SELECT coalesce(c.likes, 0) AS likes, coalesce(c.comments, 0) AS comments,
       EXISTS (SELECT 1 FROM social.likes l WHERE l.photo_id = $1 AND l.user_id = $2) AS "likedByMe"
     FROM (SELECT 1) AS one LEFT JOIN social.counters c ON c.photo_id = $1`,
    [photoId, userId ?? ""],
  );
  return rows[0]!;
}

export async function insertComment(
  tx: Queryable,
  c: { id: string; photoId: string; authorId: string; parentId: string | null; text: string; idempotencyKey: string | null },
): Promise<{ row: CommentRow; created: boolean }> {
  const inserted = await tx.query<CommentRow>(
    `INSERT INTO social.comments (id, photo_id, author_id, parent_id, text, idempotency_key)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING ${COMMENT}`,
    [c.id, c.photoId, c.authorId, c.parentId, c.text, c.idempotencyKey],
  );
  if (inserted.rows[0]) {
    await bump(tx, c.photoId, "comments", 1);
    return { row: inserted.rows[0], created: true };
  }
  const prior = await tx.query<CommentRow>(
    `SELECT ${COMMENT} FROM social.comments WHERE author_id = $1 AND idempotency_key = $2`,
    [c.authorId, c.idempotencyKey],
  );
  return { row: prior.rows[0]!, created: false };
}

export async function findComment(db: Queryable, id: string, forUpdate = false): Promise<CommentRow | undefined> {
  const { rows } = await db.query<CommentRow>(
    `SELECT ${COMMENT} FROM social.comments WHERE id = $1${forUpdate ? " FOR UPDATE" : ""}`,
    [id],
  );
  return rows[0];
}

export async function softDeleteComment(tx: Queryable, c: CommentRow, by: string): Promise<void> {
  await tx.query("UPDATE social.comments SET deleted_at = now(), deleted_by = $2 WHERE id = $1", [c.id, by]);
  await bump(tx, c.photoId, "comments", -1);
}

/** Newest first, `limit` rows after the cursor (a seq), fetching one more to know whether a next page exists. */
export async function pageComments(db: Queryable, photoId: string, limit: number, beforeSeq: string | undefined) {
  const { rows } = await db.query<CommentRow>(
    `SELECT ${COMMENT} FROM social.comments
     WHERE photo_id = $1 AND ($2::bigint IS NULL OR seq < $2::bigint)
     ORDER BY social.comments.seq DESC LIMIT $3`,
    [photoId, beforeSeq ?? null, limit + 1],
  );
  return { items: rows.slice(0, limit), more: rows.length > limit };
}

export async function photoOwner(db: Queryable, photoId: string): Promise<string | undefined> {
  const { rows } = await db.query<{ owner: string }>(
    "SELECT owner FROM social.photos WHERE photo_id = $1 AND deleted_at IS NULL",
    [photoId],
  );
  return rows[0]?.owner;
}

/**
 * Records `owner` as the photo's owner. An owner never changes once recorded: a fact naming someone else
 * for a known photo (deleted or not) changes nothing and answers false. The same owner's re-upload revives
 * a deleted photo.
 */
export async function recordPhoto(tx: Queryable, photoId: string, owner: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    `INSERT INTO social.photos (photo_id, owner) VALUES ($1, $2)
     ON CONFLICT (photo_id) DO UPDATE SET deleted_at = NULL WHERE social.photos.owner = $2`,
    [photoId, owner],
  );
  return rowCount > 0;
}

/**
 * A deleted photo takes its likes, comments and counters with it; safe to run twice. A fact naming
 * someone other than the recorded owner changes nothing and answers false.
 */
export async function forgetPhoto(tx: Queryable, photoId: string, owner: string): Promise<boolean> {
  const { rows } = await tx.query<{ owner: string }>("SELECT owner FROM social.photos WHERE photo_id = $1 FOR UPDATE", [photoId]);
  if (rows[0] && rows[0].owner !== owner) return false;
  await tx.query("DELETE FROM social.likes WHERE photo_id = $1", [photoId]);
  await tx.query("DELETE FROM social.comments WHERE photo_id = $1", [photoId]);
  await tx.query("DELETE FROM social.counters WHERE photo_id = $1", [photoId]);
  await tx.query("UPDATE social.photos SET deleted_at = now() WHERE photo_id = $1 AND deleted_at IS NULL", [photoId]);
  return true;
}

/** The public shape of a comment: the row without its internal keyset position. */
export function toComment({ seq: _seq, ...comment }: CommentRow) {
  return comment;
}
