import { createLocalJWKSet, createRemoteJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey, jwtVerify } from "jose";
import { AppError, unauthorized } from "./errors.js";
import type { Authenticate, User } from "./registry.js";

export const SESSION_ALGORITHMS = ["ES256", "EdDSA"];
export const SESSION_AUDIENCE = "snapmesh";

export interface VerifierOptions {
  issuer: string;
  audience?: string;
  /** Fetched and cached (refetched on an unknown `kid`), or a fixed key set. */
  jwks: URL | JSONWebKeySet | JWTVerifyGetKey;
  /** Accept tokens the `dev` provider minted (claim `prv: "dev"`): only where SNAPMESH_DEV_AUTH=1. */
  allowDevTokens?: boolean;
}

/**
 * Verifies session tokens locally against auth's JWKS: signature (ES256/EdDSA only, never `none`),
 * issuer, audience, expiry, and the provider (dev tokens only where dev sign-in is on). Every service uses
 * it instead of calling auth per request.
 */
export function sessionVerifier(opts: VerifierOptions): Authenticate {
  const keys: JWTVerifyGetKey =
    opts.jwks instanceof URL
      ? createRemoteJWKSet(opts.jwks, { cacheMaxAge: 10 * 60_000, cooldownDuration: 5_000, timeoutDuration: 3_000 })
      : typeof opts.jwks === "function"
        ? opts.jwks
        : createLocalJWKSet(opts.jwks);
  return async (token: string): Promise<User> => {
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: opts.issuer,
        audience: opts.audience ?? SESSION_AUDIENCE,
        algorithms: SESSION_ALGORITHMS,
        requiredClaims: ["sub", "exp"],
      });
      if (payload.prv === "dev" && opts.allowDevTokens !== true) {
        throw unauthorized("tokens of the dev sign-in provider are not accepted here", "dev_token_refused");
      }
      return { ...payload, id: String(payload.sub) };
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof errors.JWTExpired) throw unauthorized("the session token has expired", "token_expired");
      const reason = err instanceof errors.JOSEError ? err.message : "verification failed";
      throw unauthorized(`the session token is not valid: ${reason}`, "invalid_token");
    }
  };
}
