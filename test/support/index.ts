import { inject } from "vitest";

export { type ForwardProxy, forwardProxy, freePort } from "../../scripts/src/proxy.ts";
export { uniqueName } from "./names.ts";
export { nats, type RunningServer } from "./nats.ts";
export { freshDatabase, postgres } from "./postgres.ts";

/** The run's NATS URL (started by the global setup). */
export function testNatsUrl(): string {
  const url = process.env.NATS_URL ?? safeInject("natsUrl");
  if (!url) throw new Error("no NATS_URL: run the tests through vitest (its global setup starts NATS)");
  return url;
}

/** The run's PostgreSQL server URL; use freshDatabase() on it for an isolated database. */
export function testDatabaseUrl(): string {
  const url = process.env.DATABASE_URL ?? safeInject("databaseUrl");
  if (!url) throw new Error("no DATABASE_URL: run the tests through vitest (its global setup starts PostgreSQL)");
  return url;
}

function safeInject(key: "natsUrl" | "databaseUrl"): string | undefined {
  try {
    return inject(key);
  } catch {
    return undefined;
  }
}

export { signedAs, testEventKeysEnv } from "./event-keys.ts";
export { S3_SERVER_INSTALL, s3Server } from "./s3.ts";
export {
  eventually,
  isolatedEnv,
  listenOnLoopback,
  natsConnect,
  runMainToExit,
  scratchDir,
  streamEvents,
  streamMessages,
} from "./service.ts";
export { type TestIssuer, testIssuer } from "./tokens.ts";
