import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { shareCode } from "../../services/share-code/src/service.ts";
import { decodeQr } from "../../services/share-code/test/qr.ts";
import { storage as storageService } from "../../services/storage/src/service.ts";
import { type FakeWechat, fakeWechat } from "../support/fakes/wechat.ts";
import {
  eventually,
  type ForwardProxy,
  forwardProxy,
  isolatedEnv,
  listenOnLoopback,
  natsConnect,
  scratchDir,
  signedAs,
  streamEvents,
  type TestIssuer,
  testIssuer,
} from "../support/index.ts";

// share-code stores its QR images in the storage service: a cross-service test, so it lives outside both.

type ShareCodeService = Awaited<ReturnType<typeof shareCode.create>>;

let issuer: TestIssuer;
let storage: Awaited<ReturnType<typeof storageService.create>>;
let storageUrl: string;
let proxy: ForwardProxy;
let wechat: FakeWechat;
const services: ShareCodeService[] = [];

beforeAll(async () => {
  issuer = await testIssuer();
  storage = await storageService.create(
    await isolatedEnv({ STORAGE_SIGNING_KEYS: `k:${"x".repeat(40)}`, STORAGE_DIR: scratchDir("sc-objects") }),
  );
  storage.authenticate = issuer.verifier;
  storageUrl = await listenOnLoopback(storage);
  proxy = await forwardProxy("127.0.0.2");
  wechat = await fakeWechat({ allowFrom: ["127.0.0.2"] });
});

afterAll(async () => {
  for (const s of services) await s.stop();
  await storage?.stop();
  await Promise.all([proxy?.stop(), wechat?.stop()]);
});

async function startShareCode(overrides: Record<string, string> = {}) {
  const env = await isolatedEnv({
    SNAPMESH_STORAGE_URL: storageUrl,
    EGRESS_PROXY: proxy.url,
    EGRESS_ALLOW_HOSTS: "127.0.0.1",
    WECHAT_API_BASE: wechat.url,
    WECHAT_APP_ID: wechat.appId,
    WECHAT_APP_SECRET: wechat.appSecret,
    SHARECODE_PURGE_GRACE_SECONDS: "0",
    ...overrides,
  });
  const service = await shareCode.create(env);
  service.authenticate = issuer.verifier;
  services.push(service);
  return { service, base: await listenOnLoopback(service), stream: env.EVENTS_STREAM! };
}

const headers = async (user = "creator") => ({ authorization: await issuer.bearer(user), "content-type": "application/json" });
const create = async (base: string, body: unknown) =>
  fetch(`${base}/v1/share-codes`, { method: "POST", headers: await headers(), body: JSON.stringify(body) });
