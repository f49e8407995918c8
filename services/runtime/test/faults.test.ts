import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { SnapEvent } from "@snapmesh/events";
import { connect } from "nats";
import { afterAll, describe, expect, it } from "vitest";
import { startNatsServer, stopChild } from "../../../scripts/src/processes.ts";
import { freePort, isolatedEnv, listenOnLoopback, scratchDir, signedAs, streamMessages } from "../../../test/support/index.ts";
import { baseConfigSchema, OutboxRelay, parseConfig, subjectFor } from "../src/internal.ts";
import type { Service } from "../src/service.ts";
import { notesService, Tick } from "./fixture/notes.ts";
import { eventually } from "./helpers.ts";

const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn().catch(() => {});
});

const create = (base: string, noteId: string) =>
  fetch(`${base}/v1/notes`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ noteId, text: "x" }),
  });
const ready = async (base: string) => (await fetch(`${base}/readyz`)).status;

async function started(env: Record<string, string>): Promise<{ service: Service; base: string }> {
  const service = await notesService(parseConfig(baseConfigSchema, env));
  const base = await listenOnLoopback(service);
  cleanup.push(() => service.stop());
  return { service, base };
}

describe("outbox relay and the database", () => {
  it("a handler's write commits while a publish hangs (no transaction is held across the sink)", async () => {
    // PGlite runs one transaction at a time: a relay holding one across the publish would block the write.
    const env = await isolatedEnv({
      DATABASE_URL: "pglite://memory",
      EVENT_CONSUMERS: "off",
      EVENT_SINK: "none",
      OUTBOX_PAUSED: "1",
    });
    const { service, base } = await started(env);
    expect((await create(base, "before-hang")).status).toBe(201);

    let release: (() => void) | undefined;
    let entered: () => void = () => {};
    const publishing = new Promise<void>((r) => {
      entered = r;
    });
    const published: SnapEvent[] = [];
    const hangingSink = {
      kind: "hanging",
      publish(event: SnapEvent) {
        published.push(event);
        entered();
        return new Promise<void>((r) => {
          release = r;
        });
      },
    };
    const relay = new OutboxRelay({
      db: service.db,
      schema: "notes",
      sink: hangingSink,
      log: service.log,
      metrics: service.metrics,
      pollMs: 60_000,
    });
    const draining = relay.drainOnce();
    await publishing;

    // The write resolves while the sink still holds the publish.
    expect((await create(base, "during-hang")).status).toBe(201);
    expect(published).toHaveLength(1);
    release!();
    expect(await draining).toBe(1);
    const { rows } = await service.db.query<{ note: string; sent: boolean }>(
      "SELECT event->'data'->>'noteId' AS note, sent_at IS NOT NULL AS sent FROM notes.outbox ORDER BY seq",
    );
    expect(rows).toEqual([
      { note: "before-hang", sent: true },
      { note: "during-hang", sent: false },
    ]);
  }, 60_000);
});

describe("NATS down at start", () => {
  it("starts not ready, connects when NATS comes up, then becomes ready and facts flow", async () => {
    const port = await freePort("127.0.0.1");
    const url = `nats://127.0.0.1:${port}`;
    const env = await isolatedEnv({ NATS_URL: url });
    const { service, base } = await started(env);
    expect(await ready(base)).toBe(503);
    expect(service.nats).toBeUndefined();

    const nats = await startNatsServer(port, scratchDir("nats-late"));
    cleanup.push(() => stopChild(nats));
    await eventually(async () => (await ready(base)) === 200, "ready once NATS is up");

    // Facts flow both ways: a command's fact reaches the stream, a published fact is consumed.
    const nc = await connect({ servers: url });
    cleanup.push(() => nc.close());
    expect((await create(base, "after-nats")).status).toBe(201);
    await eventually(async () => {
      const msgs = await streamMessages(nc, env.EVENTS_STREAM!);
      return msgs.some((m) => m.header?.get("ce-type") === "test.note.created");
    }, "the fact on the late NATS");
    const tick = signedAs("test", { id: "late-tick", type: Tick.type, data: { n: 5 } });
    await nc.jetstream().publish(subjectFor(service.names, Tick.type), new TextEncoder().encode(JSON.stringify(tick)));
    await eventually(async () => (await service.db.query("SELECT 1 FROM notes.ticks WHERE n = 5")).rowCount === 1, "the tick");
  }, 60_000);
});

describe("readiness and the sink", () => {
  it("is not ready while facts wait longer than OUTBOX_READY_MAX_AGE_SECONDS, and ready again once the sink takes them", async () => {
    let sinkUp = false;
    const sink: Server = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(sinkUp ? 202 : 503).end());
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    cleanup.push(() => new Promise((r) => sink.close(r)));
    const env = await isolatedEnv({
      EVENT_SINK: "http",
      K_SINK: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`,
      EVENT_CONSUMERS: "off",
      OUTBOX_READY_MAX_AGE_SECONDS: "1",
    });
    const { service, base } = await started(env);
    expect(await ready(base)).toBe(200);
    expect((await create(base, "stuck")).status).toBe(201);
    await eventually(async () => (await ready(base)) === 503, "not ready while the sink refuses");

    sinkUp = true;
    await eventually(async () => (await ready(base)) === 200, "ready once the fact is out");
    const { rows } = await service.db.query<{ sent: boolean }>("SELECT sent_at IS NOT NULL AS sent FROM notes.outbox");
    expect(rows).toEqual([{ sent: true }]);
  }, 30_000);

  it("starts without K_SINK (a revision made before its SinkBinding): not ready, facts kept in the outbox", async () => {
    const env = await isolatedEnv({ EVENT_SINK: "http", EVENT_CONSUMERS: "off" });
    const { service, base } = await started(env);
    expect(await ready(base)).toBe(503);
    expect((await create(base, "no-sink")).status).toBe(201);
    const { rows } = await service.db.query<{ sent: boolean }>("SELECT sent_at IS NOT NULL AS sent FROM notes.outbox");
    expect(rows).toEqual([{ sent: false }]);
  });
});
