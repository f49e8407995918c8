// Real storage deps for calling handlers directly: the filesystem backend in a fresh folder, signing keys
// and limits parsed from a config as the service would; no server, no NATS, no outbound calls.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { scratchDir } from "../../../../test/support/index.ts";
import { createLogger, createMetrics, parseConfig, type Runtime } from "../../../runtime/src/internal.ts";
import { type StorageConfig, storageConfigSchema } from "../../src/config.ts";
import { type StorageDeps, storageDeps } from "../../src/deps.ts";

export const PUBLIC_URL = "https://cdn.example.test";

export function unitDeps(env: Record<string, string> = {}): StorageDeps & { dir: string } {
  const dir = scratchDir("storage-unit");
  const config = parseConfig(storageConfigSchema, {
    DATABASE_URL: "pglite://memory",
    STORAGE_SIGNING_KEYS: `u1:${"u".repeat(40)}`,
    STORAGE_DIR: dir,
    STORAGE_PUBLIC_URL: PUBLIC_URL,
    ...env,
  });
  const rt: Runtime<StorageConfig> = {
    name: "storage",
    config,
    log: createLogger("storage", "silent"),
    metrics: createMetrics("storage"),
    nats: () => undefined,
    port: () => undefined,
    egress: () => {
      throw new Error("storage's handlers make no outbound calls in unit tests");
    },
    onClose: () => {},
  };
  return { ...storageDeps(rt, {}), dir };
}

/** Blobs the backend holds (files under the fs backend's objects folder). */
export function blobsIn(dir: string): string[] {
  try {
    return readdirSync(join(dir, "objects"), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

export const user = (id: string) => ({ id, token: `token-of-${id}` });
