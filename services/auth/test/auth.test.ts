import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { base64url, decodeJwt, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type FakeServer, fakeServer, json } from "../../../test/support/fakes/http-fake.ts";
import { type FakeLegacy, fakeLegacyBackend } from "../../../test/support/fakes/legacy.ts";
import { type FakeWechat, fakeWechat } from "../../../test/support/fakes/wechat.ts";
import {
  eventually,
  type ForwardProxy,
  forwardProxy,
  isolatedEnv,
  listenOnLoopback,
  natsConnect,
  scratchDir,
  streamEvents,
} from "../../../test/support/index.ts";
import { sessionVerifier } from "../../runtime/src/internal.ts";
import { type AuthOptions, auth, generateSigningJwk } from "../src/service.ts";

type AuthService = Awaited<ReturnType<typeof auth.create>>;

const EGRESS_IP = "127.0.0.2";
let proxy: ForwardProxy;
let wechat: FakeWechat;
let legacy: FakeLegacy;
let idp: FakeServer;
let idpKey: import("jose").CryptoKey;
let keyA: JWK;
let keyB: JWK;
const started: AuthService[] = [];

beforeAll(async () => {
  proxy = await forwardProxy(EGRESS_IP);
  wechat = await fakeWechat({ allowFrom: [EGRESS_IP] });
  legacy = await fakeLegacyBackend({ allowFrom: [EGRESS_IP], token: "legacy-secret" });
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  idpKey = privateKey;
  const idpJwks = { keys: [{ ...(await exportJWK(publicKey)), kid: "idp-1", alg: "RS256" }] };
  idp = await fakeServer((req, _body, res) => (req.url === "/jwks" ? json(res, 200, idpJwks) : json(res, 404, {})), [EGRESS_IP]);
  [keyA, keyB] = [await generateSigningJwk(), await generateSigningJwk()];
});

afterAll(async () => {
  for (const s of started) await s.stop();
  await Promise.all([proxy?.stop(), wechat?.stop(), legacy?.stop(), idp?.stop()]);
});

