// The console server's own doors, without a browser: static files stay inside the page's folder, and the one write
// (dead-letter replay) takes the operator token.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { SnapEvent } from "@snapmesh/events";
import { connect, headers, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningConsole, startConsole } from "../../scripts/src/console/server.ts";
import { publishDeadLetter } from "../../services/runtime/src/dead-letters.ts";
import { trustVerifier } from "../../services/runtime/src/event-proof.ts";
import { ensureStreams, subjectFor } from "../../services/runtime/src/nats.ts";
import { signedAs, testEventKeysEnv } from "../support/event-keys.ts";
import { testNatsUrl } from "../support/index.ts";
import { uniqueName } from "../support/names.ts";
import { scratchDir } from "../support/service.ts";

let web: RunningConsole;
let locked: RunningConsole;

beforeAll(async () => {
  const root = scratchDir("console-server");
  const publicDir = join(root, "public");
  mkdirSync(join(publicDir, "assets"), { recursive: true });
  writeFileSync(join(publicDir, "index.html"), "<!doctype html><title>page</title>");
  writeFileSync(join(publicDir, "assets", "app.js"), "console.log(1)");
  writeFileSync(join(root, "secret.txt"), "outside the page");
  const names = { stream: uniqueName("CONSOLE"), subjectPrefix: uniqueName("console").toLowerCase() };
  const common = { port: 0, natsUrl: testNatsUrl(), names, services: { auth: "http://127.0.0.1:9" }, publicDir };
  web = await startConsole({ ...common, operatorToken: "op-token-123" });
  locked = await startConsole(common);
});

afterAll(async () => {
  await Promise.all([web?.close(), locked?.close()]);
});

