import type { NatsConnection } from "nats";
import type { StorageConfig } from "../config.js";
import type { BlobBackend } from "./backend.js";
import { FsBackend } from "./fs.js";
import { NatsObjectBackend } from "./nats.js";

export type { BlobBackend } from "./backend.js";

/** The backend chosen by STORAGE_BACKEND; the NATS one needs the service's NATS connection. */
export function createBackend(config: StorageConfig, nats: () => NatsConnection | undefined): BlobBackend {
  switch (config.STORAGE_BACKEND) {
    case "fs":
      return new FsBackend(config.STORAGE_DIR);
    case "s3":
      if (!config.STORAGE_S3_BUCKET) throw new Error("STORAGE_BACKEND=s3 needs STORAGE_S3_BUCKET");
      return lazy("s3", async () => {
        // The AWS SDK is a third of the bundle: loaded on the first object call, not at start.
        const { S3Backend } = await import("./s3.js");
        return new S3Backend({
          bucket: config.STORAGE_S3_BUCKET!,
          region: config.STORAGE_S3_REGION,
          forcePathStyle: config.STORAGE_S3_FORCE_PATH_STYLE === "1",
          ...(config.STORAGE_S3_ENDPOINT ? { endpoint: config.STORAGE_S3_ENDPOINT } : {}),
        });
      });
    case "nats":
      // The service connects to NATS at start, after the backend is chosen: build it on first use.
      return lazy("nats", async () => {
        const nc = nats();
        if (!nc) throw new Error("STORAGE_BACKEND=nats needs a NATS connection");
        return new NatsObjectBackend(nc, config.STORAGE_NATS_BUCKET);
      });
  }
}

/** A backend made on first use. */
function lazy(kind: BlobBackend["kind"], make: () => Promise<BlobBackend>): BlobBackend {
  let backend: Promise<BlobBackend> | undefined;
  const get = () => {
    backend ??= make().catch((err) => {
      backend = undefined;
      throw err;
    });
    return backend;
  };
  return {
    kind,
    put: async (k, b, t) => (await get()).put(k, b, t),
    get: async (k, r) => (await get()).get(k, r),
    delete: async (k) => (await get()).delete(k),
    close: async () => (await backend)?.close(),
  };
}
