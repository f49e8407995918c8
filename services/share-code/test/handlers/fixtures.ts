import type { Queryable } from "../../../runtime/src/internal.ts";
import { imageKeyOf, newCode } from "../../src/codes.ts";
import type { ImageStorage, ShareCodeDeps } from "../../src/deps.ts";
import { insertCode } from "../../src/store.ts";

/** A code row as create would leave it, made directly; `expiredSecondsAgo` backdates its expiry. */
export async function givenCode(
  tx: Queryable,
  opts: { page?: string; params?: Record<string, unknown>; expiredSecondsAgo?: number } = {},
): Promise<string> {
  const code = newCode();
  const row = { code, page: opts.page ?? "pages/p", params: opts.params ?? {}, createdBy: "creator", provider: "qrcode" };
  if (!(await insertCode(tx, { ...row, imageKey: imageKeyOf(code), ttlSeconds: 3600 }))) throw new Error("code taken");
  if (opts.expiredSecondsAgo !== undefined) {
    await tx.query("UPDATE sharecode.codes SET expires_at = now() - make_interval(secs => $2) WHERE code = $1", [
      code,
      opts.expiredSecondsAgo,
    ]);
  }
  return code;
}

export type StorageCall =
  | { op: "put"; authorization: string; key: string; png: Buffer; idempotencyId: string }
  | { op: "delete"; authorization: string; key: string }
  | { op: "signUrl"; authorization: string; key: string; ttlSeconds: number };

/** Storage that keeps every call it gets; `failSign` makes URL signing fail after the image is stored. */
export function recordingStorage(opts: { failSign?: Error } = {}): ImageStorage & { calls: StorageCall[] } {
  const calls: StorageCall[] = [];
  return {
    calls,
    async put(authorization, key, png, idempotencyId) {
      calls.push({ op: "put", authorization, key, png, idempotencyId });
    },
    async delete(authorization, key) {
      calls.push({ op: "delete", authorization, key });
    },
    async signUrl(authorization, key, ttlSeconds) {
      calls.push({ op: "signUrl", authorization, key, ttlSeconds });
      if (opts.failSign) throw opts.failSign;
      return { url: `https://storage.test/v1/objects/${key}?sig=x`, expiresAt: "2030-01-01T00:00:00Z" };
    },
  };
}

export function testDeps(
  overrides: Omit<Partial<ShareCodeDeps>, "config"> & { config?: Partial<ShareCodeDeps["config"]> } = {},
): ShareCodeDeps {
  return {
    storage: overrides.storage ?? recordingStorage(),
    wechat: overrides.wechat,
    config: {
      SHARECODE_CONTENT_TEMPLATE: "{code}",
      SHARECODE_DEFAULT_TTL_SECONDS: 30 * 24 * 3600,
      SHARECODE_IMAGE_URL_TTL_SECONDS: 7200,
      SHARECODE_MAX_PARAMS_BYTES: 4096,
      SHARECODE_PURGE_GRACE_SECONDS: 0,
      ...overrides.config,
    },
  };
}
