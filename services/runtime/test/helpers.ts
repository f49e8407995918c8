import { type NatsConnection, connect } from "nats";
import { freshDatabase, testDatabaseUrl, testNatsUrl, uniqueName } from "../../../test/support/index.ts";
import { type BaseConfig, baseConfigSchema, fromNatsMessage, parseConfig } from "../src/index.ts";
import type { SnapEvent } from "@snapmesh/events";

/** A config on the test servers with its own database and its own stream and subjects. */
export async function isolatedConfig(overrides: Record<string, string> = {}): Promise<BaseConfig & { env: Record<string, string> }> {
  const env: Record<string, string> = {
    PORT: "0",
    LOG_LEVEL: "silent",
    DATABASE_URL: await freshDatabase(testDatabaseUrl()),
    NATS_URL: testNatsUrl(),
    EVENTS_STREAM: uniqueName("EV"),
    EVENTS_SUBJECT_PREFIX: uniqueName("ev").toLowerCase(),
    CONSUMER_BACKOFF_MS: "50",
    CONSUMER_BACKOFF_MAX_MS: "200",
    CONSUMER_MAX_ATTEMPTS: "3",
    OUTBOX_POLL_MS: "100",
    ...overrides,
  };
  return { ...parseConfig(baseConfigSchema, env), env };
}

/** Reads every message currently in a stream (by sequence), decoded as CloudEvents. */
export async function streamEvents(nc: NatsConnection, stream: string): Promise<SnapEvent[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream);
  const out: SnapEvent[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const msg = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (msg) out.push(fromNatsMessage(msg.data, msg.header));
  }
  return out;
}

export async function streamMessages(nc: NatsConnection, stream: string) {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream).catch(() => undefined);
  if (!info) return [];
  const out = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const msg = await jsm.streams.getMessage(stream, { seq }).catch(() => undefined);
    if (msg) out.push(msg);
  }
  return out;
}

export function natsConnect(): Promise<NatsConnection> {
  return connect({ servers: testNatsUrl() });
}

export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
