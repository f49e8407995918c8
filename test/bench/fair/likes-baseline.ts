// The baseline for the fair likes and door benchmarks: a bare node:http server in its own process doing the
// database work of social's like command (services/social/src/handlers/like.ts through the registry's
// withEffects and applyIn) in one transaction on a pg Pool of 10, after verifying the same ES256 session token.
// Two doors, like the service: REST (`PUT|DELETE /v1/photos/:id/like`) and CloudEvents on `POST /` (like.set /
// like.unset in binary or structured content mode: ce-* headers or the JSON envelope become the attributes,
// the caller's token comes from `Authorization` or the `authorization` extension, the event's (source, id) is
// claimed in the inbox, and the reply CloudEvent goes back in the request's content mode).
// Left out: the CloudEvents SDK's JSON-schema check of the attributes (the required ones and specversion are
// checked by hand) and zod (the photo id is checked with the catalog's pattern). Facts are stored unsigned unless
// SNAPMESH_EVENT_SIGNING_KEYS is set (then signed as the runtime signs them, with its signEvent). With NATS_URL,
// EVENTS_STREAM and EVENTS_SUBJECT_PREFIX set (the stream is created if missing), each fact is published to
// JetStream once its transaction has committed (binary mode, Nats-Msg-Id = event id, awaiting the ack; no claim,
// no ordering between concurrent requests) and its outbox row is then marked sent.
// Env: DATABASE_URL (a fresh database; the tables are created here), BENCH_JWKS (the issuer's key set, JSON),
// PORT (default 0). Prints `listening <port>` once it accepts requests.
import { createHash, randomUUID } from "node:crypto";
import http from "node:http";
import { connect, headers as natsHeaders } from "nats";
import pg from "pg";
import { type PrivateJwk, signEvent, signingKey } from "../../../services/runtime/src/event-proof.ts";
import { LIKE_SET, LIKE_UNSET } from "../../../services/social/src/store.ts";
import { BASE_SCHEMA, encodeHeader, ensureStream, send, serveBaseline, tokenVerifier } from "./baseline-common.ts";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
await pool.query(BASE_SCHEMA);
const ROUTE = /^\/v1\/photos\/([A-Za-z0-9_-]{1,128})\/like$/;
const SET_SQL = LIKE_SET.replaceAll("social.", "base.");
const UNSET_SQL = LIKE_UNSET.replaceAll("social.", "base.");
const PHOTO_ID = /^[A-Za-z0-9._:@/-]{1,512}$/;
const COMMANDS: Record<string, boolean> = { "snapmesh.social.like.set": true, "snapmesh.social.like.unset": false };
const nc = process.env.NATS_URL ? await connect({ servers: process.env.NATS_URL }) : undefined;
if (nc) await ensureStream(nc, process.env.EVENTS_STREAM!, process.env.EVENTS_SUBJECT_PREFIX!);
const js = nc?.jetstream();
const signing = process.env.SNAPMESH_EVENT_SIGNING_KEYS
  ? signingKey((JSON.parse(process.env.SNAPMESH_EVENT_SIGNING_KEYS) as { keys: PrivateJwk[] }).keys[0]!)
  : undefined;

interface Event {
  specversion: string;
  id: string;
  source: string;
  type: string;
  time?: string;
  subject?: string;
  datacontenttype?: string;
  data?: unknown;
  [extension: string]: unknown;
}

/** The inbox row an event claims: REST calls with Idempotency-Key, and every CloudEvent. */
interface Claim {
  source: string;
  id: string;
  type: string;
  caller: string;
}

class Refused extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

const user = tokenVerifier({ allowDev: true });

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The like's transaction; answers the reply event (the stored one for a repeated event). */
async function like(on: boolean, photoId: string, userId: string, claim: Claim | undefined, subject?: string): Promise<Event> {
  const client = await pool.connect();
  let fact: Event | undefined;
  try {
    await client.query("BEGIN");
    if (claim) {
      const claimed = await client.query(
        "INSERT INTO base.inbox (source, id, type, caller) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
        [claim.source, claim.id, claim.type, claim.caller],
      );
      if (claimed.rowCount === 0) {
        const prior = await client.query<{ reply: Event; caller: string }>(
          "SELECT reply, caller FROM base.inbox WHERE source = $1 AND id = $2",
          [claim.source, claim.id],
        );
        await client.query("COMMIT");
        if (prior.rows[0]?.caller !== claim.caller) throw new Refused(409, "event_id_reused");
        return prior.rows[0].reply;
      }
    }
    // social's own statement (one round trip: the change and the count), on this database's copy of its tables.
    const { rows } = await client.query<{ changed: boolean; likes: number }>(on ? SET_SQL : UNSET_SQL, [photoId, userId]);
    const { likes } = rows[0]!;
    const likedByMe = on;
    const changed = { rowCount: rows[0]!.changed ? 1 : 0 };
    if (changed.rowCount) {
      const unsigned: Event = {
        specversion: "1.0",
        id: randomUUID(),
        source: "/snapmesh/social",
        type: on ? "snapmesh.social.like.added" : "snapmesh.social.like.removed",
        time: new Date().toISOString(),
        datacontenttype: "application/json",
        subject: photoId,
        data: { photoId, userId, likes },
      };
      fact = signing ? (signEvent(unsigned as never, signing) as Event) : unsigned;
      await client.query("INSERT INTO base.outbox (event_id, type, event) VALUES ($1, $2, $3)", [
        fact.id,
        fact.type,
        JSON.stringify(fact),
      ]);
    }
    const reply: Event = {
      specversion: "1.0",
      id: randomUUID(),
      source: "/snapmesh/social",
      type: "snapmesh.social.like.state",
      time: new Date().toISOString(),
      datacontenttype: "application/json",
      ...(subject ? { subject } : {}),
      data: { photoId, likes, likedByMe },
    };
    if (claim) {
      await client.query("UPDATE base.inbox SET reply = $3 WHERE source = $1 AND id = $2", [
        claim.source,
        claim.id,
        JSON.stringify(reply),
      ]);
    }
    await client.query("COMMIT");
    return reply;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    fact = undefined;
    throw err;
  } finally {
    client.release();
    if (fact) void publish(fact);
  }
}

