import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, isolatedEnv, listenOnLoopback } from "../../../test/support/index.ts";
import { baseConfigSchema, parseConfig } from "../src/internal.ts";
import { notesService } from "./fixture/notes.ts";

const received: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
let sink: Server;
let sinkUrl: string;
let failNext = 0;

beforeAll(async () => {
  // Stands in for a Knative Broker ingress: K_SINK receives binary-mode CloudEvents.
  sink = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => {
      body += d;
    });
    req.on("end", () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(503).end();
        return;
      }
      received.push({ headers: req.headers, body });
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((r) => sink.close(r));
});

const create = (base: string, id: string) =>
  fetch(`${base}/`, {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify({
      specversion: "1.0",
      id,
      source: "/test/sink",
      type: "test.note.create",
      data: { noteId: id, text: "x" },
    }),
  });

describe("HTTP sink (Knative K_SINK)", () => {
  it("posts facts in binary mode with K_CE_OVERRIDES applied, retrying when the sink fails", async () => {
    const env = await isolatedEnv({
      EVENT_SINK: "http",
      K_SINK: sinkUrl,
      K_CE_OVERRIDES: JSON.stringify({ extensions: { cluster: "prod-1" } }),
      EVENT_CONSUMERS: "off",
    });
    const service = await notesService(parseConfig(baseConfigSchema, env));
    const base = await listenOnLoopback(service);
    try {
      failNext = 2;
      expect((await create(base, "sink-1")).status).toBe(200);
      const got = await eventually(
        async () => received.find((r) => r.headers["ce-type"] === "test.note.created"),
        "the fact at the sink",
      );
      expect(got.headers["ce-source"]).toBe("/snapmesh/notes");
      expect(got.headers["ce-cluster"]).toBe("prod-1");
      expect(got.headers["content-type"]).toContain("application/json");
      expect(JSON.parse(got.body)).toEqual({ noteId: "sink-1", text: "x" });
      expect(failNext).toBe(0);
      // The row is marked sent in the relay's transaction, which commits just after the sink answered.
      const rows = await eventually(async () => {
        const { rows } = await service.db.query<{ attempts: number; sent: boolean }>(
          "SELECT attempts, sent_at IS NOT NULL AS sent FROM notes.outbox",
        );
        return rows[0]?.sent ? rows : undefined;
      }, "the outbox row marked sent");
      expect(rows).toEqual([{ attempts: 3, sent: true }]);
    } finally {
      await service.stop();
    }
  });
});

describe("PGlite (the embedded default)", () => {
  it("runs the same migrations, handlers, inbox and outbox as PostgreSQL", async () => {
    const env = await isolatedEnv({ DATABASE_URL: "pglite://memory", EVENT_CONSUMERS: "off", EVENT_SINK: "none" });
    const service = await notesService(parseConfig(baseConfigSchema, env));
    const base = await listenOnLoopback(service);
    try {
      const first = await (await create(base, "lite-1")).json();
      const again = await (await create(base, "lite-1")).json();
      expect(again).toEqual(first);
      const { rows } = await service.db.query<{ n: number }>("SELECT count(*)::int AS n FROM notes.notes");
      expect(rows[0]!.n).toBe(1);
      const outbox = await service.db.query<{ type: string }>("SELECT type FROM notes.outbox WHERE sent_at IS NULL");
      expect(outbox.rows.map((r) => r.type)).toEqual(["test.note.created"]);
    } finally {
      await service.stop();
    }
  }, 60_000);
});
