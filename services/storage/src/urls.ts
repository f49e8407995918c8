import type { Queryable } from "@snapmesh/runtime";
import { type SigningKey, sign } from "./signing.js";
import { liveKeys } from "./store.js";

export interface UrlItem {
  key: string;
  url?: string;
  expiresAt?: string;
  error?: { code: string; message: string };
}

/** Signs a GET URL per key; a key with no live object gets an item with an error, not a failed batch. */
export async function signUrls(
  db: Queryable,
  key: SigningKey,
  publicBase: string,
  keys: string[],
  ttl: { ttlSeconds: number; maxTtlSeconds: number },
): Promise<UrlItem[]> {
  const expires = Math.floor(Date.now() / 1000) + Math.min(ttl.ttlSeconds, ttl.maxTtlSeconds);
  const base = publicBase.replace(/\/$/, "");
  const live = await liveKeys(db, keys);
  return keys.map((objectKey) => {
    if (!live.has(objectKey)) return { key: objectKey, error: { code: "object_not_found", message: `no object '${objectKey}'` } };
    const path = objectKey.split("/").map(encodeURIComponent).join("/");
    const sig = sign(key, "GET", objectKey, expires);
    return {
      key: objectKey,
      url: `${base}/v1/objects/${path}?expires=${expires}&kid=${encodeURIComponent(key.id)}&sig=${sig}`,
      expiresAt: new Date(expires * 1000).toISOString(),
    };
  });
}
