import { fileURLToPath } from "node:url";
import { StorageObjectDelete, StorageObjectPut, StorageUrlSign } from "@snapmesh/events";
import {
  askPermission,
  loadConfig,
  runMigrations,
  runService,
  Service,
  tooLarge,
  type User,
  unauthorized,
} from "@snapmesh/runtime";
import type { Request } from "express";
import { createBackend } from "./backends/index.js";
import { type StorageConfig, storageConfigSchema } from "./config.js";
import { downloadHandler } from "./download.js";
import { ingest, ingestBuffer } from "./ingest.js";
import { checkKey } from "./keys.js";
import { commitObject, deleteObject } from "./objects.js";
import { parseSigningKeys } from "./signing.js";
import { UploadGate } from "./upload-gate.js";
import { signUrls, type UrlCaller } from "./urls.js";

export { type StorageConfig, storageConfigSchema };

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));

export interface StorageOptions {
  /** The bound on uploads in progress (tests pass their own to watch it); default from the config. */
  uploads?: UploadGate;
}

export function createStorageService(config: StorageConfig, options: StorageOptions = {}): Service {
  const needs = config.STORAGE_BACKEND === "nats" ? (["nats"] as const) : [];
  const service = new Service({ name: "storage", schema: "storage", migrations: MIGRATIONS, config, needs });
  const backend = createBackend(config, () => service.nats);
  service.beforeClose(() => backend.close());
  const keys = parseSigningKeys(config.STORAGE_SIGNING_KEYS);
  const limits = { maxBytes: config.STORAGE_MAX_OBJECT_BYTES, allowedTypes: config.STORAGE_ALLOWED_TYPES };
  const publicBase = () => config.STORAGE_PUBLIC_URL ?? `http://127.0.0.1:${service.port ?? config.PORT}`;
  const keyParam = (req: Request) => checkKey((req.params.key as unknown as string[]).join("/"));
  const uploads = options.uploads ?? UploadGate.fromConfig(config);
  const authUrl = config.STORAGE_PERMISSION_CHECK === "1" ? config.SNAPMESH_AUTH_URL : undefined;
  const urlCaller = (user: User): UrlCaller => {
    const token = user.token;
    if (!authUrl || !token) return { id: user.id };
    const mayRead = async (objectKey: string) =>
      (await askPermission(authUrl, `Bearer ${token}`, "read", `object:${objectKey}`, config.STORAGE_PERMISSION_TIMEOUT_MS))
        .allowed;
    return { id: user.id, mayRead };
  };

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

  service.command(StorageUrlSign, async (data, ctx) => {
    const caller = urlCaller(ctx.requireUser());
    const ttl = {
      ttlSeconds: data.ttlSeconds ?? config.STORAGE_URL_TTL_SECONDS,
      maxTtlSeconds: config.STORAGE_URL_TTL_MAX_SECONDS,
    };
    return { items: await signUrls(ctx.tx, keys[0]!, publicBase(), data.keys, ttl, caller) };
  });

  // Streamed upload: the body goes to the backend as it arrives; metadata and the fact commit afterwards.
  service.app.put("/v1/objects/*key", async (req, res) => {
    try {
      const key = keyParam(req);
      const user = await service.registry.userFrom(req.header("authorization"));
      if (!user) throw unauthorized();
      const declared = Number(req.header("content-length") ?? 0);
      if (declared > limits.maxBytes) {
        throw tooLarge(`the object exceeds ${limits.maxBytes} bytes`, "object_too_large", { limit: limits.maxBytes });
      }
      const release = uploads.enter(user.id);
      try {
        const blob = await ingest(backend, req, req.header("content-type"), {
          ...limits,
          idleTimeoutMs: config.STORAGE_UPLOAD_IDLE_TIMEOUT_MS,
        });
        try {
          const stored = await service.registry.withEffects({ user, traceparent: req.header("traceparent") }, (ctx) =>
            commitObject(ctx, backend, config.STORAGE_USER_QUOTA_BYTES, key, user.id, blob),
          );
          res.status(201).setHeader("etag", stored.etag).json(stored);
        } catch (err) {
          await backend.delete(blob.blob).catch(() => {});
          throw err;
        }
      } finally {
        release();
      }
    } catch (err) {
      // A refusal before the whole body arrived closes the connection: its socket is not held for the rest.
      if (!req.complete) res.setHeader("connection", "close");
      throw err;
    }
  });
  service.rest("delete", "/v1/objects/*key", StorageObjectDelete, (req) => ({ key: keyParam(req) }));
  service.rest("post", "/v1/temp-urls", StorageUrlSign, (req) => req.body);
  service.app.get("/v1/objects/*key", downloadHandler({ db: () => service.db, backend, keys, keyParam }));
  return service;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === "migrate") await runMigrations({ name: "storage", schema: "storage", migrations: MIGRATIONS });
  else await runService(createStorageService(loadConfig(storageConfigSchema)));
}
