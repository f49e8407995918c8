import { createHmac, timingSafeEqual } from "node:crypto";

export interface SigningKey {
  id: string;
  secret: Buffer;
}

/**
 * HMAC-SHA256 over method, key, the sha256 of the bytes the URL is for, and expiry (unix seconds): a link
 * serves only the bytes it was made for, never what is uploaded under the same key later.
 */
export function sign(key: SigningKey, method: string, objectKey: string, sha256: string, expires: number): string {
  return createHmac("sha256", key.secret)
    .update(`${method.toUpperCase()}\n${objectKey}\n${sha256}\n${expires}`)
    .digest("base64url");
}

export type Verdict =
  | { ok: true; sha256: string }
  | { ok: false; code: "url_expired" | "signature_invalid" | "unknown_key" | "url_incomplete" };

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Constant-time check of a temporary URL's signature. `keys[0]` signs; every key in the list verifies
 * (rotation). A valid URL names the sha256 of the bytes it may serve (`v`); the caller compares it with
 * the object's current bytes.
 */
export function verify(
  keys: SigningKey[],
  method: string,
  objectKey: string,
  parts: Partial<Record<"expires" | "kid" | "sig" | "v", string>>,
  nowSeconds: number,
): Verdict {
  const { expires, kid, sig, v } = parts;
  if (!expires || !sig || !v || !/^\d+$/.test(expires) || !SHA256_HEX.test(v)) return { ok: false, code: "url_incomplete" };
  const key = kid ? keys.find((k) => k.id === kid) : keys[0];
  if (!key) return { ok: false, code: "unknown_key" };
  const expected = Buffer.from(sign(key, method, objectKey, v, Number(expires)));
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, code: "signature_invalid" };
  if (Number(expires) <= nowSeconds) return { ok: false, code: "url_expired" };
  return { ok: true, sha256: v };
}

/** `STORAGE_SIGNING_KEYS` = `kid1:secret1,kid2:secret2` (first one signs). Secrets must be at least 32 characters. */
export function parseSigningKeys(value: string): SigningKey[] {
  const keys = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const i = entry.indexOf(":");
      if (i <= 0) throw new Error("each signing key must be 'kid:secret'");
      const secret = entry.slice(i + 1);
      if (secret.length < 32) throw new Error(`signing key '${entry.slice(0, i)}' is shorter than 32 characters`);
      return { id: entry.slice(0, i), secret: Buffer.from(secret) };
    });
  if (keys.length === 0) throw new Error("at least one 'kid:secret' is required");
  return keys;
}
