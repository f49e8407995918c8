import { once } from "node:events";
import type { Server } from "node:http";
import { connect } from "node:net";
import { CloudEvent, type CloudEventV1, emitterFor, HTTP, Mode } from "cloudevents";
import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signedAs } from "../../../test/support/index.ts";
import { openDatabase, subjectFor } from "../src/internal.ts";
import type { Service } from "../src/service.ts";
import { NoteCreate, notesService } from "./fixture/notes.ts";
import { eventually, isolatedConfig, natsConnect, publishedOk, streamEvents, streamMessages } from "./helpers.ts";

let service: Service;
let server: Server;
let base: string;
let nc: NatsConnection;
let config: Awaited<ReturnType<typeof isolatedConfig>>;

beforeAll(async () => {
  config = await isolatedConfig({ MAX_BODY_BYTES: "4096" });
  service = await notesService(config);
  server = await service.start({ host: "127.0.0.1" });
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  nc = await natsConnect();
});

afterAll(async () => {
  await nc?.close();
  await service?.stop();
});

const fetchTransport = async (message: { headers: Record<string, unknown>; body: unknown }) => {
  const res = await fetch(`${base}/`, {
    method: "POST",
    headers: message.headers as Record<string, string>,
    body: message.body as string,
  });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() };
};

async function noteCount(): Promise<number> {
  const { rows } = await service.db.query<{ n: string }>("SELECT count(*) AS n FROM notes.notes");
  return Number(rows[0]?.n);
}

