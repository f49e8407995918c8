import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  freePort,
  isolatedEnv,
  listenOnLoopback,
  natsConnect,
  scratchDir,
  streamEvents,
  testIssuer,
} from "../../../test/support/index.ts";
import { storage } from "../src/service.ts";
import { png } from "./images.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const SIGNING = `k:${"z".repeat(40)}`;

describe("storage lifecycle", () => {
  it("`main.ts migrate` applies the migrations and exits 0 (the Kubernetes Job entry point)", async () => {
    const env = await isolatedEnv({ STORAGE_SIGNING_KEYS: SIGNING });
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "migrate"], {
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query("SELECT name FROM storage.schema_migrations ORDER BY name");
      expect(rows.map((r) => r.name)).toEqual([
        "000_runtime_inbox_caller",
        "000_runtime_inbox_outbox",
        "000_runtime_outbox_claim",
        "000_runtime_retention_indexes",
        "001_objects",
      ]);
    } finally {
      await client.end();
    }
  });

  it("loses no object.created fact when the process stops between the metadata commit and the publish", async () => {
    const issuer = await testIssuer();
    const env = await isolatedEnv({
      STORAGE_SIGNING_KEYS: SIGNING,
      STORAGE_DIR: scratchDir("lifecycle"),
      EVENT_CONSUMERS: "off",
    });
    const nc = await natsConnect();
    try {
      // The relay is held: the upload commits its metadata and outbox row, and nothing is published.
      const first = await storage.create({ ...env, OUTBOX_PAUSED: "1" });
      first.authenticate = issuer.verifier;
      const base = await listenOnLoopback(first);
      const put = await fetch(`${base}/v1/objects/crash/p.png`, {
        method: "PUT",
        headers: { authorization: await issuer.bearer("ann"), "content-type": "image/png" },
        body: png(1000),
      });
      expect(put.status).toBe(201);
      await first.stop();
      expect(
        (await streamEvents(nc, env.EVENTS_STREAM!)).filter((e) => e.type === "snapmesh.storage.object.created"),
      ).toHaveLength(0);

      const second = await storage.create(env);
      await listenOnLoopback(second);
      try {
        const facts = await eventually(async () => {
          const all = (await streamEvents(nc, env.EVENTS_STREAM!)).filter((e) => e.type === "snapmesh.storage.object.created");
          return all.length > 0 ? all : undefined;
        }, "the fact after restart");
        await second.flushOutbox();
        expect(facts).toHaveLength(1);
        expect(facts[0]!.data).toMatchObject({ key: "crash/p.png", owner: "ann", size: 1000 });
        // Published once and marked sent: the stream's duplicate window would hide a relay that republishes.
        const rows = await eventually(async () => {
          const { rows } = await second.db.query<{ sent: boolean; attempts: number }>(
            "SELECT sent_at IS NOT NULL AS sent, attempts FROM storage.outbox",
          );
          return rows.every((r) => r.sent) ? rows : undefined;
        }, "the outbox row marked sent");
        expect(rows).toEqual([{ sent: true, attempts: 1 }]);
        const published = (await second.metrics.eventsPublished.get()).values.filter(
          (v) => v.labels.type === "snapmesh.storage.object.created" && v.labels.outcome === "ok",
        );
        expect(published.reduce((n, v) => n + v.value, 0)).toBe(1);
      } finally {
        await second.stop();
      }
    } finally {
      await nc.close();
    }
  });

  describe("declared needs: STORAGE_BACKEND=nats with facts over HTTP (EVENT_SINK=http)", () => {
    let sink: Server;
    let sinkUrl: string;
    beforeAll(async () => {
      sink = createServer((req, res) => {
        req.resume();
        req.on("end", () => res.writeHead(202).end());
      });
      await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
      sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
    });
    afterAll(() => new Promise((r) => sink.close(r)));

    const natsBacked = async (overrides: Record<string, string> = {}) =>
      isolatedEnv({
        STORAGE_SIGNING_KEYS: SIGNING,
        STORAGE_BACKEND: "nats",
        STORAGE_NATS_BUCKET: `needs-${Math.random().toString(36).slice(2, 10)}`,
        EVENT_SINK: "http",
        K_SINK: sinkUrl,
        EVENT_CONSUMERS: "off",
        ...overrides,
      });

    it("connects NATS although facts go over HTTP, is ready, and stores uploads", async () => {
      const issuer = await testIssuer();
      const service = await storage.create(await natsBacked());
      service.authenticate = issuer.verifier;
      const base = await listenOnLoopback(service);
      try {
        expect(service.nats).toBeDefined();
        expect((await fetch(`${base}/readyz`)).status).toBe(200);
        const put = await fetch(`${base}/v1/objects/needs/p.png`, {
          method: "PUT",
          headers: { authorization: await issuer.bearer("ann"), "content-type": "image/png" },
          body: png(500),
        });
        expect(put.status).toBe(201);
      } finally {
        await service.stop();
      }
    });

    it("is not ready while the NATS it needs is unreachable", async () => {
      const port = await freePort("127.0.0.1");
      const service = await storage.create(await natsBacked({ NATS_URL: `nats://127.0.0.1:${port}` }));
      const base = await listenOnLoopback(service);
      try {
        expect((await fetch(`${base}/readyz`)).status).toBe(503);
      } finally {
        await service.stop();
      }
    });
  });
});
