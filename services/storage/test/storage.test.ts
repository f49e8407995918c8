import { createHash } from "node:crypto";
import { request } from "node:http";
import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  isolatedEnv,
  listenOnLoopback,
  natsConnect,
  S3_SERVER_INSTALL,
  s3Server,
  scratchDir,
  streamEvents,
  type TestIssuer,
  testIssuer,
  uniqueName,
} from "../../../test/support/index.ts";
import { storage } from "../src/service.ts";
import { sign } from "../src/signing.ts";
import { jpeg, png } from "./images.ts";

const SIGNING = `k1:${"s".repeat(40)},k0:${"o".repeat(40)}`;
const s3 = await s3Server();
if (!s3) console.warn(`S3 backend tests skipped: no S3-compatible server program (install: ${S3_SERVER_INSTALL})`);

const backends: Array<[string, () => Record<string, string>]> = [
  ["fs", () => ({ STORAGE_BACKEND: "fs", STORAGE_DIR: scratchDir("objects") })],
  ["nats", () => ({ STORAGE_BACKEND: "nats", STORAGE_NATS_BUCKET: uniqueName("objs") })],
  ...(s3
    ? ([
        [
          "s3",
          () => ({
            STORAGE_BACKEND: "s3",
            STORAGE_S3_BUCKET: s3.bucket,
            STORAGE_S3_ENDPOINT: s3.url,
            STORAGE_S3_FORCE_PATH_STYLE: "1",
          }),
        ],
      ] as Array<[string, () => Record<string, string>]>)
    : []),
];

afterAll(async () => {
  await s3?.stop();
});

process.env.AWS_ACCESS_KEY_ID ??= "test";
process.env.AWS_SECRET_ACCESS_KEY ??= "test";