/** After commit (when NATS is configured): the fact to JetStream, then its outbox row marked sent. */
async function publish(fact: Event): Promise<void> {
  if (!js) return;
  const h = natsHeaders();
  h.set("content-type", "application/json");
  for (const [name, value] of Object.entries(fact)) {
    if (name !== "data" && name !== "datacontenttype") h.set(`ce-${name}`, encodeHeader(String(value)));
  }
  try {
    await js.publish(`${process.env.EVENTS_SUBJECT_PREFIX}.${fact.type}`, Buffer.from(JSON.stringify(fact.data)), {
      msgID: fact.id,
      headers: h,
    });
    await pool.query("UPDATE base.outbox SET sent_at = now(), attempts = attempts + 1 WHERE event_id = $1", [fact.id]);
  } catch {
    /* left unsent, as a relay would leave it for its next drain */
  }
}

/** A CloudEvent from a `POST /` in binary or structured content mode, checked as far as the handler needs. */
function receive(req: http.IncomingMessage, body: Buffer): { event: Event; structured: boolean } {
  const mediaType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  const structured = mediaType === "application/cloudevents+json";
  let attrs: Record<string, unknown>;
  try {
    if (structured) {
      attrs = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
    } else {
      attrs = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (name.startsWith("ce-") && typeof value === "string") attrs[name.slice(3)] = decodeURIComponent(value);
      }
      if (body.length > 0) {
        if (mediaType !== "application/json") throw new Refused(415, "unsupported_media_type");
        attrs.data = JSON.parse(body.toString("utf8"));
        attrs.datacontenttype = mediaType;
      }
    }
  } catch (err) {
    throw err instanceof Refused ? err : new Refused(400, "malformed_cloudevent");
  }
  if (typeof attrs !== "object" || attrs === null || attrs.specversion !== "1.0") throw new Refused(400, "invalid_cloudevent");
  for (const name of ["id", "source", "type"]) {
    if (typeof attrs[name] !== "string" || attrs[name] === "") throw new Refused(400, `missing_${name}`);
  }
  return { event: attrs as Event, structured };
}

async function cloudEvent(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
  const { event, structured } = receive(req, body);
  const on = COMMANDS[event.type];
  if (on === undefined) throw new Refused(400, "unknown_event_type");
  const photoId = (event.data as { photoId?: unknown } | undefined)?.photoId;
  if (typeof photoId !== "string" || !PHOTO_ID.test(photoId)) throw new Refused(400, "invalid_event_data");
  const authorization = req.headers.authorization ?? (typeof event.authorization === "string" ? event.authorization : undefined);
  const userId = await user(authorization);
  if (!userId) throw new Refused(401, "unauthorized");
  const claim = { source: event.source, id: event.id, type: event.type, caller: sha256(userId) };
  const reply = await like(on, photoId, userId, claim, event.subject);
  if (structured) {
    const text = JSON.stringify(reply);
    res.writeHead(200, { "content-type": "application/cloudevents+json", "content-length": Buffer.byteLength(text) });
    res.end(text);
    return;
  }
  const text = JSON.stringify(reply.data);
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  };
  for (const [name, value] of Object.entries(reply)) {
    if (name !== "data" && name !== "datacontenttype") headers[`ce-${name}`] = encodeHeader(String(value));
  }
  res.writeHead(200, headers);
  res.end(text);
}

async function rest(req: http.IncomingMessage, res: http.ServerResponse, photoId: string, on: boolean): Promise<void> {
  const authorization = req.headers.authorization ?? "";
  const key = req.headers["idempotency-key"];
  const userId = await user(authorization);
  if (!userId) throw new Refused(401, "unauthorized");
  // Like the runtime: a REST call becomes an event whose source names the caller and whose id is the
  // Idempotency-Key; without one it can never arrive twice, so it claims no inbox row.
  const type = on ? "snapmesh.social.like.set" : "snapmesh.social.like.unset";
  const source = `/snapmesh/social/rest/${sha256(authorization).slice(0, 16)}`;
  const id = typeof key === "string" ? `idem-${key}` : randomUUID();
  const caller = sha256(userId);
  const claim = typeof key === "string" ? { source, id, type, caller } : undefined;
  send(res, 200, (await like(on, photoId, userId, claim)).data);
}

const server = http.createServer((req, res) => {
  const fail = (err: unknown) =>
    err instanceof Refused
      ? send(res, err.status, { error: { code: err.code } })
      : send(res, 500, { error: { code: "internal" } });
  const method = req.method ?? "";
  if (req.url === "/" && method === "POST") {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      cloudEvent(req, res, Buffer.concat(chunks)).catch(fail);
    });
    return;
  }
  req.resume();
  const match = ROUTE.exec(req.url ?? "");
  if (!match || (method !== "PUT" && method !== "DELETE")) return send(res, 404, { error: { code: "not_found" } });
  rest(req, res, match[1]!, method === "PUT").catch(fail);
});
serveBaseline(server, () => Promise.all([pool.end(), nc?.drain()]));
