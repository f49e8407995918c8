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
  /**
   * How long a verified token is answered from memory without verifying its signature again (never past its
   * `exp`); 0 turns the cache off. A key removed from the JWKS stops verifying within this time plus the
   * JWKS cache age.
   */
  cacheSeconds?: number;
}

const CACHE_ENTRIES = 5_000;

/**
 * Verifies session tokens locally against auth's JWKS: signature (ES256/EdDSA only, never `none`),
 * issuer, audience, expiry, and the provider (dev tokens only where dev sign-in is on). Every service uses
 * it instead of calling auth per request.
 */
export function sessionVerifier(opts: VerifierOptions): Authenticate {
  const { jwks } = opts;
  // Made on first use: a remote key set touches Node's fetch, whose loading costs ~20 ms of a cold start.
  let resolver: JWTVerifyGetKey | undefined;
  const keys: JWTVerifyGetKey = (header, input) => {
    resolver ??=
      jwks instanceof URL
        ? createRemoteJWKSet(jwks, { cacheMaxAge: 10 * 60_000, cooldownDuration: 5_000, timeoutDuration: 3_000 })
        : typeof jwks === "function"
          ? jwks
          : createLocalJWKSet(jwks);
    return resolver(header, input);
  };
  const verified = new VerifiedTokens((opts.cacheSeconds ?? 60) * 1000);
  return async (token: string): Promise<User> => {
    const known = verified.get(token);
    if (known) return known;
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
      const user = { ...payload, id: String(payload.sub) };
      verified.add(token, user, Number(payload.exp) * 1000);
      return user;
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof errors.JWTExpired) throw unauthorized("the session token has expired", "token_expired");
      const reason = err instanceof errors.JOSEError ? err.message : "verification failed";
      throw unauthorized(`the session token is not valid: ${reason}`, "invalid_token");
    }
  };
}

/**
 * Tokens that verified, each until the earlier of its `exp` and `ttlMs` from now: ES256 verification costs
 * ~190 µs of CPU through WebCrypto, and an app sends the same session token on every request. Bounded;
 * the oldest entry goes first.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, { user: User; until: number }>();

  constructor(private readonly ttlMs: number) {}

  get(token: string): User | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    if (Date.now() < entry.until) return { ...entry.user };
    this.entries.delete(token);
    return undefined;
  }

  add(token: string, user: User, expiresAt: number): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= CACHE_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { user: { ...user }, until: Math.min(expiresAt, Date.now() + this.ttlMs) });
  }
}
