import { readFileSync } from "node:fs";
import { ConfigError, type EgressClient, RateLimiter, type Runtime } from "@snapmesh/runtime";
import type { AuthConfig } from "./config.js";
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

export interface AuthOptions {
  /** Replaces the legacy HTTP backend (the documented adapter point). */
  permissionBackend?: PermissionBackend;
}

/** What auth's handlers need besides their data and context; built once per process. */
export interface AuthDeps {
  config: Pick<
    AuthConfig,
    | "SNAPMESH_DEV_AUTH"
    | "SNAPMESH_JWT_ISSUER"
    | "AUTH_TOKEN_TTL_SECONDS"
    | "WECHAT_API_BASE"
    | "WECHAT_APP_ID"
    | "WECHAT_APP_SECRET"
    | "OIDC_ISSUER"
    | "OIDC_AUDIENCE"
  >;
  /** The session-token keys: the first signs, all are published (rotation). */
  keys: KeyRing;
  /** Outside APIs (WeChat) are reached only through the egress client. */
  egress: EgressClient;
  /** Present when OIDC sign-in is configured. */
  oidc: OidcVerifier | undefined;
  signInsBySubject: RateLimiter;
  signInsByIp: RateLimiter;
  permissions: PermissionService;
}

export async function authDeps(rt: Runtime<AuthConfig>, options: AuthOptions): Promise<AuthDeps> {
  const { config } = rt;
  const keys = await loadKeys(rt);
  const egress = rt.egress();
  const window = config.SIGNIN_LIMIT_WINDOW_SECONDS * 1000;
  return {
    config,
    keys,
    egress,
    oidc:
      config.OIDC_ISSUER && config.OIDC_AUDIENCE
        ? new OidcVerifier(egress, {
            issuer: config.OIDC_ISSUER,
            audience: config.OIDC_AUDIENCE,
            jwksUrl: config.OIDC_JWKS_URL ?? `${config.OIDC_ISSUER.replace(/\/$/, "")}/.well-known/jwks.json`,
          })
        : undefined,
    signInsBySubject: new RateLimiter(config.SIGNIN_LIMIT_PER_SUBJECT, window),
    signInsByIp: new RateLimiter(config.SIGNIN_LIMIT_PER_IP, window),
    permissions: new PermissionService(
      localRules(config.AUTH_ADMIN_USERS),
      options.permissionBackend ?? legacyBackend(config, egress),
      decisionCache(rt),
      config.LEGACY_FAIL_OPEN === "1",
      rt.log,
    ),
  };
}

function legacyBackend(config: AuthConfig, egress: EgressClient): PermissionBackend | undefined {
  if (!config.LEGACY_PERMISSION_URL) return undefined;
  return new LegacyHttpBackend(egress, {
    url: config.LEGACY_PERMISSION_URL,
    method: config.LEGACY_PERMISSION_METHOD,
    allowedField: config.LEGACY_ALLOWED_FIELD,
    timeoutMs: config.LEGACY_TIMEOUT_MS,
    ...(config.LEGACY_AUTH_HEADER ? { authHeader: config.LEGACY_AUTH_HEADER } : {}),
  });
}

/**
 * Permission decisions are cached in NATS KV shared by all replicas; only a run without NATS
 * (EVENT_SINK=none) caches per replica. Built on first use: NATS is connected only once the service has started.
 */
function decisionCache(rt: Runtime<AuthConfig>): () => DecisionCache {
  const shared = rt.config.EVENT_SINK !== "none";
  const ttl = rt.config.PERMISSION_CACHE_TTL_SECONDS * 1000;
  let memo: DecisionCache | undefined;
  return () => {
    if (!memo) {
      const nc = rt.nats();
      if (nc) memo = new KvDecisionCache(nc, rt.config.PERMISSION_CACHE_BUCKET, ttl);
      // NATS not connected yet (auth is not ready meanwhile): decide uncached rather than cache per replica.
      else if (shared) return { get: async () => undefined, set: async () => {} };
      else memo = new MemoryDecisionCache(ttl);
    }
    return memo;
  };
}

async function loadKeys(rt: Runtime<AuthConfig>): Promise<KeyRing> {
  const { config, log } = rt;
  const file = config.AUTH_SIGNING_KEYS_FILE;
  if (file) {
    const ring = await asConfig("AUTH_SIGNING_KEYS_FILE", async () => KeyRing.fromJson(readFileSync(file, "utf8")));
    const stop = ring.watchFile(file, config.AUTH_KEYS_RELOAD_SECONDS, (err) =>
      log.error({ err: err.message }, "could not reload the signing keys; keeping the current ones"),
    );
    rt.onClose(stop);
    return ring;
  }
  const inline = config.AUTH_SIGNING_KEYS;
  if (inline) return asConfig("AUTH_SIGNING_KEYS", () => KeyRing.fromJson(inline));
  if (config.SNAPMESH_DEV_AUTH === "1") {
    log.warn("no AUTH_SIGNING_KEYS: using an ephemeral key (development only; tokens die with the process)");
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
