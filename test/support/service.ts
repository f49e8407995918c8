import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SnapEvent } from "@snapmesh/events";
import { connect, type NatsConnection } from "nats";
import { fromNatsMessage } from "../../services/runtime/src/internal.ts";
import { testEventKeysEnv } from "./event-keys.ts";
import { testDatabaseUrl, testNatsUrl } from "./index.ts";
import { uniqueName } from "./names.ts";
import { freshDatabase } from "./postgres.ts";

/** Environment for one service under test: its own database and its own stream and subjects on the run's servers. */
export async function isolatedEnv(overrides: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    PORT: "0",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    DATABASE_URL: await freshDatabase(testDatabaseUrl()),
    NATS_URL: testNatsUrl(),
    EVENTS_STREAM: uniqueName("EV"),
    EVENTS_SUBJECT_PREFIX: uniqueName("ev").toLowerCase(),
    CONSUMER_BACKOFF_MS: "50",
    CONSUMER_BACKOFF_MAX_MS: "200",
    CONSUMER_MAX_ATTEMPTS: "3",
    OUTBOX_POLL_MS: "100",
    ...testEventKeysEnv(),
    ...overrides,
  };
}

/** A fresh folder inside the run's scratch folder, which the global teardown removes. */
export function scratchDir(prefix: string): string {
  return mkdtempSync(join(process.env.SNAPMESH_TEST_SCRATCH ?? tmpdir(), `${prefix}-`));
}

/** Starts a service on a free loopback port; returns its base URL. */
export async function listenOnLoopback(service: {
  start(o: { port: number; host: string }): Promise<import("node:http").Server>;
}): Promise<string> {
  const server = await service.start({ port: 0, host: "127.0.0.1" });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export function natsConnect(): Promise<NatsConnection> {
  return connect({ servers: testNatsUrl() });
}

/** Every message currently in a stream (by sequence). */
export async function streamMessages(nc: NatsConnection, stream: string) {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream).catch(() => undefined);
  if (!info || info.state.messages === 0) return [];
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (msg) out.push(msg);
  }
  return out;
}

/** Every event currently in a stream, decoded (CloudEvents NATS binding). */
export async function streamEvents(nc: NatsConnection, stream: string): Promise<SnapEvent[]> {
  return (await streamMessages(nc, stream)).map((m) => fromNatsMessage(m.data, m.header));
}

/** Polls until `fn` gives a value (not undefined/false) or the bound passes. */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a service's main.ts (through tsx) with only `env` and PATH, to its exit: the exit code and what it wrote to stderr. */
export async function runMainToExit(main: string, env: Record<string, string>, args: string[] = []) {
  const child = spawn(process.execPath, ["--import", "tsx", main, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += String(d);
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr };
}
