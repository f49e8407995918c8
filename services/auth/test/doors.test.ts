// Regression tests for auth's trust boundaries (issue 10 §3 and §5): who may ask permission questions,
// dev tokens where dev sign-in is off, and the sign-in rate limit on every door, behind a proxy hop.
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isolatedEnv, listenOnLoopback } from "../../../test/support/index.ts";
import { createLogger, type HandlerContext } from "../../runtime/src/internal.ts";
import { permissionCheck } from "../src/handlers/permission-check.ts";
import { localRules, MemoryDecisionCache, PermissionService } from "../src/permissions.ts";
import { auth, generateSigningJwk } from "../src/service.ts";

type AuthService = Awaited<ReturnType<typeof auth.create>>;

let key: JWK;
const started: AuthService[] = [];

beforeAll(async () => {
  key = await generateSigningJwk();
});

afterAll(async () => {
  for (const s of started) await s.stop();
});

async function startAuth(overrides: Record<string, string> = {}): Promise<{ service: AuthService; base: string }> {
  const env = await isolatedEnv({
    AUTH_SIGNING_KEYS: JSON.stringify({ keys: [key] }),
    SNAPMESH_DEV_AUTH: "1",
    AUTH_ADMIN_USERS: "root",
    EVENT_SINK: "none",
    EVENT_CONSUMERS: "off",
    ...overrides,
  });
  const service = await auth.create(env);
  started.push(service);
  return { service, base: await listenOnLoopback(service) };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
const signIn = async (base: string, userId: string) =>
  ((await (await post(`${base}/v1/sessions`, { provider: "dev", userId })).json()) as { token: string }).token;
const cloudEvent = (base: string, type: string, data: unknown, headers: Record<string, string> = {}) =>
  post(
    `${base}/`,
    { specversion: "1.0", id: crypto.randomUUID(), source: "/test/doors", type, data },
    {
      "content-type": "application/cloudevents+json",
      ...headers,
    },
  );

describe("permission checks need a caller (§3)", () => {
  let base: string;
  beforeAll(async () => {
    ({ base } = await startAuth());
  });

  it("anonymous → 401 on both doors, even naming a user (it used to reveal admins)", async () => {
    const rest = await post(`${base}/v1/permissions/check`, { action: "delete", resource: "album:1", userId: "root" });
    expect(rest.status).toBe(401);
    const ce = await cloudEvent(base, "snapmesh.auth.permission.check", {
      action: "delete",
      resource: "album:1",
      userId: "root",
    });
    expect(ce.status).toBe(401);
  });

  it("a user asking about another user → 403 not_self; about themself → 200", async () => {
    const auth = { authorization: `Bearer ${await signIn(base, "mallory")}` };
    const other = await post(`${base}/v1/permissions/check`, { action: "delete", resource: "album:1", userId: "root" }, auth);
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe("not_self");
    const self = await post(
      `${base}/v1/permissions/check`,
      { action: "view", resource: "user:mallory", userId: "mallory" },
      auth,
    );
    expect(self.status).toBe(200);
    expect(await self.json()).toMatchObject({ allowed: true, reason: "self", userId: "mallory" });
  });

  it("a mesh service may ask about any user, and the answer never says the user is an admin", async () => {
    const deps = {
      permissions: new PermissionService(
        localRules(["root"]),
        undefined,
        () => new MemoryDecisionCache(1000),
        false,
        createLogger("test", "silent"),
      ),
    };
    const ctx = (producer: string | undefined, userId?: string) =>
      ({
        producer,
        user: userId ? { id: userId } : undefined,
        requireUser: () => {
          if (!userId) throw Object.assign(new Error("no caller"), { status: 401 });
          return { id: userId };
        },
      }) as unknown as HandlerContext;
    const aboutRoot = await permissionCheck({ action: "delete", resource: "album:1", userId: "root" }, ctx("social"), deps);
    expect(aboutRoot).toMatchObject({ allowed: true, userId: "root" });
    expect(aboutRoot.reason).not.toBe("admin");
    const byOtherUser = await permissionCheck(
      { action: "delete", resource: "album:1", userId: "root" },
      ctx("social", "alice"),
      deps,
    );
    expect(byOtherUser.reason).not.toBe("admin");
    await expect(
      permissionCheck({ action: "delete", resource: "album:1", userId: "root" }, ctx(undefined), deps),
    ).rejects.toMatchObject({
      status: 401,
    });
  });
});

describe("dev tokens (§3)", () => {
  it("auth refuses a dev token with 401 dev_token_refused when SNAPMESH_DEV_AUTH is off", async () => {
    const dev = await startAuth();
    const token = await signIn(dev.base, "alice");
    const prod = await startAuth({ SNAPMESH_DEV_AUTH: "0" });
    const res = await post(
      `${prod.base}/v1/permissions/check`,
      { action: "view", resource: "user:alice" },
      { authorization: `Bearer ${token}` },
    );
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("dev_token_refused");
    // Where dev sign-in is on, the same token is fine.
    const ok = await post(
      `${dev.base}/v1/permissions/check`,
      { action: "view", resource: "user:alice" },
      { authorization: `Bearer ${token}` },
    );
    expect(ok.status).toBe(200);
  });
});

describe("sign-in rate limit on every door (§5)", () => {
  it("CloudEvents sign-ins are limited once REST says 429 (same client address)", async () => {
    const { base } = await startAuth({ SIGNIN_LIMIT_PER_IP: "3" });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(`${base}/v1/sessions`, { provider: "dev", userId: `r${i}` })).status);
    expect(statuses).toEqual([201, 201, 201, 429]);
    const ce = await cloudEvent(base, "snapmesh.auth.session.create", { provider: "dev", userId: "ce-1" });
    expect(ce.status).toBe(429);
    expect(((await ce.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
  });

  it("a batch of 40 sign-ins whose 31st hits the limit commits nothing", async () => {
    const { service, base } = await startAuth({ SIGNIN_LIMIT_PER_IP: "30" });
    const batch = Array.from({ length: 40 }, (_, i) => ({
      specversion: "1.0",
      id: `batch-signin-${i}`,
      source: "/test/doors",
      type: "snapmesh.auth.session.create",
      data: { provider: "dev", userId: `batch-user-${i}` },
    }));
    const res = await post(`${base}/`, batch, { "content-type": "application/cloudevents-batch+json" });
    expect(res.status).toBe(429);
    expect(await res.json()).toMatchObject({ error: { code: "rate_limited", details: { index: 30 } } });
    const users = await service.db.query<{ n: string }>("SELECT count(*) AS n FROM auth.users");
    const outbox = await service.db.query<{ n: string }>("SELECT count(*) AS n FROM auth.outbox");
    expect([Number(users.rows[0]!.n), Number(outbox.rows[0]!.n)]).toEqual([0, 0]);
  });

  describe("behind a proxy hop that appends X-Forwarded-For (as Knative's queue-proxy does)", () => {
    let hop: Server;
    let hopPort: number;
    beforeAll(async () => {
      const { base } = await startAuth({ SIGNIN_LIMIT_PER_IP: "2", SIGNIN_LIMIT_PER_SUBJECT: "100", TRUST_PROXY_HOPS: "1" });
      const upstream = new URL(base);
      // A reverse proxy like Go's httputil.ReverseProxy: appends the address it was connected from.
      hop = createServer((req, res) => {
        const prior = req.headers["x-forwarded-for"];
        const xff = prior ? `${prior}, ${req.socket.remoteAddress}` : String(req.socket.remoteAddress);
        const out = request(
          {
            host: upstream.hostname,
            port: upstream.port,
            path: req.url,
            method: req.method,
            headers: { ...req.headers, "x-forwarded-for": xff },
          },
          (up) => {
            res.writeHead(up.statusCode ?? 502, up.headers);
            up.pipe(res);
          },
        );
        req.pipe(out);
      });
      await new Promise<void>((r) => hop.listen(0, "127.0.0.1", r));
      hopPort = (hop.address() as AddressInfo).port;
    });
    afterAll(async () => {
      await new Promise((r) => hop?.close(r));
    });

    /** A sign-in over CloudEvents from a client at `from` (a loopback address of its own), through the hop. */
    const signInFrom = (from: string, userId: string, forged?: string) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({
          specversion: "1.0",
          id: crypto.randomUUID(),
          source: "/test/hop",
          type: "snapmesh.auth.session.create",
          data: { provider: "dev", userId },
        });
        const req = request(
          {
            host: "127.0.0.1",
            port: hopPort,
            localAddress: from,
            method: "POST",
            path: "/",
            headers: { "content-type": "application/cloudevents+json", ...(forged ? { "x-forwarded-for": forged } : {}) },
          },
          (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.on("error", reject);
        req.end(body);
      });

    it("two clients behind the hop get separate buckets, and a forged X-Forwarded-For does not buy a fresh one", async () => {
      expect([await signInFrom("127.0.0.3", "a1"), await signInFrom("127.0.0.3", "a2")]).toEqual([200, 200]);
      expect(await signInFrom("127.0.0.3", "a3")).toBe(429);
      expect(await signInFrom("127.0.0.3", "a4", "198.51.100.1")).toBe(429);
      expect(await signInFrom("127.0.0.4", "b1")).toBe(200);
    });
  });
});