describe.each(backends)("storage on the %s backend", (_name, backendEnv) => {
  let service: Awaited<ReturnType<typeof storage.create>>;
  let base: string;
  let issuer: TestIssuer;
  let nc: NatsConnection;
  let alice: string;
  let bob: string;
  let stream: string;

  beforeAll(async () => {
    issuer = await testIssuer();
    const env = await isolatedEnv({
      STORAGE_SIGNING_KEYS: SIGNING,
      STORAGE_MAX_OBJECT_BYTES: String(24 * 1024 * 1024),
      STORAGE_USER_QUOTA_BYTES: String(40 * 1024 * 1024),
      // The consistency test below runs 6 uploads of one user at once.
      STORAGE_MAX_CONCURRENT_UPLOADS_PER_USER: "8",
      ...backendEnv(),
    });
    stream = env.EVENTS_STREAM!;
    service = await storage.create(env);
    service.authenticate = issuer.verifier;
    base = await listenOnLoopback(service);
    alice = await issuer.bearer("alice");
    bob = await issuer.bearer("bob");
    nc = await natsConnect();
  });

  afterAll(async () => {
    await nc?.close();
    await service?.stop();
  });

  const put = (key: string, body: Buffer | Uint8Array, auth = alice, type = "image/png") =>
    fetch(`${base}/v1/objects/${key}`, { method: "PUT", headers: { authorization: auth, "content-type": type }, body });
  const tempUrl = async (key: string, ttlSeconds?: number) => {
    const res = await fetch(`${base}/v1/temp-urls`, {
      method: "POST",
      headers: { authorization: alice, "content-type": "application/json" },
      body: JSON.stringify({ keys: [key], ...(ttlSeconds ? { ttlSeconds } : {}) }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { items: Array<{ url: string; expiresAt: string }> };
    return body.items[0]!;
  };
  // Sends the path exactly as given: fetch would resolve '..' segments before they reach the service.
  const rawPut = (path: string, body: Buffer, auth: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const { hostname, port } = new URL(base);
      const options = {
        hostname,
        port,
        path: `/v1/objects/${path}`,
        method: "PUT",
        headers: { authorization: auth, "content-type": "image/png" },
      };
      const req = request(options, (res) => {
        let text = "";
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on("error", reject);
      req.end(body);
    });
  const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

  it("uploads 20 MB streamed and downloads it back byte-equal by temporary URL", async () => {
    const big = png(20 * 1024 * 1024);
    const res = await put("albums/a1/big.png", big);
    expect(res.status).toBe(201);
    const stored = (await res.json()) as { size: number; sha256: string; etag: string; contentType: string };
    expect(stored.size).toBe(big.length);
    expect(stored.contentType).toBe("image/png");
    expect(stored.sha256).toBe(createHash("sha256").update(big).digest("hex"));
    const { url } = await tempUrl("albums/a1/big.png");
    const down = await fetch(url);
    expect(down.status).toBe(200);
    expect(down.headers.get("content-type")).toBe("image/png");
    expect(down.headers.get("etag")).toBe(stored.etag);
    expect(down.headers.get("cache-control")).toMatch(/^private, max-age=(\d+)$/);
    const bytes = Buffer.from(await down.arrayBuffer());
    expect(bytes.equals(big)).toBe(true);
  });

  it("serves ranges, 304 on a matching ETag, 416 past the end, and HEAD", async () => {
    const img = png(10_000);
    await put("r/img.png", img);
    const { url } = await tempUrl("r/img.png");
    const part = await fetch(url, { headers: { range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${img.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(img.subarray(100, 200))).toBe(true);
    const tail = await fetch(url, { headers: { range: "bytes=-10" } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(img.subarray(img.length - 10))).toBe(true);
    const past = await fetch(url, { headers: { range: `bytes=${img.length + 5}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe(`bytes */${img.length}`);
    const etag = part.headers.get("etag")!;
    const cached = await fetch(url, { headers: { "if-none-match": etag } });
    expect(cached.status).toBe(304);
    const head = await fetch(url, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(img.length));
  });

  it("refuses tampered, foreign-key, unknown-key and expired links with 403 and a reason", async () => {
    await put("sec/x.png", png(500));
    const { url } = await tempUrl("sec/x.png");
    const u = new URL(url);
    const tampered = new URL(u);
    tampered.searchParams.set("sig", `${u.searchParams.get("sig")!.slice(0, -2)}AA`);
    expect(await code(await fetch(tampered))).toBe("signature_invalid");
    const otherObject = new URL(u);
    otherObject.pathname = "/v1/objects/r/img.png";
    expect(await code(await fetch(otherObject))).toBe("signature_invalid");
    const unknownKid = new URL(u);
    unknownKid.searchParams.set("kid", "nope");
    const res = await fetch(unknownKid);
    expect(res.status).toBe(403);
    expect(await code(res)).toBe("unknown_key");
    const past = Math.floor(Date.now() / 1000) - 10;
    const key = { id: "k1", secret: Buffer.from("s".repeat(40)) };
    const v = u.searchParams.get("v")!;
    const expired = `${base}/v1/objects/sec/x.png?v=${v}&expires=${past}&kid=k1&sig=${sign(key, "GET", "sec/x.png", v, past)}`;
    const exp = await fetch(expired);
    expect(exp.status).toBe(403);
    expect(await code(exp)).toBe("url_expired");
    // A link signed with the previous key (k0) still works: keys rotate.
    const future = Math.floor(Date.now() / 1000) + 60;
    const old = { id: "k0", secret: Buffer.from("o".repeat(40)) };
    expect(
      (
        await fetch(
          `${base}/v1/objects/sec/x.png?v=${v}&expires=${future}&kid=k0&sig=${sign(old, "GET", "sec/x.png", v, future)}`,
        )
      ).status,
    ).toBe(200);
  });

  it("refuses bad keys, wrong bytes, over-size and over-quota uploads with codes", async () => {
    const small = png(100);
    for (const path of [
      "a/../../b.png",
      "a/%2e%2e/b.png",
      "..",
      "%2Fetc%2Fpasswd",
      "a//b.png",
      "sp%20ace.png",
      "x".repeat(600),
    ]) {
      const res = await rawPut(path, small, alice);
      expect({ path, status: res.status, code: JSON.parse(res.body).error?.code }).toEqual({
        path,
        status: 400,
        code: "invalid_key",
      });
    }
    const text = await put("t/notes.png", Buffer.from("just some text, not an image at all"));
    expect(text.status).toBe(415);
    expect(await code(text)).toBe("unsupported_content");
    const mismatch = await put("t/m.png", jpeg(100), alice, "image/png");
    expect(mismatch.status).toBe(400);
    expect(await code(mismatch)).toBe("content_type_mismatch");
    const huge = await put("t/huge.png", png(25 * 1024 * 1024));
    expect(huge.status).toBe(413);
    expect(await code(huge)).toBe("object_too_large");
    const noAuth = await fetch(`${base}/v1/objects/t/a.png`, { method: "PUT", body: small });
    expect(noAuth.status).toBe(401);
    // bob fills his quota of 40 MB: 2 x 18 MB fit, a third does not.
    expect((await put("q/1.png", png(18 * 1024 * 1024), bob)).status).toBe(201);
    expect((await put("q/2.png", png(18 * 1024 * 1024), bob)).status).toBe(201);
    const over = await put("q/3.png", png(18 * 1024 * 1024), bob);
    expect(over.status).toBe(413);
    expect(await code(over)).toBe("quota_exceeded");
    // Replacing one's own object does not count it twice.
    expect((await put("q/2.png", png(18 * 1024 * 1024), bob)).status).toBe(201);
  });

  it("ends concurrent uploads to one key in one consistent object", async () => {
    const versions = Array.from({ length: 6 }, () => png(200_000));
    const results = await Promise.all(versions.map((v) => put("c/same.png", v)));
    expect(results.every((r) => r.status === 201)).toBe(true);
    const { url } = await tempUrl("c/same.png");
    const down = Buffer.from(await (await fetch(url)).arrayBuffer());
    const row = (
      await service.db.query<{ sha256: string; size: string }>(
        "SELECT sha256, size FROM storage.objects WHERE key = 'c/same.png'",
      )
    ).rows[0]!;
    expect(createHash("sha256").update(down).digest("hex")).toBe(row.sha256);
    expect(versions.some((v) => v.equals(down))).toBe(true);
  });

  it("lets only the owner delete, and emits created and deleted facts through the outbox", async () => {
    expect((await put("d/p.png", png(300))).status).toBe(201);
    const notOwner = await fetch(`${base}/v1/objects/d/p.png`, { method: "DELETE", headers: { authorization: bob } });
    expect(notOwner.status).toBe(403);
    expect(await code(notOwner)).toBe("not_owner");
    const taken = await put("d/p.png", png(300), bob);
    expect(taken.status).toBe(403);
    const { url } = await tempUrl("d/p.png");
    const del = await fetch(`${base}/v1/objects/d/p.png`, { method: "DELETE", headers: { authorization: alice } });
    expect(del.status).toBe(200);
    expect((await fetch(url)).status).toBe(404);
    const again = await fetch(`${base}/v1/objects/d/p.png`, { method: "DELETE", headers: { authorization: alice } });
    expect(again.status).toBe(404);
    const facts = await eventually(async () => {
      const all = (await streamEvents(nc, stream)).filter((e) => e.subject === "d/p.png");
      return all.length >= 2 ? all : undefined;
    }, "created and deleted facts");
    expect(facts.map((f) => f.type)).toEqual(["snapmesh.storage.object.created", "snapmesh.storage.object.deleted"]);
    expect(facts[1]!.data).toEqual({ key: "d/p.png", owner: "alice" });
  });

  it("stores small objects through the object.put command (base64), answered by object.stored", async () => {
    const img = png(1000);
    const res = await fetch(`${base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json", authorization: alice },
      body: JSON.stringify({
        specversion: "1.0",
        id: "put-1",
        source: "/test",
        type: "snapmesh.storage.object.put",
        data: { key: "cmd/qr.png", contentType: "image/png", data: img.toString("base64") },
      }),
    });
    expect(res.status).toBe(200);
    const reply = (await res.json()) as { type: string; data: { sha256: string; size: number } };
    expect(reply.type).toBe("snapmesh.storage.object.stored");
    expect(reply.data.size).toBe(1000);
    const { url } = await tempUrl("cmd/qr.png");
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(img)).toBe(true);
  });

  it("signs up to 50 keys per batch and reports unknown keys per item", async () => {
    const res = await fetch(`${base}/v1/temp-urls`, {
      method: "POST",
      headers: { authorization: alice, "content-type": "application/json" },
      body: JSON.stringify({ keys: ["r/img.png", "missing.png"] }),
    });
    const body = (await res.json()) as { items: Array<{ key: string; url?: string; error?: { code: string } }> };
    expect(body.items[0]!.url).toContain("/v1/objects/r/img.png?v=");
    expect(body.items[1]!.error?.code).toBe("object_not_found");
    const tooMany = await fetch(`${base}/v1/temp-urls`, {
      method: "POST",
      headers: { authorization: alice, "content-type": "application/json" },
      body: JSON.stringify({ keys: Array.from({ length: 51 }, (_, i) => `k${i}`) }),
    });
    expect(tooMany.status).toBe(400);
    expect(await code(tooMany)).toBe("invalid_event_data");
  });
});
