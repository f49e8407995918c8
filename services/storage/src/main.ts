import { fileURLToPath } from "node:url";
import { StorageObjectDelete, StorageObjectPut, StorageUrlSign } from "@snapmesh/events";
import { loadConfig, runService, Service, tooLarge, unauthorized } from "@snapmesh/runtime";
import type { Request } from "express";
import { createBackend } from "./backends/index.js";
import { type StorageConfig, storageConfigSchema } from "./config.js";
import { downloadHandler } from "./download.js";
import { ingest, ingestBuffer } from "./ingest.js";
import { checkKey } from "./keys.js";
import { commitObject, deleteObject } from "./objects.js";
import { parseSigningKeys } from "./signing.js";
import { signUrls } from "./urls.js";

export { type StorageConfig, storageConfigSchema };

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));

export function createStorageService(config: StorageConfig): Service {
  const needs = config.STORAGE_BACKEND === "nats" ? (["nats"] as const) : [];
  const service = new Service({ name: "storage", schema: "storage", migrations: MIGRATIONS, config, needs });
  const backend = createBackend(config, () => service.nats);
  service.beforeClose(() => backend.close());
  const keys = parseSigningKeys(config.STORAGE_SIGNING_KEYS);
  const limits = { maxBytes: config.STORAGE_MAX_OBJECT_BYTES, allowedTypes: config.STORAGE_ALLOWED_TYPES };
  const publicBase = () => config.STORAGE_PUBLIC_URL ?? `http://127.0.0.1:${service.port ?? config.PORT}`;
  const keyParam = (req: Request) => checkKey((req.params.key as unknown as string[]).join("/"));

  service.command(StorageObjectPut, async (data, ctx) => {
    const owner = ctx.requireUser().id;
    const blob = await ingestBuffer(backend, Buffer.from(data.data, "base64"), data.contentType, limits);
    try {
      return await commitObject(ctx, backend, config.STORAGE_USER_QUOTA_BYTES, data.key, owner, blob);
    } catch (err) {
      await backend.delete(blob.blob).catch(() => {});
      throw err;
    }
  });

  service.command(StorageObjectDelete, async (data, ctx) => deleteObject(ctx, backend, data.key, ctx.requireUser().id));

  service.command(StorageUrlSign, async (data, ctx) => ({
    items: await signUrls(ctx.tx, keys[0]!, publicBase(), data.keys, {
      ttlSeconds: data.ttlSeconds ?? config.STORAGE_URL_TTL_SECONDS,
      maxTtlSeconds: config.STORAGE_URL_TTL_MAX_SECONDS,
    }),
  }));

  // Streamed upload: the body goes to the backend as it arrives; metadata and the fact commit afterwards.
  service.app.put("/v1/objects/*key", async (req, res) => {
    const key = keyParam(req);
    const user = await service.registry.userFrom(req.header("authorization"));
    if (!user) throw unauthorized();
    const declared = Number(req.header("content-length") ?? 0);
    if (declared > limits.maxBytes) {
      res.setHeader("connection", "close");
      throw tooLarge(`the object exceeds ${limits.maxBytes} bytes`, "object_too_large", { limit: limits.maxBytes });
    }
    const blob = await ingest(backend, req, req.header("content-type"), limits);
    try {
      const stored = await service.registry.withEffects({ user, traceparent: req.header("traceparent") }, (ctx) =>
        commitObject(ctx, backend, config.STORAGE_USER_QUOTA_BYTES, key, user.id, blob),
      );
      res.status(201).setHeader("etag", stored.etag).json(stored);
    } catch (err) {
      await backend.delete(blob.blob).catch(() => {});
      throw err;
    }
  });
  service.rest("delete", "/v1/objects/*key", StorageObjectDelete, (req) => ({ key: keyParam(req) }));
  service.rest("post", "/v1/temp-urls", StorageUrlSign, (req) => req.body);
  service.app.get("/v1/objects/*key", downloadHandler({ db: () => service.db, backend, keys, keyParam }));
  return service;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runService(createStorageService(loadConfig(storageConfigSchema)));
}
