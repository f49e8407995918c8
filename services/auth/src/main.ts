import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { AuthPermissionCheck, AuthSessionCreate, AuthUserSignedIn } from "@snapmesh/events";
import {
  ConfigError,
  egressFromConfig,
  forbidden,
  loadConfig,
  RateLimiter,
  runMigrations,
  runService,
  Service,
  sessionVerifier,
} from "@snapmesh/runtime";
import { type AuthConfig, authConfigSchema } from "./config.js";
import { checkPermission } from "./handlers/permission-check.js";
import { KeyRing } from "./keyring.js";
import { OidcVerifier } from "./oidc.js";
import {
  type DecisionCache,
  KvDecisionCache,
  LegacyHttpBackend,
  localRules,
  MemoryDecisionCache,
  type PermissionBackend,
  PermissionService,
} from "./permissions.js";

import { upsertUser } from "./users.js";
import { code2Session } from "./wechat.js";

export { generateSigningJwk, KeyRing } from "./keyring.js";
export type { PermissionBackend } from "./permissions.js";
export { type AuthConfig, authConfigSchema };

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));

export interface AuthOptions {
  /** Replaces the legacy HTTP backend (the documented adapter point). */
  permissionBackend?: PermissionBackend;
}

export async function createAuthService(config: AuthConfig, options: AuthOptions = {}): Promise<Service> {
  // Permission decisions are cached in NATS KV shared by all replicas; only a run without NATS (EVENT_SINK=none) caches per replica.
  const sharedCache = config.EVENT_SINK !== "none";
  const needs = sharedCache ? (["nats"] as const) : [];
  const service = new Service({ name: "auth", schema: "auth", migrations: MIGRATIONS, config, needs });
  const keys = await loadKeys(config, service);
  // auth verifies its own tokens against the current key ring (rotation included), like every other service does via the JWKS.
  service.authenticate = (token) =>
    sessionVerifier({
      jwks: keys.jwks(),
      issuer: config.SNAPMESH_JWT_ISSUER,
      allowDevTokens: config.SNAPMESH_DEV_AUTH === "1",
    })(token);
  const egress = egressFromConfig(config, service.metrics);
  service.beforeClose(() => egress.close());
  const oidc =
    config.OIDC_ISSUER && config.OIDC_AUDIENCE
      ? new OidcVerifier(egress, {
          issuer: config.OIDC_ISSUER,
          audience: config.OIDC_AUDIENCE,
          jwksUrl: config.OIDC_JWKS_URL ?? `${config.OIDC_ISSUER.replace(/\/$/, "")}/.well-known/jwks.json`,
        })
      : undefined;
  const bySubject = new RateLimiter(config.SIGNIN_LIMIT_PER_SUBJECT, config.SIGNIN_LIMIT_WINDOW_SECONDS * 1000);
  const byIp = new RateLimiter(config.SIGNIN_LIMIT_PER_IP, config.SIGNIN_LIMIT_WINDOW_SECONDS * 1000);

  // Replies carry session tokens: never stored for de-duplication; a repeated sign-in signs in again.
  service.command(
    AuthSessionCreate,
    async (data, ctx) => {
      // Here, not in a REST middleware, so every door (REST, CloudEvents, each entry of a batch) counts.
      byIp.hit(ctx.clientIp ?? "unknown");
      let subject: string;
      switch (data.provider) {
        case "dev":
          if (config.SNAPMESH_DEV_AUTH !== "1") throw forbidden("the dev provider is disabled", "provider_disabled");
          subject = data.userId;
          break;
        case "wechat": {
          if (!config.WECHAT_APP_ID || !config.WECHAT_APP_SECRET)
            throw forbidden("WeChat sign-in is not configured", "provider_disabled");
          bySubject.hit(`wechat-code:${data.code}`);
          const id = await code2Session(
            egress,
            { apiBase: config.WECHAT_API_BASE, appId: config.WECHAT_APP_ID, appSecret: config.WECHAT_APP_SECRET },
            data.code,
          );
          subject = id.unionid ?? id.openid;
          break;
        }
        case "oidc": {
          if (!oidc) throw forbidden("OIDC sign-in is not configured", "provider_disabled");
          subject = (await oidc.verify(data.idToken)).subject;
          break;
        }
      }
      bySubject.hit(`${data.provider}:${subject}`);
      const user = await upsertUser(ctx.tx, data.provider, subject);
      await ctx.emit(AuthUserSignedIn, { userId: user.id, provider: data.provider, firstTime: user.firstTime });
      const session = await keys.sign(user.id, config.SNAPMESH_JWT_ISSUER, config.AUTH_TOKEN_TTL_SECONDS, { prv: data.provider });
      return { ...session, user: { id: user.id } };
    },
    { dedupe: false },
  );

  let memo: DecisionCache | undefined;
  // Built on first use: NATS is connected only once the service has started.
  const cache = (): DecisionCache => {
    if (!memo) {
      const ttl = config.PERMISSION_CACHE_TTL_SECONDS * 1000;
      if (service.nats) memo = new KvDecisionCache(service.nats, config.PERMISSION_CACHE_BUCKET, ttl);
      // NATS not connected yet (auth is not ready meanwhile): decide uncached rather than cache per replica.
      else if (sharedCache) return { get: async () => undefined, set: async () => {} };
      else memo = new MemoryDecisionCache(ttl);
    }
    return memo;
  };
  const backend =
    options.permissionBackend ??
    (config.LEGACY_PERMISSION_URL
      ? new LegacyHttpBackend(egress, {
          url: config.LEGACY_PERMISSION_URL,
          method: config.LEGACY_PERMISSION_METHOD,
          allowedField: config.LEGACY_ALLOWED_FIELD,
          timeoutMs: config.LEGACY_TIMEOUT_MS,
          ...(config.LEGACY_AUTH_HEADER ? { authHeader: config.LEGACY_AUTH_HEADER } : {}),
        })
      : undefined);
  const permissions = new PermissionService(
    localRules(config.AUTH_ADMIN_USERS),
    backend,
    cache,
    config.LEGACY_FAIL_OPEN === "1",
    service.log,
  );

  service.command(AuthPermissionCheck, (data, ctx) => checkPermission(data, ctx, permissions));

  service.app.get("/.well-known/jwks.json", (_req, res) => {
    res.setHeader("cache-control", "public, max-age=300");
    res.json(keys.jwks());
  });
  service.rest("post", "/v1/sessions", AuthSessionCreate, (req) => req.body, { status: 201 });
  service.rest("post", "/v1/permissions/check", AuthPermissionCheck, (req) => req.body);
  return service;
}

