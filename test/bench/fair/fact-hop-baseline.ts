// The baseline for leg 1 of the fair fact-hop benchmark: a process of its own that consumes storage's object
// facts from JetStream through a durable pull consumer (nats.js, the runtime's client, with the runtime's settings:
// explicit ack, both filter subjects, consume() of 16, one message at a time) and applies them as social does
// (services/social/src/handlers/photo-facts.ts with store.ts recordPhoto / forgetPhoto, through the registry's
// dispatch): decode the binary-mode message (ce-* headers, JSON payload), check that its subject matches its
// type, verify its producer's signature with the runtime's own verifyEvent and its age, then one transaction on a
// pg Pool of 10 claiming (source, id) in the inbox and running the same statements; ack after commit.
// Left out: zod (the key and owner are checked by hand), logging, metrics, retries with backoff and the dead-letter
// stream (a failing message is nak'ed or terminated); social's fact handlers emit nothing, so neither does this.
// Env: DATABASE_URL (the tables are created if missing), NATS_URL, EVENTS_STREAM, EVENTS_SUBJECT_PREFIX,
// SNAPMESH_EVENT_TRUST (`{"<producer>":{"keys":[public JWK…]}}`). Prints `consuming` once its consumer runs.
import { createPublicKey, type KeyObject } from "node:crypto";
import { AckPolicy, connect, DeliverPolicy, type JsMsg, nanos } from "nats";
import pg from "pg";
import { ProofError, verifyEvent } from "../../../services/runtime/src/event-proof.ts";
import { BASE_SCHEMA, ensureStream } from "./baseline-common.ts";

type Event = Record<string, unknown> & { id: string; source: string; type: string; time?: string };
const TYPES = ["snapmesh.storage.object.created", "snapmesh.storage.object.deleted"];
const OBJECT_KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
const MAX_AGE_SECONDS = 7 * 24 * 3600;
const STREAM = process.env.EVENTS_STREAM!;
const PREFIX = process.env.EVENTS_SUBJECT_PREFIX!;

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
await pool.query(BASE_SCHEMA);
const trust = new Map<string, Array<{ kid: string; key: KeyObject }>>();
for (const [producer, set] of Object.entries(JSON.parse(process.env.SNAPMESH_EVENT_TRUST ?? "{}") as Record<string, unknown>)) {
  const keys = (set as { keys: Array<{ kid: string; kty: string; crv: string; x: string }> }).keys;
  trust.set(
    producer,
    keys.map((k) => ({ kid: k.kid, key: createPublicKey({ key: { kty: k.kty, crv: k.crv, x: k.x }, format: "jwk" }) })),
  );
}

const nc = await connect({ servers: process.env.NATS_URL });
await ensureStream(nc, STREAM, PREFIX);
const jsm = await nc.jetstreamManager();
await jsm.consumers.add(STREAM, {
  durable_name: "baseline",
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
  filter_subjects: TYPES.map((t) => `${PREFIX}.${t}`).sort(),
  ack_wait: nanos(30_000),
  max_deliver: -1,
});
const messages = await (await nc.jetstream().consumers.get(STREAM, "baseline")).consume({ max_messages: 16 });

class Poison extends Error {}

function decode(msg: JsMsg): Event {
  const text = new TextDecoder("utf-8", { fatal: true }).decode(msg.data);
  const attrs: Record<string, unknown> = {};
  let binary = false;
  for (const name of msg.headers?.keys() ?? []) {
    const lower = name.toLowerCase();
    if (lower.startsWith("ce-")) {
      binary = true;
      attrs[lower.slice(3)] = decodeURIComponent(msg.headers!.get(name));
    }
    if (lower === "content-type") attrs.datacontenttype = msg.headers!.get(name);
  }
  const event = (binary ? { ...attrs, ...(text ? { data: JSON.parse(text) } : {}) } : JSON.parse(text)) as Event;
  if (event.specversion !== "1.0" || !event.id || !event.source || !event.type) throw new Poison("not a CloudEvent");
  if (`${PREFIX}.${event.type}` !== msg.subject) throw new Poison("type and subject differ");
  return event;
}

/** recordPhoto's or forgetPhoto's statements, after the inbox claim, in one transaction. */
async function apply(event: Event): Promise<void> {
  const data = event.data as { key?: unknown; owner?: unknown } | undefined;
  if (typeof data?.key !== "string" || !OBJECT_KEY.test(data.key) || typeof data.owner !== "string") {
    throw new Poison("invalid data");
  }
  verifyEvent(event as never, (producer) => trust.get(producer) ?? []);
  if (!((Date.now() - Date.parse(String(event.time))) / 1000 <= MAX_AGE_SECONDS)) throw new Poison("too old");
  const { key, owner } = data;
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const claimed = await client.query(
      "INSERT INTO base.inbox (source, id, type, caller) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
      [event.source, event.id, event.type, ""],
    );
    if (claimed.rowCount === 0) {
      await client.query("SELECT reply, caller FROM base.inbox WHERE source = $1 AND id = $2", [event.source, event.id]);
    } else if (event.type === "snapmesh.storage.object.created") {
      await client.query(
        `INSERT INTO base.photos (photo_id, owner) VALUES ($1, $2)
         ON CONFLICT (photo_id) DO UPDATE SET deleted_at = NULL WHERE base.photos.owner = $2`,
        [key, owner],
      );
    } else {
      const { rows } = await client.query<{ owner: string }>("SELECT owner FROM base.photos WHERE photo_id = $1 FOR UPDATE", [
        key,
      ]);
      if (!rows[0] || rows[0].owner === owner) {
        await client.query("DELETE FROM base.likes WHERE photo_id = $1", [key]);
        await client.query("DELETE FROM base.comments WHERE photo_id = $1", [key]);
        await client.query("DELETE FROM base.counters WHERE photo_id = $1", [key]);
        await client.query("UPDATE base.photos SET deleted_at = now() WHERE photo_id = $1 AND deleted_at IS NULL", [key]);
      }
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

const loop = (async () => {
  for await (const msg of messages) {
    try {
      await apply(decode(msg));
      msg.ack();
    } catch (err) {
      const poison = [Poison, ProofError, SyntaxError, URIError, TypeError].some((c) => err instanceof c);
      if (poison) msg.term(String(err));
      else msg.nak(1000);
    }
  }
})();
process.stdout.write("consuming\n");

process.on("SIGTERM", () => {
  messages.stop();
  void loop
    .then(() => nc.drain())
    .then(() => pool.end())
    .finally(() => process.exit(0));
});