describe("CloudEvents door", () => {
  it.each([Mode.BINARY, Mode.STRUCTURED])("accepts the SDK emitter in %s mode and answers with the reply event", async (mode) => {
    const emit = emitterFor(fetchTransport, { mode });
    const event = new CloudEvent({
      type: NoteCreate.type,
      source: "/test/sdk",
      data: { noteId: `sdk-${mode}`, text: "hello" },
    });
    const res = (await emit(event)) as { status: number; headers: Record<string, string>; body: string };
    expect(res.status).toBe(200);
    const reply = HTTP.toEvent({ headers: res.headers, body: res.body }) as CloudEventV1<{ noteId: string; count: number }>;
    expect(reply.type).toBe("test.note.stored");
    expect(reply.source).toBe("/snapmesh/notes");
    expect(reply.data?.noteId).toBe(`sdk-${mode}`);
  });

  it("answers a batch with a batch of replies", async () => {
    const batch = [1, 2, 3].map((i) => ({
      specversion: "1.0",
      id: `batch-${i}`,
      source: "/test/batch",
      type: NoteCreate.type,
      data: { noteId: `b${i}`, text: `t${i}` },
    }));
    const res = await fetch(`${base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify(batch),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/cloudevents-batch+json");
    const replies = (await res.json()) as Array<{ type: string; data: { noteId: string } }>;
    expect(replies.map((r) => r.data.noteId)).toEqual(["b1", "b2", "b3"]);
  });

  it("REST door maps to the same handler", async () => {
    const res = await fetch(`${base}/v1/notes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ noteId: "rest-1", text: "via rest" }),
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { noteId: string }).noteId).toBe("rest-1");
    const dup = await fetch(`${base}/v1/notes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ noteId: "rest-1", text: "again" }),
    });
    expect(dup.status).toBe(400);
    expect(((await dup.json()) as { error: { code: string } }).error.code).toBe("note_exists");
  });

  it("serves health, readiness and Prometheus metrics", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/snapmesh_events_handled_total\{[^}]*type="test.note.create"/);
    // Node's process metrics start after the cold start, and at the latest with the first scrape.
    expect(metrics).toMatch(/^process_cpu_user_seconds_total\{service="notes"\} /m);
    expect(metrics).toMatch(/^nodejs_heap_size_used_bytes\{service="notes"\} /m);
  });
});

const good = { specversion: "1.0", id: "x1", source: "/test/bad", type: NoteCreate.type, data: { noteId: "never", text: "x" } };
const structured = (body: unknown) => ({
  headers: { "content-type": "application/cloudevents+json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});
const binary = (headers: Record<string, string>, body = JSON.stringify(good.data)) => ({
  headers: {
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": "b1",
    "ce-source": "/test/bad",
    "ce-type": NoteCreate.type,
    ...headers,
  },
  body,
});
const without = (key: string) => Object.fromEntries(Object.entries(good).filter(([k]) => k !== key));
const batch = (entries: unknown[]) => ({
  headers: { "content-type": "application/cloudevents-batch+json" },
  body: JSON.stringify(entries),
});

const malformed: Array<[string, { headers: Record<string, string>; body: string }, number, string]> = [
  ["structured: missing specversion", structured(without("specversion")), 400, "missing_specversion"],
  ["structured: missing id", structured(without("id")), 400, "missing_id"],
  ["structured: missing source", structured(without("source")), 400, "missing_source"],
  ["structured: missing type", structured(without("type")), 400, "missing_type"],
  ["structured: wrong specversion", structured({ ...good, specversion: "0.3" }), 400, "unsupported_specversion"],
  ["structured: empty id", structured({ ...good, id: "" }), 400, "missing_id"],
  ["structured: numeric id", structured({ ...good, id: 42 }), 400, "invalid_id"],
  ["structured: bad JSON", structured("{ not json"), 400, "malformed_json"],
  ["structured: empty body", structured(""), 400, "malformed_json"],
  ["structured: array instead of object", structured([good]), 400, "invalid_cloudevent"],
  ["structured: bad time", structured({ ...good, time: "yesterday" }), 400, "invalid_cloudevent"],
  ["structured: bad extension name", structured({ ...good, "Bad-Name": "x" }), 400, "invalid_attribute_name"],
  ["structured: source with a space", structured({ ...good, source: "/a b" }), 400, "invalid_cloudevent"],
  ["structured: relative dataschema", structured({ ...good, dataschema: "schemas/x.json" }), 400, "invalid_cloudevent"],
  ["structured: empty subject", structured({ ...good, subject: "" }), 400, "invalid_cloudevent"],
  ["structured: object extension", structured({ ...good, ext: { a: 1 } }), 400, "invalid_cloudevent"],
  ["structured: time without zone", structured({ ...good, time: "2026-11-26T05:00:00" }), 400, "invalid_cloudevent"],
  ["structured: data_base64", structured({ ...without("data"), data_base64: "AAAA" }), 415, "unsupported_media_type"],
  [
    "structured: other format",
    { headers: { "content-type": "application/cloudevents+xml" }, body: "<x/>" },
    415,
    "unsupported_media_type",
  ],
  ["structured: unknown type", structured({ ...good, type: "test.nope" }), 400, "unknown_event_type"],
  ["structured: wrong data shape", structured({ ...good, data: { noteId: 7 } }), 400, "invalid_event_data"],
  ["structured: data too long", structured({ ...good, data: { noteId: "n", text: "x".repeat(300) } }), 400, "invalid_event_data"],
  ["structured: no data", structured(without("data")), 400, "invalid_event_data"],
  ["binary: missing ce-specversion", binary({ "ce-specversion": "" }), 400, "missing_specversion"],
  ["binary: missing ce-id", binary({ "ce-id": "" }), 400, "missing_id"],
  ["binary: wrong specversion", binary({ "ce-specversion": "2.0" }), 400, "unsupported_specversion"],
  ["binary: bad JSON data", binary({}, "{oops"), 400, "malformed_json"],
  ["binary: non-JSON data", binary({ "content-type": "text/plain" }, "hi"), 415, "unsupported_media_type"],
  ["binary: bad percent-encoding", binary({ "ce-source": "%zz" }), 400, "invalid_header"],
  ["no ce headers, text", { headers: { "content-type": "text/plain" }, body: "hello" }, 415, "unsupported_media_type"],
  ["no ce headers, JSON", { headers: { "content-type": "application/json" }, body: "{}" }, 400, "not_a_cloudevent"],
  [
    "compressed body",
    { headers: { "content-type": "application/cloudevents+json", "content-encoding": "gzip" }, body: "{}" },
    415,
    "unsupported_media_type",
  ],
  ["over-size body", structured({ ...good, data: { noteId: "n", text: "x".repeat(8000) } }), 413, "payload_too_large"],
  ["batch: not an array", batch({ ...good } as unknown as unknown[]), 400, "invalid_batch"],
  ["batch: empty", batch([]), 400, "invalid_batch"],
  ["batch: one entry missing id", batch([{ ...good, id: "ok-1" }, without("id")]), 400, "missing_id"],
  [
    "batch: one entry with bad data",
    batch([
      { ...good, id: "ok-2" },
      { ...good, id: "bad", data: {} },
    ]),
    400,
    "invalid_event_data",
  ],
  [
    "batch: one entry of unknown type",
    batch([
      { ...good, id: "ok-3" },
      { ...good, id: "u", type: "nope" },
    ]),
    400,
    "unknown_event_type",
  ],
];

describe("malformed requests", () => {
  it(`${malformed.length} malformed requests each get a specific 4xx, and nothing is written`, async () => {
    expect(malformed.length).toBeGreaterThanOrEqual(30);
    const notesBefore = await noteCount();
    const inboxBefore = (await service.db.query<{ n: string }>("SELECT count(*) AS n FROM notes.inbox")).rows[0]?.n;
    for (const [name, req, status, code] of malformed) {
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([, v]) => v !== ""));
      const res = await fetch(`${base}/`, { method: "POST", headers, body: req.body });
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect({ name, status: res.status, code: body.error?.code }).toEqual({ name, status, code });
      expect(body.error.message.length).toBeGreaterThan(0);
    }
    expect(await noteCount()).toBe(notesBefore);
    const inboxAfter = (await service.db.query<{ n: string }>("SELECT count(*) AS n FROM notes.inbox")).rows[0]?.n;
    expect(inboxAfter).toBe(inboxBefore);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe("exactly-once effects", () => {
  it("applies the same event once when it arrives over HTTP and again over JetStream", async () => {
    const tick = signedAs("test", { id: "tick-dup-1", type: "test.tick", data: { n: 7 } });
    const res = await fetch(`${base}/`, { method: "POST", ...structured(tick) });
    expect(res.status).toBe(202);
    const again = await fetch(`${base}/`, { method: "POST", ...structured(tick) });
    expect(again.status).toBe(202);
    // The same event, now through the stream (a different Nats-Msg-Id so the stream itself does not drop it).
    const js = nc.jetstream();
    await js.publish(subjectFor(service.names, "test.tick"), new TextEncoder().encode(JSON.stringify(tick)), { msgID: "other" });
    const marker = signedAs("test", { id: "tick-marker", type: "test.tick", data: { n: 8 } });
    await js.publish(subjectFor(service.names, "test.tick"), new TextEncoder().encode(JSON.stringify(marker)));
    await eventually(async () => {
      const { rows } = await service.db.query<{ n: number }>("SELECT n FROM notes.ticks WHERE n = 8");
      return rows.length === 1;
    }, "the marker tick");
    const { rows } = await service.db.query<{ n: number }>("SELECT n FROM notes.ticks WHERE n = 7");
    expect(rows).toHaveLength(1);
  });

  it("a repeated command returns the stored reply and writes nothing new", async () => {
    const cmd = { ...good, id: "repeat-1", data: { noteId: "repeat", text: "once" } };
    const first = await (await fetch(`${base}/`, { method: "POST", ...structured(cmd) })).json();
    const second = await (await fetch(`${base}/`, { method: "POST", ...structured(cmd) })).json();
    expect(second).toEqual(first);
    const facts = (await streamEvents(nc, service.names.stream)).filter(
      (e) => e.type === "test.note.created" && (e.data as { noteId: string }).noteId === "repeat",
    );
    await eventually(async () => {
      const all = (await streamEvents(nc, service.names.stream)).filter(
        (e) => e.type === "test.note.created" && (e.data as { noteId: string }).noteId === "repeat",
      );
      return all.length >= 1 ? all : undefined;
    }, "the note.created fact");
    expect(facts.length).toBeLessThanOrEqual(1);
    // One outbox row, published once and marked sent (the stream's duplicate window would hide a relay that does not).
    const rows = await eventually(async () => {
      const { rows } = await service.db.query<{ sent: boolean; attempts: number }>(
        "SELECT sent_at IS NOT NULL AS sent, attempts FROM notes.outbox WHERE event->'data'->>'noteId' = 'repeat'",
      );
      return rows.every((r) => r.sent) ? rows : undefined;
    }, "the outbox row marked sent");
    expect(rows).toEqual([{ sent: true, attempts: 1 }]);
  });

  it("runs a read-only command without an inbox row each time it arrives, and refuses what it tries to emit", async () => {
    const cmd = { ...good, id: "count-1", type: "test.note.count", data: {} };
    const answers = [];
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${base}/`, { method: "POST", ...structured(cmd) });
      expect(res.status).toBe(200);
      answers.push((await res.json()) as { type: string; data: { count: number } });
    }
    expect(answers.map((a) => a.type)).toEqual(["test.note.counted", "test.note.counted"]);
    expect(answers[0]!.data.count).toBe(await noteCount());
    const inbox = await service.db.query("SELECT 1 FROM notes.inbox WHERE id = 'count-1'");
    expect(inbox.rowCount).toBe(0);
    const emitting = await fetch(`${base}/`, { method: "POST", ...structured({ ...cmd, id: "count-2", data: { emit: true } }) });
    expect(emitting.status).toBe(500);
    const outbox = await service.db.query("SELECT 1 FROM notes.outbox WHERE event->'data'->>'noteId' = 'never'");
    expect(outbox.rowCount).toBe(0);
  });

  it("carries the W3C traceparent from a command to the facts it emits", async () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const cmd = { ...good, id: "traced-1", traceparent, data: { noteId: "traced", text: "t" } };
    expect((await fetch(`${base}/`, { method: "POST", ...structured(cmd) })).status).toBe(200);
    const fact = await eventually(async () => {
      const all = await streamEvents(nc, service.names.stream);
      return all.find((e) => e.type === "test.note.created" && (e.data as { noteId: string }).noteId === "traced");
    }, "the traced fact");
    expect(fact.traceparent).toBe(traceparent);
  });

  it("publishes each emitted fact once, with the CloudEvents NATS binding and Nats-Msg-Id", async () => {
    const noteIds = Array.from({ length: 6 }, (_, i) => `published-${i}`);
    for (const noteId of noteIds) {
      const cmd = { ...good, id: `publish-${noteId}`, data: { noteId, text: "p" } };
      expect((await fetch(`${base}/`, { method: "POST", ...structured(cmd) })).status).toBe(200);
    }
    const ours = (m: { header?: { get(k: string): string } }) => m.header?.get("ce-type") === "test.note.created";
    const msgs = await eventually(async () => {
      const all = (await streamMessages(nc, service.names.stream)).filter(ours);
      const mine = all.filter((m) =>
        noteIds.includes((JSON.parse(new TextDecoder().decode(m.data)) as { noteId: string }).noteId),
      );
      return mine.length >= noteIds.length ? mine : undefined;
    }, "our note.created facts");
    expect(msgs).toHaveLength(noteIds.length);
    const ids = msgs.map((m) => m.header?.get("ce-id"));
    expect(new Set(ids).size).toBe(ids.length);
    expect(msgs[0]?.header?.get("Nats-Msg-Id")).toBe(ids[0]);
    expect(msgs[0]?.header?.get("ce-source")).toBe("/snapmesh/notes");
    // Every outbox row is marked sent after exactly one publish, and the relay published each fact once.
    const rows = await eventually(async () => {
      const { rows } = await service.db.query<{ sent: boolean; attempts: number }>(
        "SELECT sent_at IS NOT NULL AS sent, attempts FROM notes.outbox WHERE type = 'test.note.created'",
      );
      return rows.length >= noteIds.length && rows.every((r) => r.sent) ? rows : undefined;
    }, "every outbox row marked sent");
    expect(rows.every((r) => r.attempts === 1)).toBe(true);
    expect(publishedOk(await service.metrics.registry.metrics(), "test.note.created")).toBe(rows.length);
  });
});

