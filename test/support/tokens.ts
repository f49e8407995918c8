import { randomUUID } from "node:crypto";
import { exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from "jose";
import { type Authenticate, SESSION_AUDIENCE, sessionVerifier } from "../../services/runtime/src/internal.ts";

export interface TestIssuer {
  jwks: JSONWebKeySet;
  verifier: Authenticate;
  /** A session token for `userId`, as auth would issue it. */
  token(userId: string, opts?: { expiresIn?: string }): Promise<string>;
  bearer(userId: string): Promise<string>;
}

/** Signs session tokens like auth does (ES256, issuer, audience), for services tested without auth running. */
export async function testIssuer(issuer = "snapmesh-auth"): Promise<TestIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const kid = randomUUID();
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" }] };
  const token = (userId: string, opts: { expiresIn?: string } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "ES256", kid })
      .setSubject(userId)
      .setIssuer(issuer)
      .setAudience(SESSION_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(opts.expiresIn ?? "15m")
      .sign(privateKey);
  return {
    jwks,
    verifier: sessionVerifier({ jwks, issuer }),
    token,
    bearer: async (userId) => `Bearer ${await token(userId)}`,
  };
}
