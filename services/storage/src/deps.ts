import { askPermission, type Runtime, type User } from "@snapmesh/runtime";
import type { BlobBackend } from "./backends/backend.js";
import { createBackend } from "./backends/index.js";
import type { StorageConfig } from "./config.js";
import type { IngestLimits } from "./ingest.js";
import { parseSigningKeys, type SigningKey } from "./signing.js";
import { UploadGate } from "./upload-gate.js";
import type { UrlCaller } from "./urls.js";

/** What `storage.create(env, options)` may be given. */
export interface StorageOptions {
  /** The bound on uploads in progress (tests pass their own to watch it); default from the config. */
  uploads?: UploadGate;
}

/** What storage's handlers and routes need besides their data and context; built once per process. */
export interface StorageDeps {
  config: Pick<
    StorageConfig,
    "STORAGE_USER_QUOTA_BYTES" | "STORAGE_URL_TTL_SECONDS" | "STORAGE_URL_TTL_MAX_SECONDS" | "STORAGE_UPLOAD_IDLE_TIMEOUT_MS"
  >;
  backend: BlobBackend;
  /** The first signs, all verify (rotation). */
  keys: SigningKey[];
  limits: IngestLimits;
  uploads: UploadGate;
  /** Where temporary URLs point: known only once the service listens when no public URL is configured. */
  publicBase(): string;
  /** The caller as URL signing sees them: with auth's `read` check when STORAGE_PERMISSION_CHECK=1. */
  urlCaller(user: User): UrlCaller;
}

export function storageDeps(rt: Runtime<StorageConfig>, options: StorageOptions): StorageDeps {
  const { config } = rt;
  const backend = createBackend(config, () => rt.nats());
  rt.onClose(() => backend.close());
  const authUrl = config.STORAGE_PERMISSION_CHECK === "1" ? config.SNAPMESH_AUTH_URL : undefined;
  return {
    config,
    backend,
    keys: parseSigningKeys(config.STORAGE_SIGNING_KEYS),
    limits: { maxBytes: config.STORAGE_MAX_OBJECT_BYTES, allowedTypes: config.STORAGE_ALLOWED_TYPES },
    uploads: options.uploads ?? UploadGate.fromConfig(config),
    publicBase: () => config.STORAGE_PUBLIC_URL ?? `http://127.0.0.1:${rt.port() ?? config.PORT}`,
    urlCaller: (user) => {
      const token = user.token;
      if (!authUrl || !token) return { id: user.id };
      const mayRead = async (objectKey: string) =>
        (await askPermission(authUrl, `Bearer ${token}`, "read", `object:${objectKey}`, config.STORAGE_PERMISSION_TIMEOUT_MS))
          .allowed;
      return { id: user.id, mayRead };
    },
  };
}
