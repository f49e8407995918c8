import { StorageObjectCreated, StorageObjectDeleted } from "@snapmesh/events";
import { type EffectsContext, forbidden, notFound, tooLarge } from "@snapmesh/runtime";
import type { BlobBackend } from "./backends/backend.js";
import type { Ingested } from "./ingest.js";
import { findObject, lockOwnerQuota, markDeleted, upsertObject, usedBytes } from "./store.js";

export interface StoredObject {
  key: string;
  size: number;
  etag: string;
  contentType: string;
  sha256: string;
}

export const etagOf = (sha256: string) => `"${sha256.slice(0, 32)}"`;

/**
 * Records an ingested blob as the object `key` of `owner` (replacing the owner's previous version) and
 * emits `object.created`, all in the caller's transaction. A key keeps its first owner, also after a
 * delete: nobody else can take it over (and so become the photo's owner in social). The owner's quota
 * lock makes the usage sum and the write one step; the row lock serialises concurrent uploads to one
 * key: the last commit wins and its blob is the one the metadata names; the loser's blob is removed.
 */
export async function commitObject(
  ctx: EffectsContext,
  backend: BlobBackend,
  quotaBytes: number,
  key: string,
  owner: string,
  blob: Ingested,
): Promise<StoredObject> {
  await lockOwnerQuota(ctx.tx, owner);
  const previous = await findObject(ctx.tx, key, { forUpdate: true });
  if (previous && previous.owner !== owner) throw notYours(key, previous.deletedAt !== null);
  const used = await usedBytes(ctx.tx, owner, key);
  if (used + blob.size > quotaBytes) {
    throw tooLarge(`storing ${blob.size} bytes would exceed your quota of ${quotaBytes} bytes`, "quota_exceeded", {
      quota: quotaBytes,
      used,
    });
  }
  const stored = { key, size: blob.size, etag: etagOf(blob.sha256), contentType: blob.contentType, sha256: blob.sha256 };
  // Another user may have created the key since the lookup above (no row to lock then): the insert decides.
  if (!(await upsertObject(ctx.tx, { ...stored, owner, blob: blob.blob }))) throw notYours(key, false);
  await ctx.emit(StorageObjectCreated, { ...stored, owner }, { subject: key });
  if (previous && previous.blob !== blob.blob) ctx.afterCommit(() => backend.delete(previous.blob));
  return stored;
}

function notYours(key: string, deleted: boolean) {
  return deleted
    ? forbidden(`object key '${key}' belonged to another user; a key keeps its first owner`, "key_taken")
    : forbidden(`object '${key}' belongs to another user`, "not_owner");
}

/** Owner-only delete: the metadata commits first, the blob goes after commit, `object.deleted` via the outbox. */
export async function deleteObject(
  ctx: EffectsContext,
  backend: BlobBackend,
  key: string,
  caller: string,
): Promise<{ key: string }> {
  const row = await findObject(ctx.tx, key, { forUpdate: true });
  if (!row || row.deletedAt) throw notFound(`no object '${key}'`, "object_not_found");
  if (row.owner !== caller) throw forbidden(`only the owner may delete '${key}'`, "not_owner");
  await markDeleted(ctx.tx, key);
  await ctx.emit(StorageObjectDeleted, { key, owner: row.owner }, { subject: key });
  ctx.afterCommit(() => backend.delete(row.blob));
  return { key };
}