const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe("share-code", () => {
  let service: ShareCodeService;
  let base: string;
  let stream: string;
  let nc: NatsConnection;

  beforeAll(async () => {
    ({ service, base, stream } = await startShareCode({ SHARECODE_CONTENT_TEMPLATE: "https://app.example/s/{code}" }));
    nc = await natsConnect();
  });
  afterAll(async () => {
    await nc?.close();
  });

  it("makes a short code whose PNG, kept in storage behind a temporary URL, decodes back to it", async () => {
    const res = await create(base, { page: "pages/album/index", params: { albumId: "a1", owner: "creator", name: "Trip" } });
    expect(res.status).toBe(201);
    const made = (await res.json()) as { code: string; imageUrl: string; expiresAt: string };
    expect(made.code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}$/);
    expect(made.imageUrl.startsWith(`${storageUrl}/v1/objects/sharecodes/${made.code}.png?`)).toBe(true);
    const image = await fetch(made.imageUrl);
    expect(image.headers.get("content-type")).toBe("image/png");
    expect(decodeQr(Buffer.from(await image.arrayBuffer()))).toBe(`https://app.example/s/${made.code}`);
    const resolved = (await (await fetch(`${base}/v1/share-codes/${made.code.toLowerCase()}`)).json()) as Record<string, unknown>;
    expect(resolved).toMatchObject({
      code: made.code,
      page: "pages/album/index",
      params: { albumId: "a1", owner: "creator", name: "Trip" },
      scans: 1,
      imageStatus: "ok",
    });
  });

  it("counts scans exactly under 20 concurrent resolvers and emits a scanned fact each", async () => {
    const made = (await (await create(base, { page: "pages/p", params: { n: 1 } })).json()) as { code: string };
    const results = await Promise.all(
      Array.from({ length: 20 }, () => fetch(`${base}/v1/share-codes/${made.code}`).then((r) => r.json())),
    );
    const counts = (results as Array<{ scans: number }>).map((r) => r.scans).sort((a, b) => a - b);
    expect(counts).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const facts = await eventually(async () => {
      const all = (await streamEvents(nc, stream)).filter(
        (e) => e.type === "snapmesh.sharecode.scanned" && e.subject === made.code,
      );
      return all.length === 20 ? all : undefined;
    }, "20 scanned facts");
    expect(facts).toHaveLength(20);
  });

  it("answers 404 for unknown codes, 410 for expired ones, and the purge removes them", async () => {
    expect(await code(await fetch(`${base}/v1/share-codes/ZZZZZZZZZZ`))).toBe("code_not_found");
    expect((await fetch(`${base}/v1/share-codes/not-a-code!`)).status).toBe(404);
    const made = (await (await create(base, { page: "pages/p", params: {}, ttlSeconds: 60 })).json()) as { code: string };
    await service.db.query("UPDATE sharecode.codes SET expires_at = now() - interval '1 second' WHERE code = $1", [made.code]);
    const expired = await fetch(`${base}/v1/share-codes/${made.code}`);
    expect(expired.status).toBe(410);
    expect(await code(expired)).toBe("code_expired");
    const purge = await fetch(`${base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify(signedAs("test", { id: "expire-1", type: "snapmesh.sharecode.expire", data: {} })),
    });
    expect(((await purge.json()) as { data: { purged: number } }).data.purged).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${base}/v1/share-codes/${made.code}`)).status).toBe(404);
  });

  it("refuses an anonymous expire command and a PingSource tick: only the mesh may purge", async () => {
    const made = (await (await create(base, { page: "pages/p", params: {}, ttlSeconds: 60 })).json()) as { code: string };
    await service.db.query("UPDATE sharecode.codes SET expires_at = now() - interval '1 second' WHERE code = $1", [made.code]);
    const anonymous = await fetch(`${base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({
        specversion: "1.0",
        id: "anon-1",
        source: "/snapmesh/share-code",
        type: "snapmesh.sharecode.expire",
        data: {},
      }),
    });
    expect(anonymous.status).toBe(401);
    expect(await code(anonymous)).toBe("event_unsigned");
    const withToken = await fetch(`${base}/`, {
      method: "POST",
      headers: { ...(await headers()), "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id: "user-1", source: "/app", type: "snapmesh.sharecode.expire", data: {} }),
    });
    expect(withToken.status).toBe(401);
    const ping = await fetch(`${base}/`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "ping-tick-1",
        "ce-source": "/apis/v1/namespaces/photos/pingsources/snapmesh-sharecode-expire",
        "ce-type": "dev.knative.sources.ping",
      },
      body: "{}",
    });
    expect(ping.status).toBe(400);
    expect((await fetch(`${base}/v1/share-codes/${made.code}`)).status).toBe(410);
  });

  it("purges expired codes on its own timer when SHARECODE_PURGE_INTERVAL_SECONDS is set", async () => {
    const timed = await startShareCode({ SHARECODE_PURGE_INTERVAL_SECONDS: "1" });
    const made = (await (await create(timed.base, { page: "pages/p", params: {}, ttlSeconds: 60 })).json()) as { code: string };
    await timed.service.db.query("UPDATE sharecode.codes SET expires_at = now() - interval '1 second' WHERE code = $1", [
      made.code,
    ]);
    await eventually(async () => (await fetch(`${timed.base}/v1/share-codes/${made.code}`)).status === 404, "the purge");
  });

  it("refuses payloads that are too large or not a JSON object", async () => {
    const big = await create(base, { page: "pages/p", params: { blob: "x".repeat(5000) } });
    expect(big.status).toBe(413);
    expect(await code(big)).toBe("params_too_large");
    expect(await code(await create(base, { page: "pages/p", params: ["a"] }))).toBe("invalid_event_data");
    expect(await code(await create(base, { page: "pages/p", params: "text" }))).toBe("invalid_event_data");
    expect(await code(await create(base, { page: "../../etc", params: {} }))).toBe("invalid_event_data");
    const notJson = await fetch(`${base}/v1/share-codes`, { method: "POST", headers: await headers(), body: "{nope" });
    expect(await code(notJson)).toBe("malformed_json");
    expect((await fetch(`${base}/v1/share-codes`, { method: "POST", body: "{}" })).status).toBe(400);
  });

  it("reports a code whose image was deleted as imageStatus gone", async () => {
    const made = (await (await create(base, { page: "pages/p", params: {} })).json()) as { code: string };
    const del = await fetch(`${storageUrl}/v1/objects/sharecodes/${made.code}.png`, {
      method: "DELETE",
      headers: await headers(),
    });
    expect(del.status).toBe(200);
    // Storage's fact reaches share-code the way a Knative Trigger would deliver it.
    const fact = (await eventually(async () => {
      const all = await streamEvents(nc, storage.names.stream);
      return all.find((e) => e.type === "snapmesh.storage.object.deleted" && e.subject === `sharecodes/${made.code}.png`);
    }, "the deleted fact"))!;
    expect(
      (
        await fetch(`${base}/`, {
          method: "POST",
          headers: { "content-type": "application/cloudevents+json" },
          body: JSON.stringify(fact),
        })
      ).status,
    ).toBe(202);
    const resolved = (await (await fetch(`${base}/v1/share-codes/${made.code}`)).json()) as { imageStatus: string };
    expect(resolved.imageStatus).toBe("gone");
  });

  it("renders through WeChat's unlimited-code API via the egress proxy", async () => {
    const res = await create(base, { page: "pages/album/index", params: { albumId: "w" }, provider: "wechat" });
    expect(res.status).toBe(201);
    const made = (await res.json()) as { code: string; imageUrl: string };
    expect(wechat.codes.at(-1)).toEqual({ scene: made.code, page: "pages/album/index" });
    expect(decodeQr(Buffer.from(await (await fetch(made.imageUrl)).arrayBuffer()))).toBe(made.code);
    expect(wechat.refused).toEqual([]);
  });
});

describe("share-code without storage", () => {
  it("fails cleanly with 503 and writes nothing when storage is unreachable", async () => {
    const { service, base } = await startShareCode({
      SNAPMESH_STORAGE_URL: "http://127.0.0.1:9",
      SHARECODE_STORAGE_TIMEOUT_MS: "500",
    });
    const res = await create(base, { page: "pages/p", params: {} });
    expect(res.status).toBe(503);
    expect(await code(res)).toBe("storage_unavailable");
    const rows = await service.db.query("SELECT 1 FROM sharecode.codes");
    expect(rows.rowCount).toBe(0);
    const outbox = await service.db.query("SELECT 1 FROM sharecode.outbox");
    expect(outbox.rowCount).toBe(0);
  });
});

describe("share-code when storage fails after storing the image", () => {
  it("deletes the stored image again, so nothing is left behind (together or not at all)", async () => {
    // An honest HTTP hop in front of the real storage that stores images but refuses to sign URLs.
    const hop = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      if (body.toString().includes('"snapmesh.storage.url.sign"')) {
        res.writeHead(503, { "content-type": "application/json" }).end('{"error":{"code":"unavailable","message":"down"}}');
        return;
      }
      const upstream = await fetch(`${storageUrl}${req.url}`, {
        method: req.method ?? "POST",
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(([k]) => k !== "host" && k !== "content-length"),
        ) as Record<string, string>,
        body,
      });
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "application/json" });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((r) => hop.listen(0, "127.0.0.1", r));
    try {
      const { service, base } = await startShareCode({
        SNAPMESH_STORAGE_URL: `http://127.0.0.1:${(hop.address() as AddressInfo).port}`,
      });
      const live = async () =>
        (await storage.db.query("SELECT key FROM storage.objects WHERE owner = 'orphan-check' AND deleted_at IS NULL")).rowCount;
      const res = await fetch(`${base}/v1/share-codes`, {
        method: "POST",
        headers: await headers("orphan-check"),
        body: JSON.stringify({ page: "pages/p", params: {} }),
      });
      expect(res.status).toBe(503);
      expect((await service.db.query("SELECT 1 FROM sharecode.codes")).rowCount).toBe(0);
      expect((await service.db.query("SELECT 1 FROM sharecode.outbox")).rowCount).toBe(0);
      const stored = await storage.db.query("SELECT key FROM storage.objects WHERE owner = 'orphan-check'");
      expect(stored.rowCount).toBe(1);
      expect(await live()).toBe(0);
    } finally {
      hop.close();
    }
  });
});