async function loadKeys(config: AuthConfig, service: Service): Promise<KeyRing> {
  if (config.AUTH_SIGNING_KEYS_FILE) {
    const file = config.AUTH_SIGNING_KEYS_FILE;
    const ring = await asConfig("AUTH_SIGNING_KEYS_FILE", async () => KeyRing.fromJson(readFileSync(file, "utf8")));
    const stop = ring.watchFile(config.AUTH_SIGNING_KEYS_FILE, config.AUTH_KEYS_RELOAD_SECONDS, (err) =>
      service.log.error({ err: err.message }, "could not reload the signing keys; keeping the current ones"),
    );
    service.beforeClose(stop);
    return ring;
  }
  const inline = config.AUTH_SIGNING_KEYS;
  if (inline) return asConfig("AUTH_SIGNING_KEYS", () => KeyRing.fromJson(inline));
  if (config.SNAPMESH_DEV_AUTH === "1") {
    service.log.warn("no AUTH_SIGNING_KEYS: using an ephemeral key (development only; tokens die with the process)");
    return KeyRing.ephemeral();
  }
  throw new ConfigError([
    "AUTH_SIGNING_KEYS: AUTH_SIGNING_KEYS or AUTH_SIGNING_KEYS_FILE is required (SNAPMESH_DEV_AUTH=1 allows an ephemeral key)",
  ]);
}

/** A key set that cannot be read or parsed is a configuration error of `variable` (exit 78, one line). */
async function asConfig<T>(variable: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    throw new ConfigError([`${variable}: ${(err as Error).message}`], { cause: err });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "migrate") {
  await runMigrations({ name: "auth", schema: "auth", migrations: MIGRATIONS });
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runService(createAuthService(loadConfig(authConfigSchema)));
}
