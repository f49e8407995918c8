import {
  SharecodeCreate,
  SharecodeCreated,
  SharecodeExpire,
  SharecodeResolve,
  SharecodeScanned,
  StorageObjectDeleted,
} from "@snapmesh/events";
import { defineService, onCommand, onFact, rest } from "@snapmesh/runtime";
import { shareCodeConfigSchema } from "./config.js";
import { shareCodeDeps } from "./deps.js";
import { create } from "./handlers/create.js";
import { expire, purge } from "./handlers/expire.js";
import { imageDeleted } from "./handlers/image-deleted.js";
import { resolve } from "./handlers/resolve.js";

/** Short share codes with a QR image: the payload stays here, the image in storage. */
export const shareCode = defineService({
  name: "share-code",
  config: shareCodeConfigSchema,
  migrations: new URL("../migrations", import.meta.url),
  needs: ["db"],
  events: [SharecodeCreated, SharecodeScanned],
  deps: shareCodeDeps,
  handlers: [
    onCommand(SharecodeCreate, create),
    onCommand(SharecodeResolve, resolve),
    onCommand(SharecodeExpire, expire, { internal: true }),
    onFact(StorageObjectDeleted, imageDeleted),
  ],
  routes: [
    rest.command("post", "/v1/share-codes", SharecodeCreate, (req) => req.body, { status: 201 }),
    rest.command("get", "/v1/share-codes/:code", SharecodeResolve, (req) => ({ code: req.params.code })),
  ],
  tasks: {
    // A replica purges on its own timer when SHARECODE_PURGE_INTERVAL_SECONDS > 0; in a cluster the chart's
    // CronJob runs `main purge` instead.
    purge: { run: (ctx, deps) => purge(ctx, deps), everySeconds: (config) => config.SHARECODE_PURGE_INTERVAL_SECONDS },
  },
});
