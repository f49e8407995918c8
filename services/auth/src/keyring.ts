import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { SESSION_AUDIENCE } from "@snapmesh/runtime";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from "jose";

interface SigningKey {
  kid: string;
  alg: "ES256" | "EdDSA";
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * The session-token keys. The first key signs; every key is published in the JWKS, so tokens signed by a
 * previous key keep verifying until they expire. Keys come from a JWK set (env or mounted Secret file)
 * that is re-read, so rotation needs no restart.
 */
export class KeyRing {
  private keys: SigningKey[] = [];

  static async fromJson(json: string): Promise<KeyRing> {
    const ring = new KeyRing();
    await ring.load(json);
    return ring;
  }

  /** A fresh ES256 key: only for development runs (SNAPMESH_DEV_AUTH=1) without configured keys. */
  static async ephemeral(): Promise<KeyRing> {
    return KeyRing.fromJson(JSON.stringify({ keys: [await generateSigningJwk()] }));
  }

  async load(json: string): Promise<void> {
    const parsed = JSON.parse(json) as { keys?: JWK[] };
    if (!Array.isArray(parsed.keys) || parsed.keys.length === 0) throw new Error("the signing key set has no keys");
    const keys: SigningKey[] = [];
    for (const jwk of parsed.keys) {
      if (!jwk.kid || !jwk.d) throw new Error("each signing key needs a kid and its private part");
      const alg = jwk.kty === "OKP" ? "EdDSA" : "ES256";
      const { d: _d, ...publicJwk } = jwk;
      keys.push({
        kid: jwk.kid,
        alg,
        privateKey: (await importJWK(jwk, alg)) as CryptoKey,
        publicJwk: { ...publicJwk, alg, use: "sig" },
      });
    }
    this.keys = keys;
  }

  /** Re-reads a key file every `seconds`; a broken file keeps the keys in use and is reported. */
  watchFile(path: string, seconds: number, onError: (err: Error) => void): () => void {
    const timer = setInterval(() => {
      readFile(path, "utf8")
        .then((json) => this.load(json))
        .catch(onError);
    }, seconds * 1000);
    timer.unref();
    return () => clearInterval(timer);
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }

  async sign(userId: string, issuer: string, ttlSeconds: number, claims: Record<string, unknown> = {}) {
    const key = this.keys[0];
    if (!key) throw new Error("no signing key loaded");
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
      .setSubject(userId)
      .setIssuer(issuer)
      .setAudience(SESSION_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(key.privateKey);
    return { token, expiresAt: new Date((now + ttlSeconds) * 1000).toISOString() };
  }
}

/** A new private ES256 JWK with a kid: what `snapmesh keys generate` prints for a Secret. */
export async function generateSigningJwk(): Promise<JWK> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  return { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: "ES256" };
}
