import type { NatsConnection } from "nats";
import type { StorageConfig } from "../config.js";
import type { BlobBackend } from "./backend.js";
import { FsBackend } from "./fs.js";
import { NatsObjectBackend } from "./nats.js";
import { S3Backend } from "./s3.js";

export type { BlobBackend } from "./backend.js";

/** The backend chosen by STORAGE_BACKEND; the NATS one needs the service's NATS connection. */
export function createBackend(config: StorageConfig, nats: () => NatsConnection | undefined): BlobBackend {
  switch (config.STORAGE_BACKEND) {
    case "fs":
      return new FsBackend(config.STORAGE_DIR);
    case "s3":
      if (!config.STORAGE_S3_BUCKET) throw new Error("STORAGE_BACKEND=s3 needs STORAGE_S3_BUCKET");
      return new S3Backend({
        bucket: config.STORAGE_S3_BUCKET,
        region: config.STORAGE_S3_REGION,
        forcePathStyle: config.STORAGE_S3_FORCE_PATH_STYLE === "1",
        ...(config.STORAGE_S3_ENDPOINT ? { endpoint: config.STORAGE_S3_ENDPOINT } : {}),
      });
    case "nats":
      return lazyNats(() => {
        const nc = nats();
        if (!nc) throw new Error("STORAGE_BACKEND=nats needs a NATS connection");
        return new NatsObjectBackend(nc, config.STORAGE_NATS_BUCKET);
      });
  }
}

/** The service connects to NATS at start, after the backend is chosen: build the NATS backend on first use. */
function lazyNats(make: () => BlobBackend): BlobBackend {
  let backend: BlobBackend | undefined;
  const get = () => (backend ??= make());
  return {
    kind: "nats",
    put: (k, b, t) => get().put(k, b, t),
    get: (k, r) => get().get(k, r),
    delete: (k) => get().delete(k),
    close: async () => backend?.close(),
  };
}
