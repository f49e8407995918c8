import { type DataOf, type SharecodeCreate, SharecodeCreated } from "@snapmesh/events";
import { forbidden, type HandlerContext, type ReplyData, tooLarge } from "@snapmesh/runtime";
import { imageKeyOf, newCode } from "../codes.js";
import type { ShareCodeDeps } from "../deps.js";
import { renderQr } from "../render.js";
import { expiryOf, insertCode } from "../store.js";

// The row, the image in storage and the fact commit together or not at all: if storage or WeChat
// fails, the handler throws, the transaction rolls back and the caller gets a 503; an image already
// stored is deleted again (its object.created is then followed by object.deleted).
export async function create(
  data: DataOf<typeof SharecodeCreate>,
  ctx: HandlerContext,
  { config, storage, wechat }: ShareCodeDeps,
): Promise<ReplyData<typeof SharecodeCreate>> {
  const user = ctx.requireUser();
  const paramsBytes = Buffer.byteLength(JSON.stringify(data.params));
  if (paramsBytes > config.SHARECODE_MAX_PARAMS_BYTES) {
    throw tooLarge(`params take ${paramsBytes} bytes; at most ${config.SHARECODE_MAX_PARAMS_BYTES}`, "params_too_large");
  }
  const provider = data.provider ?? "qrcode";
  if (provider === "wechat" && !wechat) throw forbidden("the WeChat code provider is not configured", "provider_disabled");
  const ttlSeconds = data.ttlSeconds ?? config.SHARECODE_DEFAULT_TTL_SECONDS;
  let code = newCode();
  for (let attempt = 0; ; attempt++) {
    const row = {
      code,
      page: data.page,
      params: data.params,
      createdBy: user.id,
      provider,
      imageKey: imageKeyOf(code),
      ttlSeconds,
    };
    if (await insertCode(ctx.tx, row)) break;
    if (attempt >= 5) throw new Error("could not draw a free share code");
    code = newCode();
  }
  const png =
    wechat && provider === "wechat"
      ? await wechat.render(code, data.page)
      : await renderQr(config.SHARECODE_CONTENT_TEMPLATE.replace("{code}", code));
  const authorization = `Bearer ${user.token}`;
  await storage.put(authorization, imageKeyOf(code), png, `sharecode-image-${code}`);
  ctx.onRollback(() => storage.delete(authorization, imageKeyOf(code)));
  const image = await storage.signUrl(
    authorization,
    imageKeyOf(code),
    Math.min(ttlSeconds, config.SHARECODE_IMAGE_URL_TTL_SECONDS),
  );
  const created = { code, imageUrl: image.url, expiresAt: await expiryOf(ctx.tx, code), createdBy: user.id, page: data.page };
  await ctx.emit(SharecodeCreated, created, { subject: code });
  return created;
}