describe("dead letters", () => {
  it("retries a failing handler with backoff, dead-letters it with the reason, and keeps other events flowing", async () => {
    const js = nc.jetstream();
    const boom = signedAs("test", { id: "boom-1", type: "test.boom", data: { n: 1 } });
    await js.publish(subjectFor(service.names, "test.boom"), new TextEncoder().encode(JSON.stringify(boom)));
    const tick = signedAs("test", { id: "tick-after-boom", type: "test.tick", data: { n: 99 } });
    await js.publish(subjectFor(service.names, "test.tick"), new TextEncoder().encode(JSON.stringify(tick)));
    await eventually(async () => (await service.db.query("SELECT 1 FROM notes.ticks WHERE n = 99")).rowCount === 1, "tick 99");
    const dead = await eventually(async () => {
      const msgs = await streamMessages(nc, `${service.names.stream}_DLQ`);
      return msgs.length > 0 ? msgs : undefined;
    }, "the dead letter");
    const entry = JSON.parse(new TextDecoder().decode(dead[0]!.data)) as {
      reason: string;
      attempts: number;
      event: { id: string };
    };
    expect(entry.event.id).toBe("boom-1");
    expect(entry.reason).toContain("boom handler always fails");
    expect(entry.attempts).toBe(Number(config.CONSUMER_MAX_ATTEMPTS));
    expect(dead[0]!.header?.get("snapmesh-dlq-reason")).toContain("boom");
  });

  it("dead-letters a poison event (invalid data) at once, without retries", async () => {
    const js = nc.jetstream();
    const poison = { specversion: "1.0", id: "poison-1", source: "/test/poison", type: "test.tick", data: { n: "NaN" } };
    await js.publish(subjectFor(service.names, "test.tick"), new TextEncoder().encode(JSON.stringify(poison)));
    const dead = await eventually(async () => {
      const msgs = await streamMessages(nc, `${service.names.stream}_DLQ`);
      const found = msgs.map((m) => JSON.parse(new TextDecoder().decode(m.data))).find((e) => e.event?.id === "poison-1");
      return found;
    }, "the poison dead letter");
    expect(dead.reason).toContain("invalid_event_data");
    expect(dead.attempts).toBe(1);
  });
});

