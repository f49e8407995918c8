import { readdirSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  isolatedEnv,
  listenOnLoopback,
  scratchDir,
  type TestIssuer,
  testIssuer,
} from "../../../test/support/index.ts";
import { parseConfig } from "../../runtime/src/internal.ts";
import { storageConfigSchema } from "../src/config.ts";
import type { StorageOptions } from "../src/deps.ts";
import { storage as storageService } from "../src/service.ts";
import { UploadGate } from "../src/upload-gate.ts";
import { png } from "./images.ts";

const SIGNING = `k1:${"t".repeat(40)}`;

let issuer: TestIssuer;
let alice: string;
let bob: string;
const running: Array<Awaited<ReturnType<typeof storageService.create>>> = [];

beforeAll(async () => {
  issuer = await testIssuer();
  alice = await issuer.bearer("alice");
  bob = await issuer.bearer("bob");
});

afterAll(async () => {
  for (const s of running) await s.stop();
});

async function storage(env: Record<string, string> = {}, options: StorageOptions = {}) {
  const dir = scratchDir("trust");
  const service = await storageService.create(
    await isolatedEnv({ STORAGE_SIGNING_KEYS: SIGNING, STORAGE_DIR: dir, EVENT_CONSUMERS: "off", ...env }),
    options,
  );
  const { config } = service;
  service.authenticate = issuer.verifier;
  running.push(service);
  const base = await listenOnLoopback(service);
  const put = (key: string, body: Buffer, auth: string) =>
    fetch(`${base}/v1/objects/${key}`, { method: "PUT", headers: { authorization: auth, "content-type": "image/png" }, body });
  const del = (key: string, auth: string) =>
    fetch(`${base}/v1/objects/${key}`, { method: "DELETE", headers: { authorization: auth } });
  const sign = (keys: string[], auth?: string) =>
    fetch(`${base}/v1/temp-urls`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
      body: JSON.stringify({ keys }),
    });
  const items = async (res: Response) =>
    ((await res.json()) as { items: Array<{ key: string; url?: string; error?: { code: string; message: string } }> }).items;
  return { service, base, dir, config, put, del, sign, items };
}

const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe("object ownership", () => {
  it("a key keeps its first owner: after a delete only that owner may upload to it again", async () => {
    const s = await storage();
    expect((await s.put("album42-photo7", png(500), alice)).status).toBe(201);
    expect((await s.del("album42-photo7", alice)).status).toBe(200);
    const takeover = await s.put("album42-photo7", png(500), bob);
    expect(takeover.status).toBe(403);
    expect(await code(takeover)).toBe("key_taken");
    const row = await s.service.db.query<{ owner: string }>("SELECT owner FROM storage.objects WHERE key = 'album42-photo7'");
    expect(row.rows[0]!.owner).toBe("alice");
    expect((await s.put("album42-photo7", png(500), alice)).status).toBe(201);
    const live = await s.put("album42-photo7", png(500), bob);
    expect(live.status).toBe(403);
    expect(await code(live)).toBe("not_owner");
  });

  it("two users racing to create one new key: only one of them ever owns it", async () => {
    const s = await storage({ STORAGE_MAX_CONCURRENT_UPLOADS_PER_USER: "64" });
    const users = ["alice", "bob"] as const;
    for (let round = 0; round < 3; round++) {
      const key = `race/${round}.png`;
      const attempts = Array.from({ length: 12 }, (_, i) => users[i % 2]!);
      const results = await Promise.all(attempts.map((u) => s.put(key, png(2000), u === "alice" ? alice : bob)));
      const winners = new Set(attempts.filter((_, i) => results[i]!.status === 201));
      expect(winners.size).toBe(1);
      expect(results.every((r) => r.status === 201 || r.status === 403)).toBe(true);
      const row = await s.service.db.query<{ owner: string }>("SELECT owner FROM storage.objects WHERE key = $1", [key]);
      expect(row.rows[0]!.owner).toBe([...winners][0]);
      expect(results.filter((r) => r.status === 201)).toHaveLength(attempts.filter((u) => u === [...winners][0]).length);
    }
  });

  it("a link serves only the bytes it was signed for: after a re-upload the old link answers 410 object_changed", async () => {
    const s = await storage();
    const first = png(800);
    const second = png(900);
    expect((await s.put("p/mine.png", first, alice)).status).toBe(201);
    const [oldLink] = await s.items(await s.sign(["p/mine.png"], alice));
    expect(Buffer.from(await (await fetch(oldLink!.url!)).arrayBuffer()).equals(first)).toBe(true);
    expect((await s.put("p/mine.png", second, alice)).status).toBe(201);
    const stale = await fetch(oldLink!.url!);
    expect(stale.status).toBe(410);
    expect(await code(stale)).toBe("object_changed");
    const [newLink] = await s.items(await s.sign(["p/mine.png"], alice));
    expect(Buffer.from(await (await fetch(newLink!.url!)).arrayBuffer()).equals(second)).toBe(true);
    // The version in the URL is signed: pointing an old link at the new bytes breaks its signature.
    const forged = new URL(oldLink!.url!);
    forged.searchParams.set("v", new URL(newLink!.url!).searchParams.get("v")!);
    expect(await code(await fetch(forged))).toBe("signature_invalid");
  });
});

