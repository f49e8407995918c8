import { z } from "zod";

/** Environment variables every service understands. Services extend this with their own. */
export const baseConfigSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  DATABASE_URL: z.string().regex(/^(postgres(ql)?|pglite):\/\//, "must start with postgres://, postgresql:// or pglite://"),
  EVENT_SINK: z.enum(["nats", "http", "none"]).default("nats"),
  K_SINK: z.url().optional(),
  K_CE_OVERRIDES: z.string().optional(),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  EVENTS_STREAM: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("SNAPMESH_EVENTS"),
  EVENTS_SUBJECT_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("events"),
  EVENT_CONSUMERS: z.enum(["on", "off"]).default("on"),
  CONSUMER_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
  CONSUMER_BACKOFF_MS: z.coerce.number().int().min(1).default(1000),
  CONSUMER_BACKOFF_MAX_MS: z.coerce.number().int().min(1).default(60000),
  OUTBOX_POLL_MS: z.coerce.number().int().min(10).default(1000),
  OUTBOX_PAUSED: z.enum(["0", "1"]).default("0"),
  /** /readyz fails while the oldest unsent fact has waited longer than this (the sink is unreachable). */
  OUTBOX_READY_MAX_AGE_SECONDS: z.coerce.number().int().min(1).default(60),
  /** Sent facts are deleted from the outbox after this (default 7 days). */
  OUTBOX_RETENTION_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(7 * 24 * 3600),
  /**
   * The inbox (which events were applied, for exactly-once) keeps rows this long (default 7 days); a
   * replay of an event older than this would be applied again, so older facts are refused.
   */
  INBOX_RETENTION_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(7 * 24 * 3600),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Proxy hops in front of the service whose X-Forwarded-For is trusted for the client address (ingress, Knative queue-proxy). */
  TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
  /**
   * Browser origins allowed to call the REST APIs (comma-separated, e.g. `https://album.example.com`; `*` for any):
   * their requests get CORS headers and their preflights an answer. Empty: no CORS headers.
   */
  CORS_ORIGINS: z.string().default(""),
  /** How long a client may take to send its request headers; slower clients get 408. */
  HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(20_000),
  /** How long a client may take to send its whole request, body included (long enough for the biggest upload on a slow link). */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(300_000),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(100).default(10000),
  MIGRATE_ON_START: z.enum(["0", "1"]).default("1"),
  SNAPMESH_JWKS_URL: z.url().optional(),
  SNAPMESH_JWT_ISSUER: z.string().default("snapmesh-auth"),
  /** 1: the `dev` sign-in provider is on; otherwise session tokens it minted (claim `prv: "dev"`) are refused. */
  SNAPMESH_DEV_AUTH: z.enum(["0", "1"]).default("0"),
  EGRESS_PROXY: z.string().optional(),
  HTTPS_PROXY: z.string().optional(),
  HTTP_PROXY: z.string().optional(),
  NO_PROXY: z.string().optional(),
  EGRESS_ALLOW_HOSTS: z.string().default(""),
  EGRESS_TIMEOUT_MS: z.coerce.number().int().min(1).default(5000),
  EGRESS_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  /** 1: refuse every outbound call when no proxy is configured, so nothing can leave around the gateway. */
  EGRESS_REQUIRE_PROXY: z.enum(["0", "1"]).default("0"),
  /** This service's Ed25519 keys for signing the facts it emits, `{"keys":[private JWK…]}`; the first signs. */
  SNAPMESH_EVENT_SIGNING_KEYS: z.string().optional(),
  /** The same in a file (a mounted Secret), re-read every SNAPMESH_EVENT_KEYS_RELOAD_SECONDS. */
  SNAPMESH_EVENT_SIGNING_KEYS_FILE: z.string().optional(),
  /** Public keys per producer, `{"storage":{"keys":[…]},…}`: whose signed facts this service accepts. */
  SNAPMESH_EVENT_TRUST: z.string().optional(),
  SNAPMESH_EVENT_TRUST_FILE: z.string().optional(),
  /**
   * `nats`: `POST /dead-letters` takes events a Knative Trigger gave up on (its dead-letter sink) and keeps them
   * in the JetStream dead-letter stream, where `snapmesh dlq` reads them. Only signed events are kept.
   */
  DEAD_LETTERS: z.enum(["off", "nats"]).default("off"),
  SNAPMESH_EVENT_KEYS_RELOAD_SECONDS: z.coerce.number().int().min(1).default(30),
  // Set by the image (its build's version and git revision) and by `npm start`; shown by GET /healthz.
  SNAPMESH_VERSION: z.string().max(64).default("unknown"),
  SNAPMESH_REVISION: z.string().max(64).default("unknown"),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    options?: ErrorOptions,
  ) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`, options);
    this.name = "ConfigError";
  }
}

/** Parses the environment; throws a ConfigError naming every bad or missing variable. */
export function parseConfig<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // Parsed once: compiling the object's fast path (zod's JIT) would cost more than it saves.
  const result = schema.safeParse(emptyToUndefined(env), { jitless: true });
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const name = issue.path.join(".") || "(environment)";
    const missing = issue.code === "invalid_type" && env[name] === undefined;
    return missing ? `${name}: required but not set` : `${name}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/** parseConfig for a process entry point: on failure prints the problems and exits at once with code 78 (EX_CONFIG). */
export function loadConfig<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  try {
    return parseConfig(schema, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
}

function emptyToUndefined(env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === "" ? undefined : v]));
}

export function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}