describe("the console server", () => {
  it("serves the page's files and index.html for page routes, never a file outside its folder", async () => {
    const js = await fetch(`${web.url}/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("text/javascript");
    expect(js.headers.get("cache-control")).toContain("immutable");
    expect(await (await fetch(`${web.url}/album`)).text()).toContain("<title>page</title>");
    for (const path of ["/..%2fsecret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt", "/%E0%A4%A"]) {
      const res = await fetch(`${web.url}${path}`);
      expect({ path, body: await res.text() }).not.toEqual({ path, body: "outside the page" });
      expect([200, 404]).toContain(res.status);
    }
  });

  it("reports each service's health, an unreachable one as down", async () => {
    const mesh = (await (await fetch(`${web.url}/api/mesh`)).json()) as {
      services: Array<{ name: string; healthy: boolean; ready: boolean }>;
      replay: string;
    };
    expect(mesh.services).toEqual([expect.objectContaining({ name: "auth", healthy: false, ready: false })]);
    expect(mesh.replay).toBe("operator token");
  });

  it("replays a dead letter only with the operator token, and not at all without one configured", async () => {
    const replay = (base: string, token?: string) =>
      fetch(`${base}/api/dead-letters/1/replay`, {
        method: "POST",
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    expect((await replay(web.url)).status).toBe(401);
    expect((await replay(web.url, "op-token-12")).status).toBe(401);
    expect((await replay(web.url, "op-token-123")).status).toBe(404);
    const off = await replay(locked.url, "op-token-123");
    expect(off.status).toBe(403);
    expect(((await off.json()) as { error: { code: string } }).error.code).toBe("forbidden");
  });
});

// With Knative Eventing the facts pass through the Broker: a Trigger delivers them to the console, which shows only
// those a producer signed, and a replayed dead letter goes back to the Broker.
describe("the console behind a Broker (facts from a Trigger, replay to the Broker)", () => {
  let broker: { url: string; received: Array<Record<string, unknown>>; status: number; close(): Promise<void> };
  let viaBroker: RunningConsole;
  let nc: NatsConnection;
  const names = { stream: uniqueName("CONSOLEB"), subjectPrefix: uniqueName("consoleb").toLowerCase() };

  beforeAll(async () => {
    // Knative's Broker cannot run here: an HTTP server that takes structured CloudEvents stands in for its ingress.
    const received: Array<Record<string, unknown>> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (broker.status < 300) received.push(JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
        res.writeHead(broker.status).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    broker = {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/photos/events`,
      received,
      status: 202,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
    nc = await connect({ servers: testNatsUrl() });
    await ensureStreams(nc, names);
    viaBroker = await startConsole({
      port: 0,
      natsUrl: testNatsUrl(),
      names,
      services: {},
      publicDir: scratchDir("console-broker"),
      operatorToken: "op-token-456",
      replayUrl: broker.url,
      facts: { from: "trigger", verify: trustVerifier(testEventKeysEnv().SNAPMESH_EVENT_TRUST!) },
    });
  });

  afterAll(async () => {
    await Promise.all([viaBroker?.close(), broker?.close(), nc?.close()]);
  });

  const deliver = (headers: Record<string, string>, body: string) =>
    fetch(`${viaBroker.url}/api/facts/ingest`, { method: "POST", headers, body });

  it("shows a signed fact a Trigger delivers, and refuses unsigned, forged and malformed ones", async () => {
    const page = new AbortController();
    const res = await fetch(`${viaBroker.url}/api/facts`, { signal: page.signal });
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const reader = res.body!.getReader();
    const signed = like(uniqueName("like"));
    expect((await deliver({ "content-type": "application/cloudevents+json" }, JSON.stringify(signed))).status).toBe(202);

    const { dssematerial: _proof, ...unsigned } = signed;
    const refused = await deliver({ "content-type": "application/cloudevents+json" }, JSON.stringify({ ...unsigned, id: "x1" }));
    expect(refused.status).toBe(401);
    const forged = { ...signed, id: "x2", data: { photoId: "p-1", userId: "u-1", likes: 1000 } };
    const modified = await deliver({ "content-type": "application/cloudevents+json" }, JSON.stringify(forged));
    expect(modified.status).toBe(403);
    const malformed = await deliver({ "content-type": "application/json" }, "{}");
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe("not_a_cloudevent");

    let text = "";
    while (!text.includes(signed.id)) text += new TextDecoder().decode((await reader.read()).value);
    page.abort();
    const shown = [...text.matchAll(/^event: fact\ndata: (.+)$/gm)].map((m) => JSON.parse(m[1]!) as { event: { id: string } });
    expect(shown.map((f) => f.event.id)).toEqual([signed.id]);

    // A page that connects later is sent what it missed.
    const later = new AbortController();
    const again = (await fetch(`${viaBroker.url}/api/facts`, { signal: later.signal })).body!.getReader();
    let history = "";
    while (!history.includes(signed.id)) history += new TextDecoder().decode((await again.read()).value);
    later.abort();
    expect(history).not.toContain('"x1"');
    expect(history).not.toContain('"x2"');
  });

  it("replays a dead letter to the Broker, and keeps it when the Broker refuses", async () => {
    const event = like(uniqueName("dead"));
    await publishDeadLetter(nc, names, {
      reason: "subscriber answered 500",
      consumer: "share-code",
      attempts: 5,
      subject: "t",
      event,
    });
    const list = (await (await fetch(`${viaBroker.url}/api/dead-letters`)).json()) as {
      deadLetters: Array<{ seq: number; id: string }>;
    };
    const seq = list.deadLetters.find((d) => d.id === event.id)!.seq;
    const replay = () =>
      fetch(`${viaBroker.url}/api/dead-letters/${seq}/replay`, {
        method: "POST",
        headers: { authorization: "Bearer op-token-456" },
      });

    broker.status = 503;
    expect((await replay()).status).toBe(503);
    const kept = (await (await fetch(`${viaBroker.url}/api/dead-letters`)).json()) as { deadLetters: Array<{ id: string }> };
    expect(kept.deadLetters.map((d) => d.id)).toContain(event.id);

    broker.status = 202;
    expect((await replay()).status).toBe(200);
    expect(broker.received.map((e) => e.id)).toEqual([event.id]);
    expect(broker.received[0]).toMatchObject({ type: event.type, dssematerial: event.dssematerial });
    const after = (await (await fetch(`${viaBroker.url}/api/dead-letters`)).json()) as { deadLetters: Array<{ id: string }> };
    expect(after.deadLetters.map((d) => d.id)).not.toContain(event.id);
    // Nothing went to the JetStream facts stream: with Eventing, nobody reads it.
    expect((await (await nc.jetstreamManager()).streams.info(names.stream)).state.messages).toBe(0);
  });
});

describe("facts from the stream", () => {
  it("sends the history, then each new fact once: a repeat the stream drops as a duplicate is not shown", async () => {
    const names = { stream: uniqueName("CONSOLEF"), subjectPrefix: uniqueName("consolef").toLowerCase() };
    const nc = await connect({ servers: testNatsUrl() });
    await ensureStreams(nc, names);
    const viewer = await startConsole({ port: 0, natsUrl: testNatsUrl(), names, services: {}, publicDir: scratchDir("facts") });
    const publish = (event: SnapEvent, msgID = event.id) =>
      nc.jetstream().publish(subjectFor(names, event.type), new TextEncoder().encode(JSON.stringify(event)), {
        msgID,
        headers: cloudEventHeaders(),
      });
    const [a, b, c] = [like(uniqueName("a")), like(uniqueName("b")), like(uniqueName("c"))];
    try {
      await publish(a);
      const page = new AbortController();
      const reader = (await fetch(`${viewer.url}/api/facts`, { signal: page.signal })).body!.getReader();
      let text = "";
      while (!text.includes(a.id)) text += new TextDecoder().decode((await reader.read()).value);
      const retry = await publish(a);
      expect(retry.duplicate).toBe(true);
      await publish(b);
      await publish(a, `${a.id}:replay:1`);
      await publish(c);
      while (!text.includes(c.id)) text += new TextDecoder().decode((await reader.read()).value);
      page.abort();
      const shown = [...text.matchAll(/^event: fact\ndata: (.+)$/gm)].map(
        (m) => JSON.parse(m[1]!) as { seq: number | null; event: { id: string } },
      );
      expect(shown.map((f) => [f.event.id, f.seq === null ? "live" : "stored"])).toEqual([
        [a.id, "stored"],
        [b.id, "live"],
        [a.id, "live"],
        [c.id, "live"],
      ]);
    } finally {
      await viewer.close();
      await nc.close();
    }
  });
});

function cloudEventHeaders() {
  const h = headers();
  h.set("content-type", "application/cloudevents+json");
  return h;
}

/** A like as social signs it. */
function like(id: string): SnapEvent {
  return signedAs("social", {
    id,
    type: "snapmesh.social.like.added",
    subject: "photo/p-1",
    data: { photoId: "p-1", userId: "u-1", likes: 1 },
  });
}
