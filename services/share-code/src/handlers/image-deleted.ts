import type { DataOf, StorageObjectDeleted } from "@snapmesh/events";
import type { HandlerContext } from "@snapmesh/runtime";
import { IMAGE_PREFIX } from "../codes.js";
import { markImageGone } from "../store.js";

// A deleted image is not re-drawn (only its creator could store a new one): the code keeps resolving
// and reports `imageStatus: "gone"`; the app can create a new code if it needs a picture.
export async function imageDeleted(data: DataOf<typeof StorageObjectDeleted>, ctx: HandlerContext): Promise<void> {
  if (data.key.startsWith(IMAGE_PREFIX)) await markImageGone(ctx.tx, data.key);
}
