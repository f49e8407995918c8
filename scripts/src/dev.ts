import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Output } from "./output.js";
import { findBinary, startNatsServer, stopChild, UserError } from "./processes.js";
import { type MeshService, meshServices } from "./services.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface DevOptions {
  dataDir: string;
  /** Start tinyproxy as the local egress gateway, bound to this second loopback address. */
  egressAddress?: string;
}

/**
 * `snapmesh dev` / `npm start`: NATS with JetStream (or NATS_URL), the four services as separate
 * processes on embedded defaults (PGlite, filesystem storage), dev sign-in on. Ctrl-C stops everything.
 */
export async function dev(opts: DevOptions, out: Output): Promise<void> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    out.info("stopping…");
    await Promise.all(children.slice(1).map((c) => stopChild(c)));
    if (children[0]) await stopChild(children[0]);
    process.exit(code);
  };
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));

  let natsUrl = process.env.NATS_URL;
  const nats = natsUrl ? undefined : await startNatsServer(await portFree(4222), resolve(dataDir, "nats"));
  if (nats) {
    children.push(nats);
    natsUrl = `nats://127.0.0.1:${nats.spawnargs[nats.spawnargs.indexOf("-p") + 1]}`;
    out.step(`nats-server with JetStream at ${natsUrl} (data in ${resolve(dataDir, "nats")})`);
  } else {
    out.step(`using NATS at ${natsUrl}`);
  }

  const services = meshServices();
  const urls = Object.fromEntries(services.map((s) => [s.name, `http://127.0.0.1:${s.port}`]));
  for (const s of services) {
    const child = spawn(process.execPath, ["--import", "tsx", s.main], {
      cwd: ROOT,
      env: serviceEnv(s, urls, natsUrl!, dataDir),
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    out.pipeLogs(s.name, child);
    child.once("exit", (code, signal) => {
      if (!stopping) {
        out.error(`${s.name} exited (${signal ?? code}); stopping the mesh`);
        void stopAll(1);
      }
    });
  }
  await Promise.all(services.map((s) => waitReady(s, urls[s.name]!)));
  for (const s of services) out.step(`${s.name.padEnd(10)} ${urls[s.name]}`);
  out.ready(`snapmesh is ready: ${services.length} services (Ctrl-C stops them)`, { urls, natsUrl });
}

function serviceEnv(s: MeshService, urls: Record<string, string>, natsUrl: string, dataDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: String(s.port),
    LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
    DATABASE_URL:
      process.env[`SNAPMESH_${s.name.toUpperCase().replace("-", "_")}_DATABASE_URL`] ??
      `pglite://${resolve(dataDir, "db", s.name)}`,
    NATS_URL: natsUrl,
    SNAPMESH_DEV_AUTH: "1",
    SNAPMESH_JWKS_URL: `${urls.auth}/.well-known/jwks.json`,
    SNAPMESH_AUTH_URL: urls.auth,
    SNAPMESH_STORAGE_URL: urls.storage,
    STORAGE_DIR: process.env.STORAGE_DIR ?? resolve(dataDir, "objects"),
    STORAGE_PUBLIC_URL: process.env.STORAGE_PUBLIC_URL ?? urls.storage,
    OUTBOX_POLL_MS: process.env.OUTBOX_POLL_MS ?? "500",
  };
}

async function waitReady(s: MeshService, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new UserError(`${s.name} did not become ready at ${url} within ${timeoutMs / 1000}s; see its log lines above`);
}

/** The preferred port when free, else any free one. */
function portFree(preferred: number): Promise<number> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once("error", () => {
      const any = createServer();
      any.listen(0, "127.0.0.1", () => {
        const addr = any.address();
        any.close(() => resolvePort(typeof addr === "object" && addr ? addr.port : 0));
      });
    });
    srv.listen(preferred, "127.0.0.1", () => srv.close(() => resolvePort(preferred)));
  });
}

export { findBinary };
