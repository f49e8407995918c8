import {
  StorageObjectCreated,
  StorageObjectDelete,
  StorageObjectDeleted,
  StorageObjectPut,
  StorageUrlSign,
} from "@snapmesh/events";
import { defineService, onCommand, type RouteRequest, rest } from "@snapmesh/runtime";
import { storageConfigSchema } from "./config.js";
import { storageDeps } from "./deps.js";
import { objectDelete } from "./handlers/object-delete.js";
import { objectPut } from "./handlers/object-put.js";
import { urlSign } from "./handlers/url-sign.js";
import { checkKey } from "./keys.js";
import { objectDownload } from "./routes/download.js";
import { objectUpload } from "./routes/upload.js";

const objectKey = (req: RouteRequest) => ({ key: checkKey(req.params.key!) });

/** Objects (photos, QR images): bytes in a blob backend, metadata and ownership in PostgreSQL, signed temporary URLs. */
export const storage = defineService({
  name: "storage",
  config: storageConfigSchema,
  migrations: new URL("../migrations", import.meta.url),
  // The NATS object store needs the connection even when facts go over HTTP.
  needs: (config) => (config.STORAGE_BACKEND === "nats" ? ["db", "nats"] : ["db"]),
  events: [StorageObjectCreated, StorageObjectDeleted],
  deps: storageDeps,
  handlers: [
    onCommand(StorageObjectPut, objectPut),
    onCommand(StorageObjectDelete, objectDelete),
    // Signing reads object rows and changes nothing: no transaction, no inbox.
    onCommand(StorageUrlSign, urlSign, { readOnly: true }),
  ],
  routes: [
    rest.upload("put", "/v1/objects/*key", objectUpload),
    rest.command("delete", "/v1/objects/*key", StorageObjectDelete, objectKey),
    rest.command("post", "/v1/temp-urls", StorageUrlSign, (req) => req.body),
    rest.query("/v1/objects/*key", objectDownload),
  ],
});
