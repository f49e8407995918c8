import type { DataOf, StorageObjectCreated, StorageObjectDeleted } from "@snapmesh/events";
import type { HandlerContext } from "@snapmesh/runtime";
import { forgetPhoto, recordPhoto } from "../store.js";

// Owners never change once recorded: a fact naming another owner for a known photo is logged, not applied.

export async function photoCreated(data: DataOf<typeof StorageObjectCreated>, ctx: HandlerContext): Promise<void> {
  if (!(await recordPhoto(ctx.tx, data.key, data.owner)))
    ctx.log.warn({ photoId: data.key, claimed: data.owner }, "photo owner mismatch: fact ignored");
}

export async function photoDeleted(data: DataOf<typeof StorageObjectDeleted>, ctx: HandlerContext): Promise<void> {
  if (!(await forgetPhoto(ctx.tx, data.key, data.owner)))
    ctx.log.warn({ photoId: data.key, claimed: data.owner }, "photo owner mismatch: fact ignored");
}
