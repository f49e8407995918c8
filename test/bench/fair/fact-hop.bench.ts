// The fair fact-hop benchmark. No fact handler in the mesh emits a fact (social's and share-code's handlers of
// storage's object facts only change their own tables), so the hop JetStream → handler tx → outbox → JetStream
// is measured in its two legs, each sequentially, against a baseline in a process of its own:
//   1. a signed snapmesh.storage.object.deleted published to JetStream → social's handler transaction committed
//      (its durable consumer, the registry, forgetPhoto), vs fact-hop-baseline.ts (nats.js durable consumer → the
//      same transaction);
//   2. an outbox row committed (a like over REST) → the fact it holds received from JetStream (social's outbox
//      relay), vs likes-baseline.ts publishing the fact itself right after its commit and awaiting the ack.
// "Committed" is when a deferred trigger on the inbox / outbox row runs, as its transaction commits (installed in
// both databases alike). This process publishes, listens and receives for both.
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { type NatsConnection, connect as natsConnect } from "nats";
import pg from "pg";
import { toNatsMessage } from "../../../services/runtime/src/nats-binding.ts";
import { signedAs, testEventKeysEnv } from "../../support/event-keys.ts";
import { uniqueName } from "../../support/names.ts";
import { fmt, summary } from "../stats.ts";
import { DURATION_MS, FAIR, median, ROUNDS, ratioLine, stopped, tsxProcess } from "./harness.ts";
import { socialFixture } from "./social-fixture.ts";

/** Hops per round and series: 2,000 at the default 10 s round, fewer for short runs (BENCH_HOPS overrides). */
const HOPS = Number(process.env.BENCH_HOPS ?? Math.round(Math.min(2000, Math.max(100, DURATION_MS / 5))));
const WARM = Math.min(100, HOPS);
const OWNER = "owner";

/**
 * Deferred constraint triggers run as their transaction commits: each stamps its inbox / outbox row with the
 * database's clock_timestamp() (ms since the epoch) and sends it in a NOTIFY, so the figure does not depend on
 * how soon the NOTIFY arrives. This process compares it with its own clock (the same host's).
 */
const NOTIFY_FUNCTIONS = `
  CREATE OR REPLACE FUNCTION public.bench_inbox_row() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_notify('bench_inbox', NEW.id || ' ' || (extract(epoch FROM clock_timestamp()) * 1000)::text);
       RETURN NULL; END $$;
  CREATE OR REPLACE FUNCTION public.bench_outbox_row() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN PERFORM pg_notify('bench_outbox', NEW.event_id || ' ' || (extract(epoch FROM clock_timestamp()) * 1000)::text);
       RETURN NULL; END $$;`;

/** Wall-clock ms since the epoch, below the millisecond: comparable with the database's clock_timestamp(). */
const wallClock = () => performance.timeOrigin + performance.now();

/** Triggers, and photos to delete (each with two likes, a comment and its counters), in `schema` of `url`. */
async function prepare(url: string, schema: string, photos: number): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    await db.query(NOTIFY_FUNCTIONS);
    await db.query(`
      CREATE CONSTRAINT TRIGGER bench_inbox AFTER INSERT ON ${schema}.inbox DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION public.bench_inbox_row();
      CREATE CONSTRAINT TRIGGER bench_outbox AFTER INSERT ON ${schema}.outbox DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION public.bench_outbox_row();`);
    const key = "'photos/hop/' || i || '.jpg'";
    await db.query(`INSERT INTO ${schema}.photos (photo_id, owner) SELECT ${key}, $2 FROM generate_series(0, $1 - 1) i`, [
      photos,
      OWNER,
    ]);
    await db.query(
      `INSERT INTO ${schema}.likes (photo_id, user_id) SELECT ${key}, f FROM generate_series(0, $1 - 1) i, unnest($2::text[]) f`,
      [photos, ["fan1", "fan2"]],
    );
    await db.query(
      `INSERT INTO ${schema}.comments (id, photo_id, author_id, text) SELECT 'c' || i, ${key}, 'fan1', 'lovely'
       FROM generate_series(0, $1 - 1) i`,
      [photos],
    );
    await db.query(
      `INSERT INTO ${schema}.counters (photo_id, likes, comments) SELECT ${key}, 2, 1 FROM generate_series(0, $1 - 1) i`,
      [photos],
    );
    await db.query(`ANALYZE ${schema}.photos, ${schema}.likes, ${schema}.comments, ${schema}.counters`);
  } finally {
    await db.end();
  }
}

/** Throws unless every seeded photo is marked deleted and has nothing left. */
async function leftBehind(url: string, schema: string): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query<{ n: string }>(
      `SELECT (SELECT count(*) FROM ${schema}.photos WHERE deleted_at IS NULL)
            + (SELECT count(*) FROM ${schema}.likes WHERE photo_id LIKE 'photos/hop/%')
            + (SELECT count(*) FROM ${schema}.comments) + (SELECT count(*) FROM ${schema}.counters WHERE photo_id LIKE 'photos/hop/%') AS n`,
    );
    if (rows[0]?.n !== "0") throw new Error(`${schema}: ${rows[0]?.n} rows of deleted photos are left`);
  } finally {
    await db.end();
  }
}

