import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { envStem, SERVICES, type ServiceName } from "@snapmesh/events";
import { stopChild } from "../../scripts/src/processes.ts";
import { freePort } from "../../scripts/src/proxy.ts";
import { testDatabaseUrl, testNatsUrl } from "./index.ts";
import { uniqueName } from "./names.ts";
import { freshDatabase } from "./postgres.ts";
import { scratchDir } from "./service.ts";

const CLI = fileURLToPath(new URL("../../scripts/src/cli.ts", import.meta.url));
const NAMES = SERVICES;

export interface Mesh {
  urls: Record<ServiceName, string>;
  /** The web console `snapmesh dev` serves (album demo and mesh console). */
  consoleUrl: string;
  /** The console's operator token (dead-letter replay), as `snapmesh dev` made it in its data folder. */
  operatorToken(): string;
  natsUrl: string;
  names: { stream: string; subjectPrefix: string };
  pids: Record<string, number>;
  stream: string;
  logs: string[];
  /** Waits until a service answers /readyz again (after a crash and the runner's restart). */
  ready(name: ServiceName): Promise<void>;
  /** Waits until the process `pid` is gone (after a kill, before the runner's restart is awaited). */
  exited(pid: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The whole mesh as a person runs it — `snapmesh dev` — but on the test's PostgreSQL (a database per
 * service), the test's NATS (own stream), free ports and a temporary data folder.
 */
export async function startMesh(env: Record<string, string>): Promise<Mesh> {
  const ports: number[] = [];
  while (ports.length < NAMES.length + 1) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const dbs = await Promise.all(NAMES.map(() => freshDatabase(testDatabaseUrl(), "mesh")));
  const vars: Record<string, string> = {
    NATS_URL: testNatsUrl(),
    EVENTS_STREAM: uniqueName("MESH"),
    EVENTS_SUBJECT_PREFIX: uniqueName("mesh").toLowerCase(),
    CONSUMER_BACKOFF_MS: "100",
    OUTBOX_POLL_MS: "200",
    LOG_LEVEL: "warn",
    STORAGE_DIR: scratchDir("mesh-objects"),
    SNAPMESH_CONSOLE_PORT: String(ports[NAMES.length]),
    ...env,
  };
  NAMES.forEach((name, i) => {
    const key = envStem(name);
    vars[`SNAPMESH_${key}_PORT`] = String(ports[i]);
    vars[`SNAPMESH_${key}_DATABASE_URL`] = dbs[i]!;
  });
  const dataDir = scratchDir("mesh-data");
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", CLI, "dev", "--json", "--data-dir", dataDir], {
    env: { ...process.env, ...vars },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (l) => logs.push(l));
  const lines = createInterface({ input: child.stdout! });
  let ready: { urls: Mesh["urls"]; pids: Record<string, number>; consoleUrl: string } | undefined;
  for await (const line of lines) {
    logs.push(line);
    try {
      const msg = JSON.parse(line) as { ready?: boolean; urls: Mesh["urls"]; pids: Record<string, number>; consoleUrl: string };
      if (msg.ready) {
        ready = msg;
        break;
      }
    } catch {
      /* a plain log line */
    }
  }
  lines.on("line", (l) => logs.push(l));
  if (!ready) throw new Error(`the mesh did not start:\n${logs.slice(-40).join("\n")}`);
  const urls = ready.urls;
  return {
    urls,
    consoleUrl: ready.consoleUrl,
    operatorToken: () => readFileSync(join(dataDir, "console-operator-token"), "utf8"),
    natsUrl: vars.NATS_URL!,
    names: { stream: vars.EVENTS_STREAM!, subjectPrefix: vars.EVENTS_SUBJECT_PREFIX! },
    pids: ready.pids,
    stream: vars.EVENTS_STREAM!,
    logs,
    async ready(name) {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const ok = await fetch(`${urls[name]}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${name} did not come back`);
    },
    async exited(pid) {
      const alive = () => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const deadline = Date.now() + 20_000;
      while (alive()) {
        if (Date.now() > deadline) throw new Error(`process ${pid} is still alive`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop: () => stopChild(child, "SIGINT", 20_000),
  };
}
