import type { DataOf, StorageObjectDelete } from "@snapmesh/events";
import type { HandlerContext, ReplyData } from "@snapmesh/runtime";
import type { StorageDeps } from "../deps.js";
import { deleteObject } from "../objects.js";

export async function objectDelete(
  data: DataOf<typeof StorageObjectDelete>,
  ctx: HandlerContext,
  deps: StorageDeps,
): Promise<ReplyData<typeof StorageObjectDelete>> {
  return deleteObject(ctx, deps.backend, data.key, ctx.requireUser().id);
}
