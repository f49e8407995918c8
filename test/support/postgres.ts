import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { findBinary, waitForPort } from "../../scripts/src/processes.ts";
import { freePort } from "../../scripts/src/proxy.ts";
import { dockerAvailable } from "./docker.ts";
import type { RunningServer } from "./nats.ts";

/** A PostgreSQL server: DATABASE_URL; else a container (Docker engine); else local binaries on a free port. */
export async function postgres(): Promise<RunningServer> {
  if (process.env.DATABASE_URL) return { url: process.env.DATABASE_URL, stop: async () => {} };
  if (await dockerAvailable()) {
    const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
    const container = await new PostgreSqlContainer("postgres:16-alpine").start();
    return { url: container.getConnectionUri(), stop: async () => void (await container.stop()) };
  }
  return localPostgres();
}

function postgresBinDir(): string {
  const onPath = findBinary("initdb");
  if (onPath) return join(onPath, "..");
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const dir = versions.map((v) => join(root, v, "bin")).find((d) => existsSync(join(d, "initdb")));
  if (!dir) {
    throw new Error("no PostgreSQL for the tests: set DATABASE_URL, run a Docker engine, or `apt-get install postgresql`");
  }
  return dir;
}

/** PostgreSQL refuses to run as root: then the server runs as the `postgres` OS user. */
function asServerUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    execFileSync("id", ["-u", "postgres"], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"]);
  }
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  return { uid, gid };
}

async function localPostgres(): Promise<RunningServer> {
  const bin = postgresBinDir();
  const user = asServerUser();
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-pg-"));
  const data = join(dir, "data");
  chmodSync(dir, 0o755);
  if (user) chownSync(dir, user.uid, user.gid);
  const ids = user ? { uid: user.uid, gid: user.gid } : {};
  const pwfile = join(dir, "pw");
  const password = randomBytes(12).toString("hex");
  writeFileSync(pwfile, password);
  if (user) chownSync(pwfile, user.uid, user.gid);
  execFileSync(
    join(bin, "initdb"),
    ["-D", data, "-U", "snapmesh", "--auth=scram-sha-256", `--pwfile=${pwfile}`, "-E", "UTF8", "--no-sync"],
    { ...ids, stdio: "ignore", cwd: dir },
  );
  const port = await freePort();
  const child: ChildProcess = spawn(
    join(bin, "postgres"),
    [
      "-D",
      data,
      "-p",
      String(port),
      "-h",
      "127.0.0.1",
      "-k",
      dir,
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off",
      "-c",
      "max_connections=300",
      "-c",
      "shared_buffers=128MB",
    ],
    { ...ids, stdio: ["ignore", "ignore", "pipe"], cwd: dir },
  );
  let log = "";
  child.stderr?.on("data", (d) => {
    log = (log + d).slice(-4000);
  });
  const url = `postgres://snapmesh:${password}@127.0.0.1:${port}/postgres`;
  try {
    await waitForPort(port, "127.0.0.1", 20_000, child);
    await waitAccepting(url);
  } catch (err) {
    child.kill("SIGKILL");
    throw new Error(`PostgreSQL did not start: ${(err as Error).message}\n${log}`);
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGINT"); // fast shutdown
        await new Promise((r) => child.once("exit", r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitAccepting(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Creates a new, uniquely named database on the server behind `baseUrl` and returns its URL. */
export async function freshDatabase(baseUrl: string, prefix = "t"): Promise<string> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`.toLowerCase();
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
