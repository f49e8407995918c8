import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { envStem } from "@snapmesh/events";
import { generateSigningJwk } from "../../services/auth/src/keyring.js";
import { consolePage } from "./console/build.js";
import { startConsole } from "./console/server.js";
import { devEventKeyFiles } from "./event-keys.js";
import type { Output } from "./output.js";
import { startNatsServer, stopChild, UserError } from "./processes.js";
import { type ForwardProxy, forwardProxy } from "./proxy.js";
import { type MeshService, meshServices, peerUrls } from "./services.js";
import { localStreamNames } from "./stream.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAX_RESTARTS = 5;

export interface DevOptions {
  dataDir: string;
}

interface Running {
  service: MeshService;
  child: ChildProcess;
  restarts: number[];
}

/**
 * `snapmesh dev` / `npm start`: NATS with JetStream (or NATS_URL), a tinyproxy egress gateway, and the four
 * services as separate processes on embedded defaults (PGlite, filesystem storage), dev sign-in on.
 * A service that dies is restarted (at most 5 times a minute); Ctrl-C stops everything.
 */
export async function dev(opts: DevOptions, out: Output): Promise<void> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  const helpers: Array<() => Promise<void>> = [];
  const running = new Map<string, Running>();
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    out.info("stopping…");
    await Promise.all([...running.values()].map((r) => stopChild(r.child)));
    for (const stop of helpers.reverse()) await stop().catch(() => {});
    process.exit(code);
  };
  process.on("SIGINT", () => void stopAll(0));
  process.on("SIGTERM", () => void stopAll(0));

  try {
    let natsUrl = process.env.NATS_URL;
    if (!natsUrl) {
      const port = await portFree(4222);
      const nats = await startNatsServer(port, join(dataDir, "nats"));
      helpers.push(() => stopChild(nats));
      natsUrl = `nats://127.0.0.1:${port}`;
      out.step(`nats-server with JetStream at ${natsUrl} (data in ${join(dataDir, "nats")})`);
    } else out.step(`using NATS at ${natsUrl}`);

    const proxy = await egressGateway(out);
    if (proxy) helpers.push(() => proxy.stop());

    await prepareAuthKeys(dataDir);
    const services = meshServices();
    const urls = Object.fromEntries(services.map((s) => [s.name, `http://127.0.0.1:${s.port}`]));
    const consolePort = await portFree(Number(process.env.SNAPMESH_CONSOLE_PORT ?? 8080));
    // Built while the services start; a failed build is reported where it is awaited, not as an unhandled rejection.
    const page = consolePage(out);
    page.catch(() => undefined);
    const shared = {
      ...sharedEnv(dataDir, natsUrl, urls, proxy),
      ...peerUrls(services, urls),
      // The console's album calls the REST APIs from the browser.
      CORS_ORIGINS: process.env.CORS_ORIGINS ?? `http://127.0.0.1:${consolePort},http://localhost:${consolePort}`,
    };
    const eventKeys = devEventKeyFiles(dataDir);
    const launch = (s: MeshService, restarts: number[]) => {
      const child = spawn(process.execPath, ["--import", "tsx", s.main], {
        cwd: ROOT,
        env: { ...shared, ...serviceEnv(s, dataDir, eventKeys) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      out.pipeLogs(s.name, child);
      running.set(s.name, { service: s, child, restarts });
      child.once("exit", (code, signal) => {
        if (stopping) return;
        const now = Date.now();
        const recent = [...restarts.filter((t) => now - t < 60_000), now];
        if (recent.length > MAX_RESTARTS) {
          out.error(`${s.name} keeps exiting (${signal ?? code}); stopping the mesh`);
          void stopAll(1);
          return;
        }
        out.error(`${s.name} exited (${signal ?? code}); restarting`);
        setTimeout(() => {
          if (!stopping) launch(s, recent);
        }, 500);
      });
    };
    for (const s of services) launch(s, []);
    await Promise.all(services.map((s) => waitReady(s, urls[s.name]!, () => running.get(s.name)?.child)));
    const operatorTokenFile = join(dataDir, "console-operator-token");
    const web = await startConsole({
      port: consolePort,
      natsUrl,
      names: localStreamNames(),
      services: urls,
      publicDir: await page,
      operatorToken: devSecret(dataDir, "console-operator-token", () => randomBytes(24).toString("base64url")),
      ...(proxy ? { egressProxy: proxy.url } : {}),
    });
    helpers.push(() => web.close());
    out.step(`console    ${web.url}  (album demo and mesh console; dead-letter replay takes the token in ${operatorTokenFile})`);
    for (const s of services) out.step(`${s.name.padEnd(10)} ${urls[s.name]}`);
    out.ready(`snapmesh is ready: ${services.length} services and the console at ${web.url} (Ctrl-C stops them)`, {
      consoleUrl: web.url,
      urls,
      natsUrl,
      egressProxy: proxy?.url ?? null,
      pids: Object.fromEntries([...running].map(([name, r]) => [name, r.child.pid])),
    });
  } catch (err) {
    out.error(err instanceof UserError ? err.message : String((err as Error).stack ?? err));
    await stopAll(1);
  }
}

/** SNAPMESH_EGRESS=tinyproxy (default when installed) starts the local egress gateway; `none` sends calls directly. */
async function egressGateway(out: Output): Promise<ForwardProxy | undefined> {
  const mode = process.env.SNAPMESH_EGRESS ?? "tinyproxy";
  if (mode === "none") {
    out.info("egress: direct (SNAPMESH_EGRESS=none)");
    return undefined;
  }
  try {
    const proxy = await forwardProxy(process.env.SNAPMESH_EGRESS_ADDRESS ?? "127.0.0.2");
    out.step(`egress gateway (tinyproxy) at ${proxy.url}, leaving from ${proxy.egressAddress}`);
    return proxy;
  } catch (err) {
    if (process.env.SNAPMESH_EGRESS === "tinyproxy") throw err;
    out.info(`egress: direct (${(err as Error).message})`);
    return undefined;
  }
}

/** The checkout's commit (with `-dirty` for local changes), as an image's revision label says it; "unknown" outside git. */
function gitRevision(): string {
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return `${git("rev-parse", "--short=12", "HEAD").trim()}${git("status", "--porcelain").trim() ? "-dirty" : ""}`;
  } catch {
    return "unknown";
  }
}

function sharedEnv(
  dataDir: string,
  natsUrl: string,
  urls: Record<string, string>,
  proxy: ForwardProxy | undefined,
): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
    NATS_URL: natsUrl,
    SNAPMESH_DEV_AUTH: "1",
    SNAPMESH_VERSION: (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version,
    SNAPMESH_REVISION: gitRevision(),
    SNAPMESH_JWKS_URL: `${urls.auth}/.well-known/jwks.json`,
    STORAGE_PUBLIC_URL: process.env.STORAGE_PUBLIC_URL ?? urls.storage,
    STORAGE_DIR: process.env.STORAGE_DIR ?? join(dataDir, "objects"),
    STORAGE_SIGNING_KEYS:
      process.env.STORAGE_SIGNING_KEYS ??
      devSecret(dataDir, "storage-signing-keys", () => `dev:${randomBytes(32).toString("base64url")}`),
    AUTH_SIGNING_KEYS: process.env.AUTH_SIGNING_KEYS ?? readFileSync(join(dataDir, "auth-signing-keys.json"), "utf8"),
    OUTBOX_POLL_MS: process.env.OUTBOX_POLL_MS ?? "500",
    SHARECODE_PURGE_INTERVAL_SECONDS: process.env.SNAPMESH_EXPIRE_INTERVAL_SECONDS ?? "300",
    ...(proxy ? { EGRESS_PROXY: proxy.url } : {}),
    ...(process.env.SNAPMESH_LEGACY_URL
      ? {
          LEGACY_PERMISSION_URL: process.env.SNAPMESH_LEGACY_URL,
          SOCIAL_PERMISSION_CHECK: process.env.SOCIAL_PERMISSION_CHECK ?? "1",
        }
      : {}),
  };
}

