import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { afterEach, describe, expect, it, vi } from "vitest";
import { testIssuer } from "../../../test/support/tokens.ts";
import { sessionVerifier } from "../src/internal.ts";

const ISSUER = "snapmesh-auth";

/** Tokens signed as auth signs them (test/support), with a key set to verify them by. */
async function issuer() {
  const { jwks, token } = await testIssuer(ISSUER);
  return { jwks, token: (sub: string, expiresIn = "15m") => token(sub, { expiresIn }) };
}

/** A key resolver that counts how often it is asked (once per real signature verification) and can be emptied. */
function countingKeys(jwks: JSONWebKeySet) {
  let current = createLocalJWKSet(jwks);
  const keys = Object.assign(
    ((header, input) => {
      keys.calls++;
      return current(header, input);
    }) as JWTVerifyGetKey,
    {
      calls: 0,
      revokeAll: () => {
        current = createLocalJWKSet({ keys: [] });
      },
    },
  );
  return keys;
}

describe("session token verification cache", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("answers a token it verified from memory, with the same user", async () => {
    const { jwks, token } = await issuer();
    const keys = countingKeys(jwks);
    const verify = sessionVerifier({ jwks: keys, issuer: ISSUER });
    const t = await token("alice");
    const first = await verify(t);
    const second = await verify(t);
    expect(second).toEqual(first);
    expect(second.id).toBe("alice");
    expect(keys.calls).toBe(1);
    second.id = "mallory";
    expect((await verify(t)).id).toBe("alice");
  });

  it("verifies again when the cache is off", async () => {
    const { jwks, token } = await issuer();
    const keys = countingKeys(jwks);
    const verify = sessionVerifier({ jwks: keys, issuer: ISSUER, cacheSeconds: 0 });
    const t = await token("bob");
    await verify(t);
    await verify(t);
    expect(keys.calls).toBe(2);
  });

  it("never answers a token past its exp from memory", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const { jwks, token } = await issuer();
    const verify = sessionVerifier({ jwks: countingKeys(jwks), issuer: ISSUER, cacheSeconds: 3600 });
    const t = await token("carol", "30s");
    expect((await verify(t)).id).toBe("carol");
    vi.setSystemTime(Date.now() + 31_000);
    await expect(verify(t)).rejects.toMatchObject({ status: 401, code: "token_expired" });
  });

  it("stops accepting a token whose key left the key set once its cache time has passed", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const { jwks, token } = await issuer();
    const keys = countingKeys(jwks);
    const verify = sessionVerifier({ jwks: keys, issuer: ISSUER, cacheSeconds: 60 });
    const t = await token("dave");
    await verify(t);
    keys.revokeAll();
    vi.setSystemTime(Date.now() + 61_000);
    await expect(verify(t)).rejects.toMatchObject({ status: 401, code: "invalid_token" });
  });

  it("does not answer a forged token from the entry of the genuine one", async () => {
    const { jwks, token } = await issuer();
    const verify = sessionVerifier({ jwks: countingKeys(jwks), issuer: ISSUER });
    const t = await token("erin");
    await verify(t);
    const [h, p, s] = t.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "root" })).toString("base64url")}.${s}`;
    await expect(verify(forged)).rejects.toMatchObject({ status: 401, code: "invalid_token" });
  });
});
