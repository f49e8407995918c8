import { httpReply, tooLarge, type UploadContext, type UploadRequest } from "@snapmesh/runtime";
import type { StorageDeps } from "../deps.js";
import { ingest } from "../ingest.js";
import { checkKey } from "../keys.js";
import { commitObject } from "../objects.js";

/**
 * `PUT /v1/objects/{key}`: the body goes to the backend as it arrives; metadata and the fact commit
 * afterwards, and a blob whose commit fails is removed again.
 */
export async function objectUpload(req: UploadRequest, ctx: UploadContext, deps: StorageDeps) {
  const key = checkKey(req.params.key!);
  const { maxBytes } = deps.limits;
  // Refused before reading a byte: a declared length over the limit would only fail later, at that size.
  if (Number(req.header("content-length") ?? 0) > maxBytes) {
    throw tooLarge(`the object exceeds ${maxBytes} bytes`, "object_too_large", { limit: maxBytes });
  }
  const user = await ctx.requireUser();
  const release = deps.uploads.enter(user.id);
  try {
    const blob = await ingest(deps.backend, req.stream, req.header("content-type"), {
      ...deps.limits,
      idleTimeoutMs: deps.config.STORAGE_UPLOAD_IDLE_TIMEOUT_MS,
    });
    try {
      const stored = await ctx.effects(user, (tx) =>
        commitObject(tx, deps.backend, deps.config.STORAGE_USER_QUOTA_BYTES, key, user.id, blob),
      );
      return httpReply({ status: 201, headers: { etag: stored.etag }, json: stored });
    } catch (err) {
      await deps.backend.delete(blob.blob).catch(() => {});
      throw err;
    }
  } finally {
    release();
  }
}
