import { fileURLToPath } from "node:url";
import {
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
  runMigrations,
  runService,
  Service,
  tooLarge,
} from "@snapmesh/runtime";
import { isCode, newCode, normaliseCode } from "./codes.js";
import { type ShareCodeConfig, shareCodeConfigSchema } from "./config.js";
import { renderQr, WechatCodeRenderer } from "./render.js";
import { StorageClient } from "./storage-client.js";
import { expiryOf, findCode, insertCode, markImageGone, purgeExpired, scan } from "./store.js";

export { type ShareCodeConfig, shareCodeConfigSchema };

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));
const imageKeyOf = (code: string) => `sharecodes/${code}.png`;

export function createShareCodeService(config: ShareCodeConfig): Service {
  const service = new Service({ name: "share-code", schema: "sharecode", migrations: MIGRATIONS, config });
  const purge = async (ctx: Pick<HandlerContext, "tx">) => ({
    purged: await purgeExpired(ctx.tx, config.SHARECODE_PURGE_GRACE_SECONDS),
  });
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
  // fails, the handler throws, the transaction rolls back and the caller gets a 503; an image already
  // stored is deleted again (its object.created is then followed by object.deleted).
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
    ctx.onRollback(() => storage.delete(authorization, imageKeyOf(code)));
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

  // Only the mesh may ask for a purge (a signed event); the schedule runs in-process or as the chart's CronJob (`main purge`).
  service.command(SharecodeExpire, async (_data, ctx) => purge(ctx), { internal: true });
  startPurgeTimer(service, config.SHARECODE_PURGE_INTERVAL_SECONDS, config.SHARECODE_PURGE_GRACE_SECONDS);

  // A deleted image is not re-drawn (only its creator could store a new one): the code keeps resolving
  // and reports `imageStatus: "gone"`; the app can create a new code if it needs a picture.
  service.on(StorageObjectDeleted, async (data, ctx) => {
    if (data.key.startsWith("sharecodes/")) await markImageGone(ctx.tx, data.key);
  });

  service.rest("post", "/v1/share-codes", SharecodeCreate, (req) => req.body, { status: 201 });
  service.rest("get", "/v1/share-codes/:code", SharecodeResolve, (req) => ({ code: req.params.code }));
  return service;
}

/** Purges expired codes every `seconds` while a replica runs (0: off; the cluster uses the CronJob instead). */
function startPurgeTimer(service: Service, seconds: number, graceSeconds: number) {
  if (seconds <= 0) return;
  const timer = setInterval(() => {
    purgeExpired(service.db, graceSeconds)
      .then((purged) => purged > 0 && service.log.info({ purged }, "expired share codes purged"))
      .catch((err) => service.log.warn({ err: (err as Error).message }, "purge failed; will retry"));
  }, seconds * 1000);
  timer.unref();
  service.beforeClose(() => clearInterval(timer));
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "migrate") {
  await runMigrations({ name: "share-code", schema: "sharecode", migrations: MIGRATIONS });
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const config = loadConfig(shareCodeConfigSchema);
  const service = createShareCodeService(config);
  await runService(service, process.argv.slice(2), {
    // `main purge`: one purge and exit (what the chart's CronJob runs).
    purge: async () =>
      service.log.info({ purged: await purgeExpired(service.db, config.SHARECODE_PURGE_GRACE_SECONDS) }, "purged"),
  });
}