function serviceEnv(s: MeshService, dataDir: string, eventKeys: ReturnType<typeof devEventKeyFiles>): NodeJS.ProcessEnv {
  const key = `SNAPMESH_${envStem(s.name)}_DATABASE_URL`;
  return {
    PORT: String(s.port),
    DATABASE_URL: process.env[key] ?? `pglite://${join(dataDir, "db", s.name)}`,
    // Each service gets only its own private key, as in the cluster.
    SNAPMESH_EVENT_SIGNING_KEYS_FILE: eventKeys.signingFile(s.name),
    SNAPMESH_EVENT_TRUST_FILE: eventKeys.trustFile,
  };
}

/** Development secrets are made once and kept under the data folder, so restarts keep sessions and links valid. */
function devSecret(dataDir: string, name: string, make: () => string): string {
  const file = join(dataDir, name);
  if (existsSync(file)) return readFileSync(file, "utf8");
  const value = make();
  writeFileSync(file, value, { mode: 0o600 });
  return value;
}

/** The auth signing key set, made once (key generation is asynchronous, so before the environment). */
async function prepareAuthKeys(dataDir: string): Promise<void> {
  const file = join(dataDir, "auth-signing-keys.json");
  if (!existsSync(file) && !process.env.AUTH_SIGNING_KEYS) {
    writeFileSync(file, JSON.stringify({ keys: [await generateSigningJwk()] }), { mode: 0o600 });
  }
}

async function waitReady(s: MeshService, url: string, child: () => ChildProcess | undefined, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const c = child();
  throw new UserError(
    `${s.name} did not become ready at ${url} within ${timeoutMs / 1000}s${c?.exitCode != null ? " (it exited)" : ""}; see its log lines above`,
  );
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
