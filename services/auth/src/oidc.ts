import { type EgressClient, unauthorized } from "@snapmesh/runtime";
import { createLocalJWKSet, errors, type JSONWebKeySet, jwtVerify } from "jose";

export interface OidcOptions {
  issuer: string;
  audience: string;
  jwksUrl: string;
  cacheSeconds?: number;
}

/**
 * Verifies an IdP's ID tokens: signature against the issuer's JWKS (fetched through the egress client,
 * cached, refetched once on an unknown `kid` so the IdP can rotate), issuer and audience.
 */
export class OidcVerifier {
  private jwks: { keys: ReturnType<typeof createLocalJWKSet>; fetchedAt: number } | undefined;

  constructor(
    private readonly egress: EgressClient,
    private readonly opts: OidcOptions,
  ) {}

  async verify(idToken: string): Promise<{ subject: string }> {
    try {
      return await this.verifyWith(await this.keys(false), idToken);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey && this.stale(30)) {
        return this.verifyWith(await this.keys(true), idToken).catch((e) => {
          throw refused(e);
        });
      }
      throw refused(err);
    }
  }

  private async verifyWith(keys: ReturnType<typeof createLocalJWKSet>, idToken: string) {
    const { payload } = await jwtVerify(idToken, keys, {
      issuer: this.opts.issuer,
      audience: this.opts.audience,
      algorithms: ["RS256", "ES256", "EdDSA", "PS256"],
      requiredClaims: ["sub", "exp"],
    });
    return { subject: String(payload.sub) };
  }

  private stale(seconds: number): boolean {
    return !this.jwks || Date.now() - this.jwks.fetchedAt > seconds * 1000;
  }

  private async keys(force: boolean) {
    if (!force && this.jwks && !this.stale(this.opts.cacheSeconds ?? 600)) return this.jwks.keys;
    const res = await this.egress.request(this.opts.jwksUrl);
    if (res.status !== 200) throw unauthorized("the identity provider's keys could not be fetched", "oidc_unavailable");
    this.jwks = { keys: createLocalJWKSet(res.json<JSONWebKeySet>()), fetchedAt: Date.now() };
    return this.jwks.keys;
  }
}

function refused(err: unknown) {
  if (err instanceof errors.JWTExpired) return unauthorized("the ID token has expired", "id_token_expired");
  if (err instanceof errors.JOSEError) return unauthorized(`the ID token is not valid: ${err.message}`, "invalid_id_token");
  return err;
}
