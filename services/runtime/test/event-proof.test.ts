import type { SnapEvent } from "@snapmesh/events";
import type { NatsConnection } from "nats";
import { headers as natsHeaders } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenOnLoopback } from "../../../test/support/index.ts";
import { parseCloudEvents, toBinary } from "../src/cloudevents-http.js";
import { EventProof, generateEventKey, ProofError, publicJwk, signEvent, signingKey } from "../src/event-proof.js";
import { subjectFor } from "../src/internal.ts";
import { fromNatsMessage } from "../src/nats-binding.js";
import type { Service } from "../src/service.ts";
import { notesService } from "./fixture/notes.ts";
import { eventually, isolatedConfig, natsConnect, streamEvents, streamMessages } from "./helpers.ts";

const producerKey = generateEventKey("ticker-1");
const rotatedKey = generateEventKey("ticker-2");
const attackerKey = generateEventKey("attacker");
const trust = JSON.stringify({ ticker: { keys: [publicJwk(producerKey), publicJwk(rotatedKey)] } });
const consumer = new EventProof("notes", { signingKeys: JSON.stringify({ keys: [generateEventKey()] }), trust });
const ticker = new EventProof("ticker", { signingKeys: JSON.stringify({ keys: [producerKey] }) });

const tick = (n: number, id = `tick-${n}`): SnapEvent => ({
  specversion: "1.0",
  id,
  source: "/snapmesh/ticker",
  type: "test.tick",
  time: new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, ".120Z"),
  datacontenttype: "application/json",
  data: { n, nested: { b: 2, a: 1 } },
});
const reasonOf = (fn: () => unknown) => {
  try {
    fn();
    return "verified";
  } catch (err) {
    return err instanceof ProofError ? `${err.status} ${err.code}` : String(err);
  }
};

describe("event proof (CloudEvents verifiability, DSSE)", () => {
  it("verifies a signed event after the HTTP binary, HTTP structured and NATS bindings", () => {
    const signed = ticker.sign(tick(1));
    expect(consumer.verify(signed)).toBe("ticker");
    const { headers, body } = toBinary(signed);
    const overHttp = parseCloudEvents(headers, Buffer.from(body)).events[0]!;
    expect(consumer.verify(overHttp)).toBe("ticker");
    const structured = parseCloudEvents({ "content-type": "application/cloudevents+json" }, Buffer.from(JSON.stringify(signed)));
    expect(consumer.verify(structured.events[0]!)).toBe("ticker");
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    expect(consumer.verify(fromNatsMessage(new TextEncoder().encode(body), h))).toBe("ticker");
  });

  it("survives a broker that re-encodes the data and the time, and extensions it adds", () => {
    const signed = ticker.sign(tick(2));
    const reencoded = {
      ...signed,
      time: String(signed.time).replace(".120Z", ".12Z"),
      data: { nested: { a: 1, b: 2 }, n: 2 },
      knativearrivaltime: "2026-11-25T10:00:01Z",
    };
    expect(consumer.verify(reencoded)).toBe("ticker");
  });

  it("verifies every trusted key of a producer, so keys rotate without a gap", () => {
    expect(consumer.verify(signEvent(tick(3), signingKey(rotatedKey)))).toBe("ticker");
  });

  it("refuses unsigned, foreign-signed, unknown-producer, tampered and corrupt events with specific codes", () => {
    const signed = ticker.sign(tick(4));
    expect(reasonOf(() => consumer.verify(tick(4)))).toBe("401 event_unsigned");
    const forged = signEvent(tick(4), { ...signingKey(attackerKey), kid: "ticker-1" });
    expect(reasonOf(() => consumer.verify(forged))).toBe("403 event_signature_invalid");
    const otherSource = { ...signed, source: "/snapmesh/storage" };
    expect(reasonOf(() => consumer.verify(otherSource))).toBe("403 event_producer_unknown");
    expect(reasonOf(() => consumer.verify({ ...signed, data: { n: 5, nested: { a: 1, b: 2 } } }))).toBe("403 event_modified");
    expect(reasonOf(() => consumer.verify({ ...signed, type: "test.boom" }))).toBe("403 event_modified");
    expect(reasonOf(() => consumer.verify({ ...signed, subject: "added" }))).toBe("403 event_modified");
    expect(reasonOf(() => consumer.verify({ ...signed, dssematerial: "not base64 json" }))).toBe("403 event_proof_corrupt");
    expect(reasonOf(() => consumer.verify({ ...signed, signedextattrs: "id" }))).toBe("403 event_proof_corrupt");
  });
});

