// What the storage rows share: storage as a process of its own (services/storage/src/main.ts, fs backend,
// session tokens verified against a JWKS served here like auth would), objects uploaded through its REST API,
// and the rows its table holds (the baselines seed their copy of the table with them).
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../../../scripts/src/proxy.ts";
import { testEventKeysEnv } from "../../support/event-keys.ts";
import { uniqueName } from "../../support/names.ts";
import { freshDatabase } from "../../support/postgres.ts";
import { type TestIssuer, testIssuer } from "../../support/tokens.ts";
import { stopped, tsxProcess, until } from "./harness.ts";

/** A storage.objects row as the baselines copy it (every column, as text where pg would turn it into a Date). */
export interface ObjectRow {
  key: string;
  owner: string;
  blob: string;
  size: string;
  content_type: string;
  sha256: string;
  etag: string;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface StorageFixture {
  /** `http://127.0.0.1:<port>` of the storage process. */
  base: string;
  /** STORAGE_DIR of the fs backend: the bytes of `blob` are at `<dir>/objects/<blob>`. */
  dir: string;
  issuer: TestIssuer;
  /** STORAGE_SIGNING_KEYS as storage got it (`kid:secret`, the one that signs). */
  signingKey: string;
  /** A scratch directory for the load generator's argument files. */
  scratch: string;
  /** Uploads `body` under `key` as `user` (PUT /v1/objects/{key}); the stored object's sha256. */
  upload(user: string, key: string, body: Buffer, contentType?: string): Promise<string>;
  /** The rows of storage.objects, read from storage's own database. */
  rows(): Promise<ObjectRow[]>;
  stop(): Promise<void>;
}

/** A PNG: the 8-byte signature storage's content sniffing looks for, then random bytes up to `size`. */
export const png = (size: number) =>
  Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(size - 8)]);

export async function startStorage(natsUrl: string, databaseUrl: string, prefix: string): Promise<StorageFixture> {
  const db = await freshDatabase(databaseUrl, `${prefix}s`);
  const issuer = await testIssuer();
  const jwks = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(issuer.jwks));
  });
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-bench-storage-"));
  const scratch = mkdtempSync(join(tmpdir(), "snapmesh-bench-"));
  const signingKey = `bench:${randomBytes(32).toString("hex")}`;
  const port = await freePort("127.0.0.1");
  const base = `http://127.0.0.1:${port}`;
  const service: ChildProcess = tsxProcess("services/storage/src/main.ts", [], {
    PORT: String(port),
    LOG_LEVEL: "silent",
    DATABASE_URL: db,
    NATS_URL: natsUrl,
    EVENTS_STREAM: uniqueName(prefix.toUpperCase()),
    EVENTS_SUBJECT_PREFIX: uniqueName(prefix).toLowerCase(),
    ...testEventKeysEnv(),
    SNAPMESH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
    STORAGE_BACKEND: "fs",
    STORAGE_DIR: dir,
    STORAGE_SIGNING_KEYS: signingKey,
  });
  const pool = new pg.Pool({ connectionString: db, max: 1 });
  const stop = async () => {
    await pool.end();
    await stopped(service);
    await new Promise((r) => jwks.close(r));
    rmSync(dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  };
  try {
    await until("storage to be ready", async () => (await fetch(`${base}/readyz`)).ok);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    base,
    dir,
    issuer,
    signingKey,
    scratch,
    async upload(user, key, body, contentType = "image/png") {
      const res = await fetch(`${base}/v1/objects/${key}`, {
        method: "PUT",
        headers: { authorization: await issuer.bearer(user), "content-type": contentType },
        body,
      });
      if (res.status !== 201) throw new Error(`upload of ${key} answered ${res.status}: ${await res.text()}`);
      return ((await res.json()) as { sha256: string }).sha256;
    },
    async rows() {
      const { rows } = await pool.query<ObjectRow>(
        `SELECT key, owner, blob, size::text AS size, content_type, sha256, etag, created_at::text AS created_at,
           updated_at::text AS updated_at, deleted_at::text AS deleted_at FROM storage.objects ORDER BY key`,
      );
      return rows;
    },
    stop,
  };
}
