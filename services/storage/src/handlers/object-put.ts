import type { DataOf, StorageObjectPut } from "@snapmesh/events";
import type { HandlerContext, ReplyData } from "@snapmesh/runtime";
import type { StorageDeps } from "../deps.js";
import { ingestBuffer } from "../ingest.js";
import { commitObject } from "../objects.js";

/** A small object sent inline (base64): its bytes go to the backend first, and are removed if the commit fails. */
export async function objectPut(
  data: DataOf<typeof StorageObjectPut>,
  ctx: HandlerContext,
  deps: StorageDeps,
): Promise<ReplyData<typeof StorageObjectPut>> {
  const owner = ctx.requireUser().id;
  const blob = await ingestBuffer(deps.backend, Buffer.from(data.data, "base64"), data.contentType, deps.limits);
  try {
    return await commitObject(ctx, deps.backend, deps.config.STORAGE_USER_QUOTA_BYTES, data.key, owner, blob);
  } catch (err) {
    await deps.backend.delete(blob.blob).catch(() => {});
    throw err;
  }
}
