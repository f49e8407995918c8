import { type DataOf, type SharecodeResolve, SharecodeScanned } from "@snapmesh/events";
import { gone, type HandlerContext, notFound, type ReplyData } from "@snapmesh/runtime";
import { isCode, normaliseCode } from "../codes.js";
import { findCode, scan } from "../store.js";

/** A live code's payload, counting the scan; an expired one answers 410 until the purge removes it (then 404). */
export async function resolve(
  data: DataOf<typeof SharecodeResolve>,
  ctx: HandlerContext,
): Promise<ReplyData<typeof SharecodeResolve>> {
  const code = normaliseCode(data.code);
  if (!isCode(code)) throw notFound(`no share code '${data.code}'`, "code_not_found");
  const row = await scan(ctx.tx, code);
  if (!row) {
    const existing = await findCode(ctx.tx, code);
    if (existing?.expired) throw gone(`share code '${code}' has expired`, "code_expired");
    throw notFound(`no share code '${code}'`, "code_not_found");
  }
  await ctx.emit(SharecodeScanned, { code, scans: row.scans }, { subject: code });
  return {
    code,
    page: row.page,
    params: row.params,
    scans: row.scans,
    expiresAt: row.expiresAt,
    imageStatus: row.imageGone ? ("gone" as const) : ("ok" as const),
  };
}
