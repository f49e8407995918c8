import { fileURLToPath } from "node:url";
import {
  command,
  SharecodeCreate,
  SharecodeCreated,
  SharecodeExpire,
  SharecodeResolve,
  SharecodeScanned,
  StorageObjectDeleted,
} from "@snapmesh/events";
import {
  egressFromConfig,
  forbidden,
  gone,
  type HandlerContext,
  loadConfig,
  notFound,
  runService,
  Service,
  tooLarge,
} from "@snapmesh/runtime";
import { z } from "zod";
import { isCode, newCode, normaliseCode } from "./codes.js";
import { type ShareCodeConfig, shareCodeConfigSchema } from "./config.js";
import { renderQr, WechatCodeRenderer } from "./render.js";
import { StorageClient } from "./storage-client.js";
import { expiryOf, findCode, insertCode, markImageGone, purgeExpired, scan } from "./store.js";

export { type ShareCodeConfig, shareCodeConfigSchema };

/** What a Knative PingSource sends (`spec.data` is `{}`): treated as snapmesh.sharecode.expire. */
const KnativePing = command("share-code", "dev.knative.sources.ping", "Knative PingSource tick", z.unknown());

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));
const imageKeyOf = (code: string) => `sharecodes/${code}.png`;

export function createShareCodeService(config: ShareCodeConfig): Service {
  const service = new Service({ name: "share-code", schema: "sharecode", migrations: MIGRATIONS, config });
  const storage = new StorageClient(config.SNAPMESH_STORAGE_URL, config.SHARECODE_STORAGE_TIMEOUT_MS);
  const egress = egressFromConfig(config, service.metrics);
  service.beforeClose(() => egress.close());
  const wechat =
    config.WECHAT_APP_ID && config.WECHAT_APP_SECRET
      ? new WechatCodeRenderer(egress, {
          apiBase: config.WECHAT_API_BASE,
          appId: config.WECHAT_APP_ID,
          appSecret: config.WECHAT_APP_SECRET,
        })
      : undefined;

  // The row, the image in storage and the fact commit together or not at all: if storage or WeChat
  // fails, the handler throws, the transaction rolls back and the caller gets a 503 (nothing half-written).
  service.command(SharecodeCreate, async (data, ctx) => {
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
    const image = await storage.signUrl(
      authorization,
      imageKeyOf(code),
      Math.min(ttlSeconds, config.SHARECODE_IMAGE_URL_TTL_SECONDS),
    );
    const created = { code, imageUrl: image.url, expiresAt: await expiryOf(ctx.tx, code), createdBy: user.id, page: data.page };
    await ctx.emit(SharecodeCreated, created, { subject: code });
    return created;
  });

  service.command(SharecodeResolve, async (data, ctx) => {
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
  });

  const purge = async (ctx: HandlerContext) => ({ purged: await purgeExpired(ctx.tx, config.SHARECODE_PURGE_GRACE_SECONDS) });
  service.command(SharecodeExpire, (_data, ctx) => purge(ctx));
  // A Knative PingSource sends its own event type on the schedule: the same purge.
  service.command(KnativePing, async (_data, ctx) => {
    await purge(ctx);
  });

  // A deleted image is not re-drawn (only its creator could store a new one): the code keeps resolving
  // and reports `imageStatus: "gone"`; the app can create a new code if it needs a picture.
  service.on(StorageObjectDeleted, async (data, ctx) => {
    if (data.key.startsWith("sharecodes/")) await markImageGone(ctx.tx, data.key);
  });

  service.rest("post", "/v1/share-codes", SharecodeCreate, (req) => req.body, { status: 201 });
  service.rest("get", "/v1/share-codes/:code", SharecodeResolve, (req) => ({ code: req.params.code }));
  return service;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runService(createShareCodeService(loadConfig(shareCodeConfigSchema)));
}