describe("temporary URLs", () => {
  it("need a caller on both doors", async () => {
    const s = await storage();
    expect((await s.put("u/a.png", png(300), alice)).status).toBe(201);
    const anonymous = await s.sign(["u/a.png"]);
    expect(anonymous.status).toBe(401);
    const event = await fetch(`${s.base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({
        specversion: "1.0",
        id: "sign-anon-1",
        source: "/test",
        type: "snapmesh.storage.url.sign",
        data: { keys: ["u/a.png"] },
      }),
    });
    expect(event.status).toBe(401);
  });

  it("are signed only for the caller's own objects; another's object answers exactly like a missing one", async () => {
    const s = await storage();
    expect((await s.put("u/alice.png", png(300), alice)).status).toBe(201);
    const res = await s.sign(["u/alice.png", "u/nobody.png"], bob);
    expect(res.status).toBe(200);
    const [theirs, missing] = await s.items(res);
    expect(theirs).toEqual({ key: "u/alice.png", error: { code: "object_not_found", message: "no object 'u/alice.png'" } });
    expect(missing).toEqual({ key: "u/nobody.png", error: { code: "object_not_found", message: "no object 'u/nobody.png'" } });
    const [own] = await s.items(await s.sign(["u/alice.png"], alice));
    expect(own!.url).toContain("/v1/objects/u/alice.png?");
  });

  it("sign others' objects when auth allows `read` on `object:<key>` (STORAGE_PERMISSION_CHECK=1)", async () => {
    const asked: Array<{ authorization: string | undefined; action: string; resource: string }> = [];
    const auth = await fakeAuth((authorization, body) => {
      asked.push({ authorization, ...body });
      return authorization === bob && body.resource === "object:shared/album.png";
    });
    try {
      const s = await storage({ STORAGE_PERMISSION_CHECK: "1", SNAPMESH_AUTH_URL: auth.url });
      expect((await s.put("shared/album.png", png(300), alice)).status).toBe(201);
      expect((await s.put("shared/private.png", png(300), alice)).status).toBe(201);
      const [shared, priv, missing] = await s.items(
        await s.sign(["shared/album.png", "shared/private.png", "shared/missing.png"], bob),
      );
      expect(shared!.url).toContain("/v1/objects/shared/album.png?");
      expect((await fetch(shared!.url!)).status).toBe(200);
      expect(priv!.error?.code).toBe("object_not_found");
      expect(missing!.error?.code).toBe("object_not_found");
      // Asked with bob's own token, for every key that is not his (missing ones too: no existence oracle).
      expect(asked.map((a) => [a.authorization, a.action, a.resource]).sort()).toEqual(
        [
          [bob, "read", "object:shared/album.png"],
          [bob, "read", "object:shared/missing.png"],
          [bob, "read", "object:shared/private.png"],
        ].sort(),
      );
      const unreachable = await storage({ STORAGE_PERMISSION_CHECK: "1", SNAPMESH_AUTH_URL: "http://127.0.0.1:9" });
      const down = await unreachable.sign(["any.png"], bob);
      expect(down.status).toBe(503);
      expect(await code(down)).toBe("permission_unavailable");
    } finally {
      await auth.stop();
    }
  });
});

describe("limits", () => {
  it("30 parallel uploads against a small quota never commit more than the quota", async () => {
    const quota = 100_000;
    const s = await storage({ STORAGE_USER_QUOTA_BYTES: String(quota), STORAGE_MAX_CONCURRENT_UPLOADS_PER_USER: "64" });
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => s.put(`quota/${i}.png`, png(30_000), alice)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((x) => x === 201)).toHaveLength(3);
    expect(statuses.filter((x) => x === 413)).toHaveLength(27);
    const { rows } = await s.service.db.query<{ used: number }>(
      "SELECT coalesce(sum(size), 0)::float8 AS used FROM storage.objects WHERE owner = 'alice' AND deleted_at IS NULL",
    );
    expect(rows[0]!.used).toBeLessThanOrEqual(quota);
  });

  it("caps concurrent streamed uploads per user with 429 too_many_uploads and Retry-After", async () => {
    const env = { STORAGE_MAX_CONCURRENT_UPLOADS_PER_USER: "2" };
    const gate = UploadGate.fromConfig(
      parseConfig(storageConfigSchema, { ...(await isolatedEnv({ STORAGE_SIGNING_KEYS: SIGNING })), ...env }),
    );
    const s = await storage(env, { uploads: gate });
    const slow = [trickle(s.base, "slow/1.png", alice), trickle(s.base, "slow/2.png", alice)];
    await eventually(async () => gate.inFlight("alice") === 2, "both trickling uploads in progress");
    const third = await s.put("slow/3.png", png(1000), alice);
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await code(third)).toBe("too_many_uploads");
    expect((await s.put("slow/bob.png", png(1000), bob)).status).toBe(201);
    const done = await slow[0]!.finish(png(5000).subarray(100));
    expect(done.status).toBe(201);
    expect((await s.put("slow/3.png", png(1000), alice)).status).toBe(201);
    expect((await slow[1]!.finish(png(5000).subarray(100))).status).toBe(201);
    expect(gate.inFlight()).toBe(0);
  });

  it("aborts an upload whose body goes quiet with 408 upload_idle_timeout and removes the partial blob", async () => {
    const gate = new UploadGate(4, 100);
    const s = await storage({ STORAGE_UPLOAD_IDLE_TIMEOUT_MS: "300" }, { uploads: gate });
    const stuck = trickle(s.base, "idle/p.png", alice);
    const res = await stuck.response;
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body).error.code).toBe("upload_idle_timeout");
    expect(gate.inFlight()).toBe(0);
    const row = await s.service.db.query("SELECT 1 FROM storage.objects WHERE key = 'idle/p.png'");
    expect(row.rowCount).toBe(0);
    await eventually(async () => filesUnder(s.dir).length === 0, "no partial blob left");
  });
});

/** A streamed upload that sends its headers and a first chunk, then nothing until `finish`. */
function trickle(base: string, key: string, auth: string) {
  const { hostname, port } = new URL(base);
  const req = request({
    hostname,
    port,
    path: `/v1/objects/${key}`,
    method: "PUT",
    headers: { authorization: auth, "content-type": "image/png", "transfer-encoding": "chunked" },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
  });
  req.write(png(100));
  return {
    response,
    finish: async (rest: Buffer) => {
      req.end(rest);
      return response;
    },
  };
}

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

/** Stands in for auth's `POST /v1/permissions/check`. */
async function fakeAuth(
  allow: (authorization: string | undefined, body: { action: string; resource: string }) => boolean,
): Promise<{ url: string; stop: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let text = "";
    req.on("data", (d) => {
      text += d;
    });
    req.on("end", () => {
      const body = JSON.parse(text) as { action: string; resource: string };
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ allowed: allow(req.headers.authorization, body) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