async function startAuth(
  overrides: Record<string, string> = {},
  options: AuthOptions = {},
): Promise<{ service: AuthService; base: string; stream: string }> {
  const env = await isolatedEnv({
    AUTH_SIGNING_KEYS: JSON.stringify({ keys: [keyA] }),
    SNAPMESH_DEV_AUTH: "1",
    EGRESS_PROXY: proxy.url,
    EGRESS_ALLOW_HOSTS: "127.0.0.1",
    EGRESS_RETRIES: "1",
    WECHAT_API_BASE: wechat.url,
    WECHAT_APP_ID: wechat.appId,
    WECHAT_APP_SECRET: wechat.appSecret,
    OIDC_ISSUER: "https://idp.example",
    OIDC_AUDIENCE: "photo-app",
    OIDC_JWKS_URL: `${idp.url}/jwks`,
    LEGACY_PERMISSION_URL: `${legacy.url}/api/permissions`,
    LEGACY_AUTH_HEADER: "Authorization: Bearer legacy-secret",
    LEGACY_TIMEOUT_MS: "300",
    PERMISSION_CACHE_BUCKET: `perm-${Math.random().toString(36).slice(2)}`,
    ...overrides,
  });
  const service = await auth.create(env, options);
  started.push(service);
  return { service, base: await listenOnLoopback(service), stream: env.EVENTS_STREAM! };
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
const errorCode = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe("auth", () => {
  let base: string;
  let stream: string;
  let nc: NatsConnection;

  beforeAll(async () => {
    ({ base, stream } = await startAuth());
    nc = await natsConnect();
  });
  afterAll(async () => {
    await nc?.close();
  });

  it("signs in (dev) and the token verifies against the published JWKS", async () => {
    const res = await post(`${base}/v1/sessions`, { provider: "dev", userId: "alice" });
    expect(res.status).toBe(201);
    const session = (await res.json()) as { token: string; expiresAt: string; user: { id: string } };
    expect(session.user.id).toBe("alice");
    const verify = sessionVerifier({
      jwks: new URL(`${base}/.well-known/jwks.json`),
      issuer: "snapmesh-auth",
      allowDevTokens: true,
    });
    expect((await verify(session.token)).id).toBe("alice");
    const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual([keyA.kid]);
    expect(jwks.keys[0]).not.toHaveProperty("d");
    const facts = await eventually(async () => {
      const all = (await streamEvents(nc, stream)).filter((e) => e.type === "snapmesh.auth.user.signed-in");
      return all.length > 0 ? all : undefined;
    }, "signed-in fact");
    expect(facts[0]!.data).toEqual({ userId: "alice", provider: "dev", firstTime: true });
  });

  it("never stores or replays session tokens: a repeated sign-in event signs in again", async () => {
    const event = {
      specversion: "1.0",
      id: "signin-1",
      source: "/app",
      type: "snapmesh.auth.session.create",
      data: { provider: "dev", userId: "gus" },
    };
    const send = async () =>
      (
        (await (
          await fetch(`${base}/`, {
            method: "POST",
            headers: { "content-type": "application/cloudevents+json" },
            body: JSON.stringify(event),
          })
        ).json()) as {
          data: { token: string };
        }
      ).data.token;
    const [a, b] = [await send(), await send()];
    expect(a).not.toBe(b);
    const { rows } = await started[0]!.db.query("SELECT 1 FROM auth.inbox WHERE id = 'signin-1'");
    expect(rows).toHaveLength(0);
  });

  it("refuses tampered, expired, wrong-kid and alg:none tokens", async () => {
    const verify = sessionVerifier({
      jwks: new URL(`${base}/.well-known/jwks.json`),
      issuer: "snapmesh-auth",
      allowDevTokens: true,
    });
    const { token } = (await (await post(`${base}/v1/sessions`, { provider: "dev", userId: "mallory" })).json()) as {
      token: string;
    };
    const [h, p, s] = token.split(".") as [string, string, string];
    const claims = decodeJwt(token);
    const forged = `${h}.${base64url.encode(JSON.stringify({ ...claims, sub: "alice" }))}.${s}`;
    await expect(verify(forged)).rejects.toMatchObject({ status: 401, code: "invalid_token" });
    const none = `${base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }))}.${p}.`;
    await expect(verify(none)).rejects.toMatchObject({ status: 401 });
    const otherKey = await generateSigningJwk();
    const { importJWK } = await import("jose");
    const wrongKid = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: otherKey.kid! })
      .setSubject("alice")
      .setIssuer("snapmesh-auth")
      .setAudience("snapmesh")
      .setExpirationTime("5m")
      .sign(await importJWK(otherKey, "ES256"));
    await expect(verify(wrongKid)).rejects.toMatchObject({ status: 401 });
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid: keyA.kid! })
      .setSubject("alice")
      .setIssuer("snapmesh-auth")
      .setAudience("snapmesh")
      .setIssuedAt(Math.floor(Date.now() / 1000) - 3600)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(await importJWK(keyA, "ES256"));
    await expect(verify(expired)).rejects.toMatchObject({ code: "token_expired" });
  });

  it("signs in with WeChat through the egress proxy, mapping WeChat's errors", async () => {
    const code = wechat.loginCode("openid-1", "union-1");
    const res = await post(`${base}/v1/sessions`, { provider: "wechat", code });
    expect(res.status).toBe(201);
    const first = (await res.json()) as { user: { id: string } };
    expect(first.user.id).toMatch(/^u_/);
    const again = await post(`${base}/v1/sessions`, { provider: "wechat", code: wechat.loginCode("openid-1", "union-1") });
    expect(((await again.json()) as { user: { id: string } }).user.id).toBe(first.user.id);
    const reused = await post(`${base}/v1/sessions`, { provider: "wechat", code });
    expect(reused.status).toBe(400);
    expect(await errorCode(reused)).toBe("wechat_code_used");
    const invalid = await post(`${base}/v1/sessions`, { provider: "wechat", code: "nope" });
    expect(await errorCode(invalid)).toBe("wechat_invalid_code");
    expect(wechat.refused).toEqual([]);
  });

  it("lists the sign-in providers it accepts, with what a client needs to start each and no secret", async () => {
    const all = await fetch(`${base}/v1/sessions/providers`);
    expect(all.status).toBe(200);
    const body = await all.text();
    expect(JSON.parse(body)).toEqual({
      providers: [
        { provider: "dev" },
        { provider: "wechat", appId: wechat.appId },
        { provider: "oidc", issuer: "https://idp.example", audience: "photo-app" },
      ],
    });
    expect(body).not.toContain(wechat.appSecret);
    const bare = await startAuth({
      SNAPMESH_DEV_AUTH: "0",
      WECHAT_APP_ID: "",
      WECHAT_APP_SECRET: "",
      OIDC_ISSUER: "",
      OIDC_AUDIENCE: "",
    });
    expect(await (await fetch(`${bare.base}/v1/sessions/providers`)).json()).toEqual({ providers: [] });
  });

  it("signs in with OIDC ID tokens checked against the IdP's JWKS, issuer and audience", async () => {
    const idToken = (aud: string) =>
      new SignJWT({ email: "bo@example.com" })
        .setProtectedHeader({ alg: "RS256", kid: "idp-1" })
        .setSubject("idp-user-7")
        .setIssuer("https://idp.example")
        .setAudience(aud)
        .setExpirationTime("5m")
        .sign(idpKey);
    const ok = await post(`${base}/v1/sessions`, { provider: "oidc", idToken: await idToken("photo-app") });
    expect(ok.status).toBe(201);
    const wrongAud = await post(`${base}/v1/sessions`, { provider: "oidc", idToken: await idToken("other-app") });
    expect(wrongAud.status).toBe(401);
    expect(await errorCode(wrongAud)).toBe("invalid_id_token");
  });

  it("asks the legacy backend, caches the decision, and fails closed when it is down", async () => {
    const { token } = (await (await post(`${base}/v1/sessions`, { provider: "dev", userId: "carol" })).json()) as {
      token: string;
    };
    const auth = { authorization: `Bearer ${token}` };
    legacy.allow("carol", "comment", "album:1");
    const check = async (resource: string) =>
      (await (await post(`${base}/v1/permissions/check`, { action: "comment", resource }, auth)).json()) as {
        allowed: boolean;
        reason: string;
      };
    expect(await check("album:1")).toMatchObject({ allowed: true, reason: "album_member" });
    expect(await check("album:2")).toMatchObject({ allowed: false, reason: "not_album_member" });
    const before = legacy.calls.length;
    for (let i = 0; i < 5; i++) expect((await check("album:1")).allowed).toBe(true);
    expect(legacy.calls.length).toBe(before);
    expect(await check("user:carol")).toMatchObject({ allowed: true, reason: "self" });

    legacy.mode = "down";
    expect(await check("album:3")).toMatchObject({ allowed: false, reason: "legacy_unavailable" });
    legacy.mode = "hang";
    const t0 = Date.now();
    expect(await check("album:4")).toMatchObject({ allowed: false, reason: "legacy_unavailable" });
    expect(Date.now() - t0).toBeLessThan(2 * 300 + 1500); // two attempts of 300 ms each, plus slack
    legacy.mode = "up";
    expect(legacy.refused).toEqual([]);
    const unauth = await post(`${base}/v1/permissions/check`, { action: "comment", resource: "album:1" });
    expect(unauth.status).toBe(401);
    const other = await post(`${base}/v1/permissions/check`, { action: "comment", resource: "album:1", userId: "dave" }, auth);
    expect(await errorCode(other)).toBe("not_self");
  });

  it("refuses bad sign-in input with codes", async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ provider: "wechat" }, 400, "invalid_event_data"],
      [{ provider: "github", code: "x" }, 400, "invalid_event_data"],
      [{ provider: "dev", userId: "x".repeat(500) }, 400, "invalid_event_data"],
      [{ provider: "oidc", idToken: "" }, 400, "invalid_event_data"],
      [{ provider: "oidc", idToken: "not.a.jwt" }, 401, "invalid_id_token"],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(`${base}/v1/sessions`, body);
      expect({ body, status: res.status, code: await errorCode(res) }).toEqual({ body, status, code });
    }
    const notJson = await fetch(`${base}/v1/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    expect(await errorCode(notJson)).toBe("malformed_json");
  });
});

describe("auth configuration", () => {
  it("refuses the dev provider unless SNAPMESH_DEV_AUTH=1", async () => {
    const { base } = await startAuth({ SNAPMESH_DEV_AUTH: "0" });
    const res = await post(`${base}/v1/sessions`, { provider: "dev", userId: "alice" });
    expect(res.status).toBe(403);
    expect(await errorCode(res)).toBe("provider_disabled");
  });

  it("takes another permission backend through create's options (the adapter point), instead of the legacy one", async () => {
    const asked: string[] = [];
    const { base } = await startAuth(
      {},
      {
        permissionBackend: {
          decide: async (q) => {
            asked.push(`${q.userId} ${q.action} ${q.resource}`);
            return { allowed: q.resource === "album:adapter", reason: "adapter" };
          },
        },
      },
    );
    const { token } = (await (await post(`${base}/v1/sessions`, { provider: "dev", userId: "ivy" })).json()) as { token: string };
    const check = async (resource: string) =>
      (await (
        await post(`${base}/v1/permissions/check`, { action: "view", resource }, { authorization: `Bearer ${token}` })
      ).json()) as { allowed: boolean; reason: string };
    expect(await check("album:adapter")).toMatchObject({ allowed: true, reason: "adapter" });
    expect(await check("album:other")).toMatchObject({ allowed: false, reason: "adapter" });
    expect(asked).toEqual(["ivy view album:adapter", "ivy view album:other"]);
  });

  it("rotates keys: old tokens verify until they expire, new ones use the new key", async () => {
    const first = await startAuth();
    const old = (
      (await (await post(`${first.base}/v1/sessions`, { provider: "dev", userId: "erin" })).json()) as { token: string }
    ).token;
    const rotated = await startAuth({ AUTH_SIGNING_KEYS: JSON.stringify({ keys: [keyB, keyA] }) });
    const verify = sessionVerifier({
      jwks: new URL(`${rotated.base}/.well-known/jwks.json`),
      issuer: "snapmesh-auth",
      allowDevTokens: true,
    });
    expect((await verify(old)).id).toBe("erin");
    const fresh = (
      (await (await post(`${rotated.base}/v1/sessions`, { provider: "dev", userId: "erin" })).json()) as { token: string }
    ).token;
    expect(JSON.parse(Buffer.from(fresh.split(".")[0]!, "base64url").toString()).kid).toBe(keyB.kid);
    expect((await verify(fresh)).id).toBe("erin");
  });

  it("re-reads a mounted key file, so keys rotate without a restart", async () => {
    const dir = scratchDir("auth-keys");
    const file = join(dir, "keys.json");
    writeFileSync(file, JSON.stringify({ keys: [keyA] }));
    const { service, base } = await startAuth({
      AUTH_SIGNING_KEYS: "",
      AUTH_SIGNING_KEYS_FILE: file,
      AUTH_KEYS_RELOAD_SECONDS: "1",
    });
    const kids = async () =>
      ((await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys.map((k) => k.kid);
    expect(await kids()).toEqual([keyA.kid]);
    writeFileSync(file, JSON.stringify({ keys: [keyB, keyA] }));
    await eventually(async () => (await kids()).length === 2, "the rotated key set");
    expect(await kids()).toEqual([keyB.kid, keyA.kid]);
    // A broken file is read (the watcher reports it) and the keys in use stay; the next good file is served.
    const reported = vi.spyOn(service.log, "error");
    writeFileSync(file, "{ not json");
    await eventually(
      async () => reported.mock.calls.some(([, msg]) => msg === "could not reload the signing keys; keeping the current ones"),
      "the broken key file reported",
    );
    expect(await kids()).toEqual([keyB.kid, keyA.kid]);
    const keyC = await generateSigningJwk();
    writeFileSync(file, JSON.stringify({ keys: [keyC, keyB] }));
    await eventually(async () => (await kids())[0] === keyC.kid, "the key set after the broken one");
    expect(await kids()).toEqual([keyC.kid, keyB.kid]);
  });

  it("rate-limits sign-ins per subject with 429 and Retry-After", async () => {
    const { base } = await startAuth({ SIGNIN_LIMIT_PER_SUBJECT: "3" });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(`${base}/v1/sessions`, { provider: "dev", userId: "flood" })).status);
    expect(statuses).toEqual([201, 201, 201, 429]);
    const limited = await post(`${base}/v1/sessions`, { provider: "dev", userId: "flood" });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("rate-limits sign-ins per client address, taken from X-Forwarded-For behind trusted proxies", async () => {
    const { base } = await startAuth({ SIGNIN_LIMIT_PER_IP: "2", TRUST_PROXY_HOPS: "1" });
    const from = (ip: string, user: string) =>
      post(`${base}/v1/sessions`, { provider: "dev", userId: user }, { "x-forwarded-for": ip });
    expect([(await from("203.0.113.7", "a")).status, (await from("203.0.113.7", "b")).status]).toEqual([201, 201]);
    const third = await from("203.0.113.7", "c");
    expect(third.status).toBe(429);
    expect(await errorCode(third)).toBe("rate_limited");
    expect((await from("203.0.113.8", "d")).status).toBe(201);
  });

  it("without the proxy, the partner refuses the direct connection and sign-in fails clearly", async () => {
    const { base } = await startAuth({ EGRESS_PROXY: "" });
    const refusedBefore = wechat.refused.length;
    const res = await post(`${base}/v1/sessions`, { provider: "wechat", code: wechat.loginCode("openid-9") });
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(wechat.refused.length).toBeGreaterThan(refusedBefore);
    expect(wechat.refused.at(-1)!.from).toContain("127.0.0.1");
  });
});
