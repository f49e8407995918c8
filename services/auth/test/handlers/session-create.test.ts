import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeWechat, fakeWechat } from "../../../../test/support/fakes/wechat.ts";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import { type Database, EgressClient, type Queryable, RateLimiter, sessionVerifier } from "../../../runtime/src/internal.ts";
import { type SessionDeps, sessionCreate } from "../../src/handlers/session-create.ts";
import { KeyRing } from "../../src/keyring.ts";
import { auth } from "../../src/service.ts";

const ISSUER = "snapmesh-auth";
let db: Database;
let wechat: FakeWechat;
// Direct to the fake WeChat on loopback: the egress proxy is the integration tests' business.
const egress = new EgressClient({ allowHosts: ["127.0.0.1"], timeoutMs: 2000, retries: 0 });

beforeAll(async () => {
  [db, wechat] = await Promise.all([serviceDatabase(auth), fakeWechat()]);
});
afterAll(async () => {
  await Promise.all([db?.close(), wechat?.stop(), egress.close()]);
});

async function deps(
  config: Partial<SessionDeps["config"]> = {},
  limits: { perSubject?: number; perIp?: number } = {},
): Promise<SessionDeps> {
  return {
    config: {
      SNAPMESH_DEV_AUTH: "1",
      SNAPMESH_JWT_ISSUER: ISSUER,
      AUTH_TOKEN_TTL_SECONDS: 900,
      WECHAT_API_BASE: wechat.url,
      WECHAT_APP_ID: wechat.appId,
      WECHAT_APP_SECRET: wechat.appSecret,
      ...config,
    },
    keys: await KeyRing.ephemeral(),
    egress,
    oidc: undefined,
    signInsBySubject: new RateLimiter(limits.perSubject ?? 100, 60_000),
    signInsByIp: new RateLimiter(limits.perIp ?? 100, 60_000),
  };
}

const verify = (d: SessionDeps) => sessionVerifier({ jwks: d.keys.jwks(), issuer: ISSUER, allowDevTokens: true });
const userRows = (tx: Queryable) =>
  tx.query<{ id: string; provider: string; subject: string; sign_ins: string }>(
    "SELECT id, provider, subject, sign_ins::text FROM auth.users ORDER BY id",
  );

describe("sessionCreate", () => {
  it("refuses the dev provider unless SNAPMESH_DEV_AUTH=1, creating no user and emitting nothing", async () => {
    const d = await deps({ SNAPMESH_DEV_AUTH: "0" });
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx);
      await expect(sessionCreate({ provider: "dev", userId: "alice" }, ctx, d)).rejects.toMatchObject({
        status: 403,
        code: "provider_disabled",
      });
      expect(ctx.emitted).toEqual([]);
      expect((await userRows(tx)).rows).toEqual([]);
    });
  });

  it("signs in: AuthUserSignedIn with firstTime true, then false; the token is signed by the ring for that user", async () => {
    const d = await deps();
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx);
      const first = await sessionCreate({ provider: "dev", userId: "alice" }, ctx, d);
      const second = await sessionCreate({ provider: "dev", userId: "alice" }, ctx, d);
      expect([first.user.id, second.user.id]).toEqual(["alice", "alice"]);
      expect(ctx.emitted.map((e) => [e.type, e.data])).toEqual([
        ["snapmesh.auth.user.signed-in", { userId: "alice", provider: "dev", firstTime: true }],
        ["snapmesh.auth.user.signed-in", { userId: "alice", provider: "dev", firstTime: false }],
      ]);
      expect((await userRows(tx)).rows).toEqual([{ id: "alice", provider: "dev", subject: "alice", sign_ins: "2" }]);
      const claims = await verify(d)(second.token);
      expect(claims).toMatchObject({ id: "alice", prv: "dev", iss: ISSUER });
      expect(second.token).not.toBe(first.token);
      expect(Date.parse(second.expiresAt) - Date.now()).toBeGreaterThan(800_000);
    });
  });

  it("signs in with WeChat under the unionid when bound, so the same person keeps one user across apps", async () => {
    const d = await deps();
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx);
      const viaMiniProgram = await sessionCreate({ provider: "wechat", code: wechat.loginCode("openid-a", "union-1") }, ctx, d);
      const viaOtherApp = await sessionCreate({ provider: "wechat", code: wechat.loginCode("openid-b", "union-1") }, ctx, d);
      expect(viaMiniProgram.user.id).toMatch(/^u_/);
      expect(viaOtherApp.user.id).toBe(viaMiniProgram.user.id);
      expect((await userRows(tx)).rows).toMatchObject([{ provider: "wechat", subject: "union-1", sign_ins: "2" }]);
      expect((await verify(d)(viaOtherApp.token)).prv).toBe("wechat");
    });
  });

  it("refuses WeChat and OIDC sign-in when they are not configured", async () => {
    const d = await deps({ WECHAT_APP_SECRET: undefined });
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx);
      await expect(sessionCreate({ provider: "wechat", code: wechat.loginCode("openid-c") }, ctx, d)).rejects.toMatchObject({
        status: 403,
        code: "provider_disabled",
      });
      await expect(sessionCreate({ provider: "oidc", idToken: "a.b.c" }, ctx, d)).rejects.toMatchObject({
        status: 403,
        code: "provider_disabled",
      });
      expect(ctx.emitted).toEqual([]);
    });
  });

  it("counts sign-ins per subject and per client address, refusing with 429 past the limit", async () => {
    const bySubject = await deps({}, { perSubject: 1 });
    const byIp = await deps({}, { perIp: 1 });
    await inRolledBackTx(db, async (tx) => {
      await sessionCreate({ provider: "dev", userId: "flood" }, handlerContext(tx), bySubject);
      await expect(sessionCreate({ provider: "dev", userId: "flood" }, handlerContext(tx), bySubject)).rejects.toMatchObject({
        status: 429,
        code: "rate_limited",
      });
      const from = (clientIp: string) => handlerContext(tx, { clientIp });
      await sessionCreate({ provider: "dev", userId: "ip-1" }, from("203.0.113.7"), byIp);
      await expect(sessionCreate({ provider: "dev", userId: "ip-2" }, from("203.0.113.7"), byIp)).rejects.toMatchObject({
        status: 429,
      });
      expect((await sessionCreate({ provider: "dev", userId: "ip-3" }, from("203.0.113.8"), byIp)).user.id).toBe("ip-3");
    });
  });
});