/** The commit stamps the NOTIFYs carry: inbox rows by event id, outbox rows in order. */
class Notices {
  private readonly inbox = new Map<string, number>();
  private readonly waiting = new Map<string, (at: number) => void>();
  private nextOutbox: ((row: { id: string; at: number }) => void) | undefined;
  private constructor(private readonly client: pg.Client) {}

  static async listen(url: string): Promise<Notices> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const notices = new Notices(client);
    client.on("notification", (n) => {
      const payload = n.payload ?? "";
      const space = payload.lastIndexOf(" ");
      notices.record(n.channel, payload.slice(0, space), Number(payload.slice(space + 1)));
    });
    await client.query("LISTEN bench_inbox");
    await client.query("LISTEN bench_outbox");
    return notices;
  }

  private record(channel: string, id: string, at: number): void {
    if (channel === "bench_outbox") {
      const waiter = this.nextOutbox;
      this.nextOutbox = undefined;
      waiter?.({ id, at });
      return;
    }
    const waiter = this.waiting.get(id);
    if (!waiter) return void this.inbox.set(id, at);
    this.waiting.delete(id);
    waiter(at);
  }

  /** When the inbox row of event `id` was committed. */
  inboxRow(id: string): Promise<number> {
    const at = this.inbox.get(id);
    this.inbox.delete(id);
    return at !== undefined ? Promise.resolve(at) : new Promise((resolve) => this.waiting.set(id, resolve));
  }

  /** The next outbox row to be committed: its event id and when. */
  outboxRow(): Promise<{ id: string; at: number }> {
    return new Promise((resolve) => {
      this.nextOutbox = resolve;
    });
  }

  end(): Promise<void> {
    return this.client.end();
  }
}

interface Target {
  names: { stream: string; subjectPrefix: string };
  notices: Notices;
  /** Base URL of the HTTP door that takes the like of leg 2. */
  url: string;
  /** Whether leg 2's photo is liked now: each like flips it, so each writes a fact. */
  liked: boolean;
}

/** Leg 1: publish a signed deleted fact (binary mode, as storage's relay does), await its inbox row's commit. */
async function factToCommit(nc: NatsConnection, t: Target, first: number, n: number): Promise<number[]> {
  const js = nc.jetstream();
  const subject = `${t.names.subjectPrefix}.snapmesh.storage.object.deleted`;
  const out: number[] = [];
  for (let i = first; i < first + n; i++) {
    const key = `photos/hop/${i}.jpg`;
    const event = signedAs("storage", {
      id: `hop-${i}-${uniqueName("e")}`,
      type: "snapmesh.storage.object.deleted",
      subject: key,
      datacontenttype: "application/json",
      data: { key, owner: OWNER },
    });
    const { headers, payload } = toNatsMessage(event);
    const committed = t.notices.inboxRow(event.id);
    const t0 = wallClock();
    const [, t1] = await Promise.all([js.publish(subject, payload, { msgID: event.id, headers }), within(committed, event.id)]);
    out.push(t1 - t0);
  }
  return out;
}

/** Leg 2: a like that changes state (so its transaction writes a fact to the outbox) → that fact on the stream. */
async function outboxToStream(nc: NatsConnection, t: Target, token: string, n: number): Promise<number[]> {
  const received = new Map<string, number>();
  const waiting = new Map<string, (at: number) => void>();
  const sub = nc.subscribe(`${t.names.subjectPrefix}.snapmesh.social.like.>`, {
    callback: (_err, msg) => {
      const at = wallClock();
      const id = msg.headers?.get("ce-id") ?? "";
      const waiter = waiting.get(id);
      if (waiter) waiter(at);
      else received.set(id, at);
    },
  });
  await nc.flush();
  const out: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      // The fact's id is known only from the NOTIFY, so each hop waits for the next outbox row.
      const committed = t.notices.outboxRow();
      t.liked = !t.liked;
      const res = await fetch(`${t.url}/v1/photos/hop-like/like`, {
        method: t.liked ? "PUT" : "DELETE",
        headers: { authorization: token },
      });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`like answered ${res.status}`);
      const { id, at: t0 } = await within(committed, "an outbox row");
      const t1 = received.get(id) ?? (await within(new Promise<number>((resolve) => waiting.set(id, resolve)), id));
      received.delete(id);
      waiting.delete(id);
      out.push(t1 - t0);
    }
  } finally {
    sub.unsubscribe();
  }
  return out;
}

