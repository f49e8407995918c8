import type { ChildProcess } from "node:child_process";
import fc from "fast-check";
import { type NatsConnection, headers as natsHeaders } from "nats";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signedAs } from "../../../test/support/index.ts";
import { JetStreamConsumers, subjectFor } from "../src/internal.ts";
import { Tick } from "./fixture/notes.ts";
import { startFixture } from "./fixture/spawn.ts";
import { eventually, isolatedConfig, natsConnect } from "./helpers.ts";

// A message as published: payload bytes and optional headers (binary content mode).
interface Published {
  data: Uint8Array;
  headers?: Record<string, string>;
}

const children: ChildProcess[] = [];
let nc: NatsConnection;
let db: pg.Client;
let config: Awaited<ReturnType<typeof isolatedConfig>>;
let fixture: { child: ChildProcess; base: string };
let subject: string;
let counter = 0;

beforeAll(async () => {
  config = await isolatedConfig({ CONSUMER_MAX_ATTEMPTS: "2" });
  fixture = await startFixture(config.env, children);
  await eventually(async () => (await fetch(`${fixture.base}/readyz`)).status === 200, "the fixture ready");
  nc = await natsConnect();
  db = new pg.Client({ connectionString: config.DATABASE_URL });
  await db.connect();
  subject = subjectFor({ stream: config.EVENTS_STREAM, subjectPrefix: config.EVENTS_SUBJECT_PREFIX }, Tick.type);
});

afterAll(async () => {
  await db?.end();
  await nc?.close();
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

const utf8 = new TextEncoder();
const json = (value: unknown): Published => ({ data: utf8.encode(JSON.stringify(value)) });
// A valid fact: signed by a producer the fixture trusts (the near-valid variants below break the signature).
const tick = (n: number): Record<string, unknown> =>
  signedAs("test", { id: `prop-${n}`, type: Tick.type, data: { n: n % 1000 } });

const ATTRS = ["specversion", "id", "source", "type", "data", "time", "datacontenttype", "data_base64", "Bad-Name", "ext1"];
const printable = fc.string({ maxLength: 12 });

/** Each arbitrary yields a builder: the counter makes ids unique across runs. */
const message: fc.Arbitrary<() => Published> = fc.oneof(
  fc.constant(() => json(tick(++counter))),
  fc.constant(() => ({ data: utf8.encode("null") })),
  fc.uint8Array({ maxLength: 48 }).map((bytes) => () => ({ data: bytes })),
  fc.jsonValue().map((value) => () => json(value)),
  // Near-valid structured events: some attributes dropped, some replaced by arbitrary JSON.
  fc
    .record({
      drop: fc.subarray(ATTRS.slice(0, 5)),
      set: fc.dictionary(fc.constantFrom(...ATTRS), fc.jsonValue(), { maxKeys: 2 }),
    })
    .map(({ drop, set }) => () => {
      const event = { ...tick(++counter), ...set };
      for (const name of drop) delete event[name];
      return json(event);
    }),
  // Binary content mode: ce-* headers, some arbitrary (bad percent-encoding included), and an arbitrary payload.
  fc
    .record({
      id: fc.option(printable),
      source: fc.option(fc.constantFrom("/test/poison", "%zz", "")),
      specversion: fc.constantFrom("1.0", "0.3", ""),
      type: fc.constantFrom(Tick.type, "test.other", "a b"),
      body: fc.oneof(
        fc.jsonValue().map((v) => utf8.encode(JSON.stringify(v))),
        fc.uint8Array({ maxLength: 16 }),
      ),
    })
    .map((h) => () => {
      const n = ++counter;
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "ce-specversion": h.specversion,
        "ce-type": h.type,
      };
      headers["ce-id"] = h.id ?? `prop-${n}`;
      if (h.source !== null) headers["ce-source"] = h.source;
      return { data: h.body, headers };
    }),
);

/** (source, id) the message claims, if it claims any: where its inbox row would be. */
function claimedKey(m: Published): string | undefined {
  try {
    if (m.headers)
      return `${decodeURIComponent(m.headers["ce-source"] ?? "")}\u0000${decodeURIComponent(m.headers["ce-id"] ?? "")}`;
    const value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(m.data)) as Record<string, unknown>;
    if (typeof value?.source === "string" && typeof value.id === "string") return `${value.source}\u0000${value.id}`;
  } catch {
    /* claims nothing */
  }
  return undefined;
}

const deadLettered = new Map<number, string>();
let dlqRead = 0;

/** Reads the dead-letter stream's new entries: stream sequence of the original → reason. */
async function readDeadLetters(): Promise<Map<number, string>> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(`${config.EVENTS_STREAM}_DLQ`);
  for (let seq = Math.max(dlqRead + 1, info.state.first_seq); seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(`${config.EVENTS_STREAM}_DLQ`, { seq });
    const entry = JSON.parse(new TextDecoder().decode(msg.data)) as { streamSequence: number; reason: string };
    deadLettered.set(entry.streamSequence, entry.reason);
    dlqRead = seq;
  }
  return deadLettered;
}

async function inbox(): Promise<Set<string>> {
  const { rows } = await db.query<{ source: string; id: string }>("SELECT source, id FROM notes.inbox");
  return new Set(rows.map((r) => `${r.source}\u0000${r.id}`));
}

async function consumerIdle(): Promise<boolean> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.consumers.info(config.EVENTS_STREAM, JetStreamConsumers.durableName("notes"));
  return info.num_pending === 0 && info.num_ack_pending === 0;
}

describe("poison messages on the stream", () => {
  it("every message is handled or dead-lettered with a reason, none missing, and the consumer keeps running", async () => {
    const js = nc.jetstream();
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 6 }), async (builders) => {
        const published = new Map<number, Published>();
        for (const build of builders) {
          const m = build();
          const h = natsHeaders();
          for (const [k, v] of Object.entries(m.headers ?? {})) h.set(k, v);
          const ack = await js.publish(subject, m.data, { headers: h, msgID: `poison-test-${++counter}` });
          published.set(ack.seq, m);
        }
        const missing = async () => {
          const [dead, applied] = [await readDeadLetters(), await inbox()];
          return [...published].filter(([seq, m]) => {
            if (dead.has(seq)) return dead.get(seq)!.length === 0;
            const key = claimedKey(m);
            return key === undefined || !applied.has(key);
          });
        };
        await eventually(async () => (await consumerIdle()) && (await missing()).length === 0, "every message settled").catch(
          async (err) => {
            throw new Error(`${(err as Error).message}; unsettled: ${JSON.stringify((await missing()).map(([s]) => s))}`);
          },
        );
        expect(fixture.child.exitCode).toBeNull();
      }),
      { numRuns: 25 },
    );
    expect(deadLettered.size).toBeGreaterThan(0);
    // Still alive, still consuming.
    expect(fixture.child.exitCode).toBeNull();
    expect((await fetch(`${fixture.base}/healthz`)).status).toBe(200);
    const last = tick(++counter);
    await js.publish(subject, utf8.encode(JSON.stringify(last)));
    await eventually(async () => (await inbox()).has(`/snapmesh/test\u0000${last.id}`), "a valid event after the poison");
  }, 240_000);
});
