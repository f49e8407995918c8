import { z } from "zod";
import { isoTime, objectKey, userId } from "./common.js";
import { command, fact, reply } from "./define.js";

const stored = z.object({
  key: objectKey,
  size: z.number().int().nonnegative().describe("bytes"),
  etag: z.string().describe("quoted entity tag, as sent in the ETag header"),
  contentType: z.string().describe("the type recognised from the object's first bytes"),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .describe("hex SHA-256 of the bytes"),
});

export const StorageObjectStored = reply(
  "storage",
  "snapmesh.storage.object.stored",
  "The object was stored (reply to object.put).",
  () => stored,
);

export const StorageObjectPut = command(
  "storage",
  "snapmesh.storage.object.put",
  "Store a small object (base64 data, at most 1 MiB) owned by the caller. Large files use PUT /v1/objects/{key}.",
  () =>
    z.object({
      key: objectKey,
      contentType: z.string().min(1).max(100).describe("declared media type; must agree with the bytes").optional(),
      data: z.base64().max(1_400_000).describe("the bytes, base64 (at most ~1 MiB decoded)"),
    }),
  StorageObjectStored,
);

export const StorageObjectRemoved = reply(
  "storage",
  "snapmesh.storage.object.removed",
  "The object was deleted (reply to object.delete).",
  () => z.object({ key: objectKey }),
);

export const StorageObjectDelete = command(
  "storage",
  "snapmesh.storage.object.delete",
  "Delete an object; only its owner may.",
  () => z.object({ key: objectKey }),
  StorageObjectRemoved,
);

export const StorageUrlSigned = reply(
  "storage",
  "snapmesh.storage.url.signed",
  "Temporary download URLs, one item per requested key (an item carries an error when the key cannot be signed).",
  () =>
    z.object({
      items: z.array(
        z.object({
          key: z.string(),
          url: z.url().optional(),
          expiresAt: isoTime.optional(),
          error: z.object({ code: z.string(), message: z.string() }).optional(),
        }),
      ),
    }),
);

export const StorageUrlSign = command(
  "storage",
  "snapmesh.storage.url.sign",
  "Issue temporary download URLs for up to 50 objects (like getTempFileURL).",
  () =>
    z.object({
      keys: z.array(objectKey).min(1).max(50).describe("1 to 50 object keys"),
      ttlSeconds: z
        .number()
        .int()
        .min(1)
        .max(30 * 24 * 3600)
        .optional()
        .describe("lifetime; default 7200, capped by the service"),
    }),
  StorageUrlSigned,
);

export const StorageObjectCreated = fact(
  "storage",
  "snapmesh.storage.object.created",
  "An object was stored (new, or a new version of the same key).",
  () => stored.extend({ owner: userId }),
);

export const StorageObjectDeleted = fact(
  "storage",
  "snapmesh.storage.object.deleted",
  "An object was deleted; its bytes are gone.",
  () => z.object({ key: objectKey, owner: userId }),
);