/** A hop that never completes fails the row instead of hanging it. */
function within<T>(promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`fact-hop: no sign of ${what} after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function printed(child: ChildProcess, pattern: RegExp, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (pattern.test(out)) resolve();
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

/** One printed row: the median over rounds of each round's p50 and p99, with their min–max. */
function latencyLine(label: string, rounds: number[][]): { p50: number; p99: number } {
  const s = rounds.map(summary);
  const p50s = s.map((r) => r.p50);
  const p99s = s.map((r) => r.p99);
  const range = (xs: number[]) => `(${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)})`;
  console.log(
    `${label.padEnd(52)} p50 ${fmt(median(p50s), 2).padStart(6)} ms ${range(p50s)}  ` +
      `p99 ${fmt(median(p99s), 2).padStart(6)} ms ${range(p99s)}  n ${rounds[0]?.length ?? 0}`,
  );
  return { p50: median(p50s), p99: median(p99s) };
}

export async function factHopFairBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const fx = await socialFixture(natsUrl, databaseUrl, { users: 1, tag: "benchhop", baselineFacts: true });
  const baseNames = fx.baselineNames;
  const consumer = tsxProcess(join(FAIR, "fact-hop-baseline.ts"), [], {
    DATABASE_URL: fx.baselineDb,
    NATS_URL: natsUrl,
    EVENTS_STREAM: baseNames.stream,
    EVENTS_SUBJECT_PREFIX: baseNames.subjectPrefix,
    SNAPMESH_EVENT_TRUST: testEventKeysEnv().SNAPMESH_EVENT_TRUST!,
  });
  const nc = await natsConnect({ servers: natsUrl });
  const notices: Notices[] = [];
  try {
    await printed(consumer, /consuming/, "fact-hop-baseline.ts");
    const photos = WARM + ROUNDS * HOPS;
    await Promise.all([prepare(fx.socialDb, "social", photos), prepare(fx.baselineDb, "base", photos)]);
    notices.push(await Notices.listen(fx.socialDb), await Notices.listen(fx.baselineDb));
    const targets: Record<"snapmesh" | "baseline", Target> = {
      snapmesh: { names: fx.names, notices: notices[0]!, url: fx.social, liked: false },
      baseline: { names: baseNames, notices: notices[1]!, url: fx.baseline, liked: false },
    };
    const token = fx.tokens[0]!;
    const legs = {
      fact: { snapmesh: [] as number[][], baseline: [] as number[][] },
      outbox: { snapmesh: [] as number[][], baseline: [] as number[][] },
    };
    for (const name of ["snapmesh", "baseline"] as const) {
      await factToCommit(nc, targets[name], 0, WARM);
      await outboxToStream(nc, targets[name], token, WARM);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const name of ["snapmesh", "baseline"] as const) {
        await fx.drained();
        legs.fact[name].push(await factToCommit(nc, targets[name], WARM + round * HOPS, HOPS));
      }
      for (const name of ["snapmesh", "baseline"] as const) {
        await fx.drained();
        legs.outbox[name].push(await outboxToStream(nc, targets[name], token, HOPS));
      }
    }
    // Both did the work measured: every photo deleted, with its likes, comments and counters.
    for (const [url, schema] of [
      [fx.socialDb, "social"],
      [fx.baselineDb, "base"],
    ] as const) {
      await leftBehind(url, schema);
    }

    console.log(
      `\n## fact-hop, fair: one hop at a time (${fmt(HOPS, 0)} hops per round, ${ROUNDS} interleaved rounds); ` +
        "no fact handler emits a fact, so the hop is measured in its two legs",
    );
    console.log("# leg 1: storage.object.deleted published to JetStream → the handler's transaction committed");
    const s1 = latencyLine("snapmesh social (durable consumer → forgetPhoto tx)", legs.fact.snapmesh);
    const b1 = latencyLine("baseline nats.js durable consumer + pg, same tx", legs.fact.baseline);
    ratioLine("ratio of p50 medians snapmesh / baseline", s1.p50 / b1.p50, "≤ 1.20");
    ratioLine("ratio of p99 medians snapmesh / baseline", s1.p99 / b1.p99, "≤ 1.50");
    console.log("# leg 2: an outbox row committed (a like) → its fact received from JetStream");
    const s2 = latencyLine("snapmesh social outbox relay", legs.outbox.snapmesh);
    const b2 = latencyLine("baseline: publish after commit, await the ack", legs.outbox.baseline);
    ratioLine("ratio of p50 medians snapmesh / baseline", s2.p50 / b2.p50, "≤ 1.20");
    ratioLine("ratio of p99 medians snapmesh / baseline", s2.p99 / b2.p99, "≤ 1.50");
    console.log(
      "caveats: commit times are stamped by the database (a deferred trigger on the inbox/outbox rows, in both) and " +
        "compared with this process's clock; both verify the fact's " +
        "Ed25519 proof with the runtime's verifyEvent; leg 1 deletes a photo with two likes and a comment; leg 2's like " +
        "arrives over REST and both facts are signed alike; hops run back to back, so the " +
        "relay's bookkeeping after a publish (marking it sent) can delay the next hop's publish.",
    );
  } finally {
    await Promise.all(notices.map((n) => n.end()));
    await nc.drain();
    await stopped(consumer);
    await fx.stop();
  }
}