describe("database", () => {
  // Every connection costs a SCRAM exchange on the cold-start path (and a PostgreSQL backend per instance on a spike).
  it("a service that just became ready holds one PostgreSQL connection", async () => {
    const fresh = await isolatedConfig();
    const started = await notesService(fresh);
    const addr = (await started.start({ host: "127.0.0.1" })).address();
    const db = await openDatabase(fresh.DATABASE_URL);
    try {
      const res = await fetch(`http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/readyz`);
      expect(res.status).toBe(200);
      const { rows } = await db.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
      );
      expect(Number(rows[0]?.n)).toBe(1);
    } finally {
      await db.close();
      await started.stop();
    }
  });

  it("migrations are recorded and applied once", async () => {
    const db = await openDatabase(config.DATABASE_URL);
    try {
      const { rows } = await db.query<{ name: string }>("SELECT name FROM notes.schema_migrations ORDER BY name");
      expect(rows.map((r) => r.name)).toEqual([
        "000_runtime_inbox_caller",
        "000_runtime_inbox_outbox",
        "000_runtime_outbox_claim",
        "000_runtime_retention_indexes",
        "001_notes",
      ]);
      expect(await service.migrate()).toEqual([]);
    } finally {
      await db.close();
    }
  });
});

describe("stop", () => {
  it("ends within SHUTDOWN_TIMEOUT_MS when a request never finishes, and still closes NATS and the database", async () => {
    const fresh = await isolatedConfig({ SHUTDOWN_TIMEOUT_MS: "300" });
    const started = await notesService(fresh);
    const addr = (await started.start({ host: "127.0.0.1" })).address();
    const port = typeof addr === "object" && addr ? addr.port : 0;
    // A client that promises a body and never sends it: its request stays in flight.
    const socket = connect({ host: "127.0.0.1", port });
    try {
      socket.write(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
      );
      const [continued] = (await once(socket, "data")) as [Buffer];
      expect(continued.toString()).toMatch(/^HTTP\/1\.1 100 Continue/);
      const nats = started.nats;
      await started.stop();
      expect(nats?.isClosed()).toBe(true);
      await expect(started.db.query("SELECT 1")).rejects.toThrow();
    } finally {
      socket.destroy();
    }
  });
});
