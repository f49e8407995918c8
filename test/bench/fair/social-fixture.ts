// social and its like baseline (likes-baseline.ts) as the door and fact-hop rows start them: each in a process
// of its own on a fresh database, session tokens from a test issuer whose key set social fetches over HTTP
// and the baseline gets inline, and social on a JetStream stream of its own.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../../../scripts/src/proxy.ts";
import { testEventKeysEnv } from "../../support/event-keys.ts";
import { uniqueName } from "../../support/names.ts";
import { freshDatabase } from "../../support/postgres.ts";
import { testIssuer } from "../../support/tokens.ts";
import { FAIR, listeningPort, stopped, tsxProcess, until } from "./harness.ts";

export interface SocialFixture {
  social: string;
  baseline: string;
  socialDb: string;
  baselineDb: string;
  /** social's facts stream and subject prefix. */
  names: StreamNames;
  /** The baseline's, when it signs and publishes its facts (otherwise it stores them unsigned). */
  baselineNames: StreamNames;
  /** `Bearer …` for user0 … user<n-1>. */
  tokens: string[];
  /** Resolves once social's relay (and a publishing baseline) has published everything its outbox holds. */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

interface StreamNames {
  stream: string;
  subjectPrefix: string;
}

export async function socialFixture(
  natsUrl: string,
  databaseUrl: string,
  opts: { users: number; tag: string; baselineFacts: boolean },
): Promise<SocialFixture> {
  const [socialDb, baselineDb] = await Promise.all([
    freshDatabase(databaseUrl, `${opts.tag}s`),
    freshDatabase(databaseUrl, `${opts.tag}b`),
  ]);
  const issuer = await testIssuer();
  const tokens = await Promise.all(
    Array.from({ length: opts.users }, async (_, i) => `Bearer ${await issuer.token(`user${i}`, { expiresIn: "2h" })}`),
  );
  const jwks = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(issuer.jwks));
  });
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
  const port = await freePort("127.0.0.1");
  const names = { stream: uniqueName(`${opts.tag}S`), subjectPrefix: uniqueName(`${opts.tag}s`).toLowerCase() };
  const baselineNames = { stream: uniqueName(`${opts.tag}B`), subjectPrefix: uniqueName(`${opts.tag}b`).toLowerCase() };
  const service = tsxProcess("services/social/src/main.ts", [], {
    PORT: String(port),
    LOG_LEVEL: "silent",
    DATABASE_URL: socialDb,
    NATS_URL: natsUrl,
    EVENTS_STREAM: names.stream,
    EVENTS_SUBJECT_PREFIX: names.subjectPrefix,
    ...testEventKeysEnv(),
    SNAPMESH_DEV_AUTH: "1",
    SNAPMESH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
    SOCIAL_LIKE_LIMIT_PER_MINUTE: "100000000",
  });
  const baseline = tsxProcess(join(FAIR, "likes-baseline.ts"), [], {
    DATABASE_URL: baselineDb,
    BENCH_JWKS: JSON.stringify(issuer.jwks),
    ...(opts.baselineFacts
      ? {
          NATS_URL: natsUrl,
          EVENTS_STREAM: baselineNames.stream,
          EVENTS_SUBJECT_PREFIX: baselineNames.subjectPrefix,
          SNAPMESH_EVENT_SIGNING_KEYS: testEventKeysEnv().SNAPMESH_EVENT_SIGNING_KEYS!,
        }
      : {}),
  });
  const pools = [socialDb, ...(opts.baselineFacts ? [baselineDb] : [])].map(
    (url) => new pg.Pool({ connectionString: url, max: 1 }),
  );
  const unsent = async (pool: pg.Pool, schema: string) =>
    (await pool.query(`SELECT 1 FROM ${schema}.outbox WHERE sent_at IS NULL LIMIT 1`)).rowCount !== 0;
  const stop = async () => {
    await Promise.all(pools.map((p) => p.end()));
    await Promise.all([stopped(service), stopped(baseline)]);
    await new Promise((r) => jwks.close(r));
  };
  try {
    const basePort = await listeningPort(baseline);
    await until("social to be ready", async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
    return {
      social: `http://127.0.0.1:${port}`,
      baseline: `http://127.0.0.1:${basePort}`,
      socialDb,
      baselineDb,
      names,
      baselineNames,
      tokens,
      drained: () =>
        until("the outboxes to drain", async () => {
          const pending = await Promise.all(pools.map((pool, i) => unsent(pool, i === 0 ? "social" : "base")));
          return !pending.includes(true);
        }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