describe("a service refuses facts whose producer is not proven, on every door", () => {
  let service: Service;
  let base: string;
  let nc: NatsConnection;
  const notesKey = generateEventKey("notes-1");

  beforeAll(async () => {
    const config = await isolatedConfig({
      SNAPMESH_EVENT_SIGNING_KEYS: JSON.stringify({ keys: [notesKey] }),
      SNAPMESH_EVENT_TRUST: trust,
    });
    service = await notesService(config);
    base = await listenOnLoopback(service);
    nc = await natsConnect();
  });

  afterAll(async () => {
    await nc?.close();
    await service?.stop();
  });

  const ticks = async (n: number) =>
    Number((await service.db.query<{ c: string }>("SELECT count(*) AS c FROM notes.ticks WHERE n = $1", [n])).rows[0]?.c);
  const post = (event: SnapEvent) =>
    fetch(`${base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify(event),
    });

  it("POST /: an unsigned fact gets 401, a forged one 403, nothing applied, each counted", async () => {
    const unsigned = await post(tick(10));
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe("event_unsigned");
    const binary = toBinary(tick(11));
    expect((await fetch(`${base}/`, { method: "POST", headers: binary.headers, body: binary.body })).status).toBe(401);
    const forged = await post(signEvent(tick(12), { ...signingKey(attackerKey), kid: "ticker-1" }));
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("event_signature_invalid");
    // Signed by a real mesh key, but claiming another producer's source.
    const impersonated = await post(
      new EventProof("notes", { signingKeys: JSON.stringify({ keys: [notesKey] }) }).sign(tick(13)),
    );
    expect(impersonated.status).toBe(403);
    expect(await ticks(10)).toBe(0);
    expect(await ticks(11)).toBe(0);
    expect(await ticks(12)).toBe(0);
    expect(await ticks(13)).toBe(0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/snapmesh_events_refused_total\{[^}]*reason="unsigned"[^}]*\} 2/);
    expect(metrics).toMatch(/snapmesh_events_refused_total\{[^}]*reason="signature_invalid"[^}]*\} 2/);
  });

  it("POST /: a fact signed by its producer is applied, also with extensions a sink adds", async () => {
    const signed = ticker.sign(tick(20));
    const { headers, body } = toBinary({ ...signed, knativearrivaltime: "2026-11-25T10:00:01Z" });
    expect((await fetch(`${base}/`, { method: "POST", headers, body })).status).toBe(202);
    expect(await ticks(20)).toBe(1);
  });

  it("refuses a signed fact older than the inbox retention (its replay could apply twice)", async () => {
    const old = ticker.sign({ ...tick(50), time: new Date(Date.now() - 8 * 24 * 3600_000).toISOString() });
    const res = await post(old);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("event_too_old");
    expect(await ticks(50)).toBe(0);
  });

  it("a batch with one unsigned fact among signed ones applies none of them", async () => {
    const batch = [ticker.sign(tick(40)), tick(41), ticker.sign(tick(42))];
    const res = await fetch(`${base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents-batch+json" },
      body: JSON.stringify(batch),
    });
    expect(res.status).toBe(401);
    const body = (await res.json()) as { error: { code: string; details: { index: number } } };
    expect(body.error.code).toBe("event_unsigned");
    expect(body.error.details.index).toBe(1);
    expect((await ticks(40)) + (await ticks(41)) + (await ticks(42))).toBe(0);
  });

  it("JetStream: an unsigned fact is dead-lettered with the reason and never applied; a signed one is applied", async () => {
    const js = nc.jetstream();
    const subject = subjectFor(service.names, "test.tick");
    await js.publish(subject, new TextEncoder().encode(JSON.stringify(tick(30))));
    await js.publish(subject, new TextEncoder().encode(JSON.stringify(ticker.sign(tick(31)))));
    await eventually(async () => (await ticks(31)) === 1, "the signed tick");
    const dead = await eventually(async () => {
      const msgs = await streamMessages(nc, `${service.names.stream}_DLQ`);
      return msgs.map((m) => JSON.parse(new TextDecoder().decode(m.data))).find((e) => e.event?.id === "tick-30");
    }, "the unsigned tick's dead letter");
    expect(dead.reason).toContain("event_unsigned");
    expect(dead.attempts).toBe(1);
    expect(await ticks(30)).toBe(0);
  });

  it("signs the facts it emits with its own key, verifiable by a service that trusts it", async () => {
    const res = await fetch(`${base}/v1/notes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ noteId: "signed-note", text: "hi" }),
    });
    expect(res.status).toBe(201);
    const fact = await eventually(async () => {
      const all = await streamEvents(nc, service.names.stream);
      return all.find((e) => e.type === "test.note.created" && (e.data as { noteId: string }).noteId === "signed-note");
    }, "the note.created fact");
    const verifier = new EventProof("social", {
      signingKeys: JSON.stringify({ keys: [generateEventKey()] }),
      trust: JSON.stringify({ notes: { keys: [publicJwk(notesKey)] } }),
    });
    expect(verifier.verify(fact)).toBe("notes");
  });
});

describe("a service without event keys", () => {
  it("refuses to start (it could not prove its facts), while tasks such as migrate still run", async () => {
    const config = await isolatedConfig({ SNAPMESH_EVENT_SIGNING_KEYS: "", SNAPMESH_EVENT_TRUST: "" });
    const service = await notesService(config);
    await expect(service.start({ host: "127.0.0.1" })).rejects.toThrow(/SNAPMESH_EVENT_SIGNING_KEYS: required/);
    await service.openDatabaseOnly();
    expect(await service.migrate()).toContain("001_notes");
    await service.db.close();
  });
});
