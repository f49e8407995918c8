import type { Queryable } from "@snapmesh/runtime";
import { type SigningKey, sign } from "./signing.js";
import { liveObjects } from "./store.js";

export interface UrlItem {
  key: string;
  url?: string;
  expiresAt?: string;
  error?: { code: string; message: string };
}

export interface UrlCaller {
  id: string;
  /** Whether the caller may read someone else's object (auth's permission check); absent: never. */
  mayRead?: (objectKey: string) => Promise<boolean>;
}

/**
 * Signs a GET URL per key the caller may read: their own objects, and others' ones the permission check
 * allows. Any other key gets the same per-item `object_not_found` as a missing one, and the check is asked
 * for missing keys too, so the answer never tells whether someone else's object exists.
 */
export async function signUrls(
  db: Queryable,
  key: SigningKey,
  publicBase: string,
  keys: string[],
  ttl: { ttlSeconds: number; maxTtlSeconds: number },
  caller: UrlCaller,
): Promise<UrlItem[]> {
  const expires = Math.floor(Date.now() / 1000) + Math.min(ttl.ttlSeconds, ttl.maxTtlSeconds);
  const base = publicBase.replace(/\/$/, "");
  const live = await liveObjects(db, keys);
  const readable = async (objectKey: string) =>
    live.get(objectKey)?.owner === caller.id || ((await caller.mayRead?.(objectKey)) ?? false);
  const allowed = await Promise.all(keys.map(readable));
  return keys.map((objectKey, i) => {
    const obj = live.get(objectKey);
    if (!obj || !allowed[i]) return { key: objectKey, error: { code: "object_not_found", message: `no object '${objectKey}'` } };
    const path = objectKey.split("/").map(encodeURIComponent).join("/");
    const sig = sign(key, "GET", objectKey, obj.sha256, expires);
    return {
      key: objectKey,
      url: `${base}/v1/objects/${path}?v=${obj.sha256}&expires=${expires}&kid=${encodeURIComponent(key.id)}&sig=${sig}`,
      expiresAt: new Date(expires * 1000).toISOString(),
    };
  });
}
