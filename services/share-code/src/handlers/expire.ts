import type { DataOf, SharecodeExpire } from "@snapmesh/events";
import type { EffectsContext, HandlerContext, ReplyData } from "@snapmesh/runtime";
import type { ShareCodeDeps } from "../deps.js";
import { purgeExpired } from "../store.js";

/**
 * Removes codes expired for longer than the grace period (until then they answer 410). One function for
 * every way a purge is asked for: the `purge` task (a replica's timer, the chart's CronJob running
 * `main purge`) and the internal expire command.
 */
export async function purge(ctx: Pick<EffectsContext, "tx">, deps: ShareCodeDeps): Promise<{ purged: number }> {
  return { purged: await purgeExpired(ctx.tx, deps.config.SHARECODE_PURGE_GRACE_SECONDS) };
}

// Only the mesh may ask for a purge (a signed event: the command is bound internal); the schedule runs
// in-process or as the chart's CronJob.
export const expire = (
  _data: DataOf<typeof SharecodeExpire>,
  ctx: HandlerContext,
  deps: ShareCodeDeps,
): Promise<ReplyData<typeof SharecodeExpire>> => purge(ctx, deps);
