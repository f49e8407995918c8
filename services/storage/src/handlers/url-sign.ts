import type { DataOf, StorageUrlSign } from "@snapmesh/events";
import type { HandlerContext, ReplyData } from "@snapmesh/runtime";
import type { StorageDeps } from "../deps.js";
import { signUrls } from "../urls.js";

export async function urlSign(
  data: DataOf<typeof StorageUrlSign>,
  ctx: HandlerContext,
  deps: StorageDeps,
): Promise<ReplyData<typeof StorageUrlSign>> {
  const caller = deps.urlCaller(ctx.requireUser());
  const ttl = {
    ttlSeconds: data.ttlSeconds ?? deps.config.STORAGE_URL_TTL_SECONDS,
    maxTtlSeconds: deps.config.STORAGE_URL_TTL_MAX_SECONDS,
  };
  return { items: await signUrls(ctx.tx, deps.keys[0]!, deps.publicBase(), data.keys, ttl, caller) };
}
