import type { Server } from "node:http";
import type { CommandDef, DataOf, EventDef, SnapEvent } from "@snapmesh/events";
import type { NatsConnection } from "nats";
import { parseCloudEvents } from "./cloudevents-http.js";
import { type BaseConfig, ConfigError } from "./config.js";
import { JetStreamConsumers } from "./consumer.js";
import { type Database, openDatabase, type Queryable } from "./db.js";
import { publishDeadLetter } from "./dead-letters.js";
import { appError, unavailable } from "./errors.js";
import { EventProof } from "./event-proof.js";
import { hasBody, readBody } from "./http-body.js";
import { createApp, type HttpApp, listen } from "./http-server.js";
import { createLogger, type Logger } from "./logger.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { type Migration, migrate, readMigrations } from "./migrate.js";
import type { StreamNames } from "./nats.js";
import { NatsLink } from "./nats-link.js";
import { OutboxRelay } from "./outbox.js";
import {
  type Authenticate,
  type CommandOptions,
  type EffectsContext,
  type Handler,
  Registry,
  type ReplyData,
} from "./registry.js";
import { RetentionSweeper } from "./retention.js";
import type { Handler as HttpHandler } from "./router.js";
import { mountRoute, type Route, type RouteHost } from "./routes.js";
import { type EventSink, HttpSink, NoSink } from "./sinks.js";
import { sessionVerifier } from "./tokens.js";

export interface ServiceOptions {
  name: string;
  /** PostgreSQL schema the service owns. */
  schema: string;
  /** Folder of `NNN_name.sql` files, or the migrations themselves. */
  migrations?: string | Migration[];
  config: BaseConfig;
  logger?: Logger;
  /**
   * What the service cannot work without beyond its database: `nats` connects NATS even when facts go
   * over HTTP (EVENT_SINK=http), and the service is not ready until it is connected.
   */
  needs?: readonly "nats"[];
  /** The facts the service may emit (any other is refused at the emit); absent: any. */
  emits?: readonly EventDef[];
}

/**
 * One snapmesh service at run time: the handlers, both doors, the database, NATS, the outbox relay, and
 * shutdown. Internal: services declare themselves with `defineService`.
 */
export class Service {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly registry: Registry;
  readonly app: HttpApp;
  readonly names: StreamNames;
  private database: Database | undefined;
  private link: NatsLink | undefined;
  private relay: OutboxRelay | undefined;
  private retention: RetentionSweeper | undefined;
  private notReadyBecause: string | undefined;
  private health: { at: number; outboxAge: number } | undefined;
  private consumers: JetStreamConsumers | undefined;
  private server: Server | undefined;
  private draining = false;
  private readonly onStop: Array<() => Promise<void> | void> = [];
  private readonly schedules: Array<() => void> = [];

  constructor(readonly opts: ServiceOptions) {
    const { config } = opts;
    this.log = opts.logger ?? createLogger(opts.name, config.LOG_LEVEL);
    this.metrics = createMetrics(opts.name);
    this.names = { stream: config.EVENTS_STREAM, subjectPrefix: config.EVENTS_SUBJECT_PREFIX };
    this.registry = new Registry(opts.name, opts.schema, () => this.db, this.log, {
      reserve: (id) => this.relay?.reserve(id),
      committed: (facts) => this.relay?.committed(facts),
      released: (facts) => this.relay?.released(facts),
    });
    if (opts.emits) this.registry.emits = new Set(opts.emits.map((d) => d.type));
    this.app = createApp({
      registry: this.registry,
      log: this.log,
      metrics: this.metrics,
      maxBodyBytes: config.MAX_BODY_BYTES,
      trustProxyHops: config.TRUST_PROXY_HOPS,
      corsOrigins: config.CORS_ORIGINS.split(",")
        .map((o) => o.trim())
        .filter(Boolean),
      timeouts: { headersMs: config.HEADERS_TIMEOUT_MS, requestMs: config.REQUEST_TIMEOUT_MS },
      ready: () => this.isReady(),
      draining: () => this.draining,
      identity: { service: opts.name, version: config.SNAPMESH_VERSION, revision: config.SNAPMESH_REVISION },
    });
    this.registry.proof = eventProof(opts.name, config);
    this.registry.maxSignedAgeSeconds = config.INBOX_RETENTION_SECONDS;
    this.registry.onRefused = (type, reason) => this.metrics.eventsRefused.inc({ type, reason });
    // Session tokens are verified locally against auth's published keys (auth itself sets its own verifier).
    if (config.SNAPMESH_JWKS_URL) {
      this.registry.authenticate = sessionVerifier({
        jwks: new URL(config.SNAPMESH_JWKS_URL),
        issuer: config.SNAPMESH_JWT_ISSUER,
        allowDevTokens: config.SNAPMESH_DEV_AUTH === "1",
      });
    }
  }

  get db(): Database {
    if (!this.database) throw appError("not_ready", "the database is not open yet");
    return this.database;
  }

  /** The port the server listens on (after start). */
  get port(): number | undefined {
    const address = this.server?.address();
    return typeof address === "object" && address ? address.port : undefined;
  }

  /** The NATS connection, once made (it is made in the background at start). */
  get nats(): NatsConnection | undefined {
    return this.link?.connection;
  }

  set authenticate(fn: Authenticate) {
    this.registry.authenticate = fn;
  }

  command<C extends CommandDef>(def: C, handler: Handler<DataOf<C>, ReplyData<C>>, options?: CommandOptions): this {
    this.registry.command(def, handler, options);
    return this;
  }

  on<D extends EventDef>(def: D, handler: Handler<DataOf<D>, void>): this {
    this.registry.on(def, handler);
    return this;
  }

  /** Mounts a REST route (command, query or upload); `deps` gives the handlers' dependencies. */
  route<D>(route: Route<D>, deps: () => D): this {
    mountRoute(this.app, this.routeHost(deps), route);
    return this;
  }

  private routeHost<D>(deps: () => D): RouteHost<D> {
    return {
      name: this.opts.name,
      log: this.log,
      maxBodyBytes: this.opts.config.MAX_BODY_BYTES,
      deps,
      userFrom: (authorization) => this.registry.userFrom(authorization),
      read: (fn) => this.read(fn),
      effects: (user, traceparent, fn) => this.registry.withEffects({ user, traceparent }, fn),
      dispatch: async (event, x) => {
        const authorization = x.req.headers.authorization;
        const result = await this.registry.dispatch(event, {
          dedupe: x.header("idempotency-key") !== undefined,
          ...(authorization ? { authorization } : {}),
          clientIp: x.ip,
        });
        this.metrics.eventsHandled.inc({ type: event.type, door: "rest", outcome: result.duplicate ? "duplicate" : "ok" });
        return result.reply?.data;
      },
    };
  }

  /** Runs `fn` in a read-only transaction (queries). */
  read<T>(fn: (db: Queryable) => Promise<T>): Promise<T> {
    return this.db.transaction(fn, { readOnly: true });
  }

  /** One transaction with the handler effects and no caller (tasks). */
  effects<T>(fn: (ctx: EffectsContext) => Promise<T>): Promise<T> {
    return this.registry.withEffects({}, fn);
  }

  /** Runs `fn` every `seconds` once the service has started; a failure is logged and the next run tries again. */
  every(seconds: number, task: string, fn: () => Promise<unknown>): void {
    this.schedules.push(() => {
      const timer = setInterval(() => {
        fn().then(
          (result) => this.log.debug({ task, result }, "task ran"),
          (err) => this.log.warn({ task, err: (err as Error).message }, "task failed; will retry"),
        );
      }, seconds * 1000);
      timer.unref();
      this.onStop.push(() => clearInterval(timer));
    });
  }

  /** Hooks run at stop, after in-flight work and before the database closes. */
  beforeClose(fn: () => Promise<void> | void): void {
    this.onStop.push(fn);
  }

  private async isReady(): Promise<boolean> {
    const reason = await this.notReadyReason();
    if (reason !== this.notReadyBecause && !this.draining) {
      if (reason) this.log.warn({ reason }, "not ready");
      else this.log.info("ready");
    }
    this.notReadyBecause = reason;
    return reason === undefined;
  }

  /**
   * A Knative revision created before its SinkBinding has no K_SINK: it holds its outbox and takes no
   * traffic; the binding injects K_SINK into the next revision.
   */
  private get awaitingSink(): boolean {
    return this.opts.config.EVENT_SINK === "http" && !this.opts.config.K_SINK;
  }

  /** Why the service should get no traffic now, or undefined when it is ready. */
  private async notReadyReason(): Promise<string | undefined> {
    const { config } = this.opts;
    if (this.draining) return "draining";
    if (!this.database || !this.relay) return "starting";
    const age = await this.databaseHealth();
    if (this.awaitingSink) return "EVENT_SINK=http but K_SINK is not set (no SinkBinding yet?)";
    if (this.link && !this.link.ready) {
      const needed = this.opts.needs?.includes("nats") ? " (declared need)" : "";
      return `NATS at ${config.NATS_URL} is not connected${needed}`;
    }
    if (age > config.OUTBOX_READY_MAX_AGE_SECONDS) {
      return `the oldest unpublished fact has waited ${Math.round(age)} s (sink ${this.relay.sinkKind} unreachable?)`;
    }
    return undefined;
  }

  /**
   * PostgreSQL answers (or this throws), and how long the oldest unpublished fact has waited. A check younger than a
   * second is reused: Knative probes every few milliseconds while a revision starts, and a check running beside the
   * relay's would open a pool connection (a SCRAM exchange) of its own.
   */
  private async databaseHealth(): Promise<number> {
    if (this.health && performance.now() - this.health.at < 1000) return this.health.outboxAge;
    const relay = this.relay!;
    const outboxAge =
      relay.started && relay.sinkKind !== "none"
        ? await relay.oldestUnsentAgeSeconds()
        : await this.database!.query("SELECT 1").then(() => 0);
    this.health = { at: performance.now(), outboxAge };
    return outboxAge;
  }

  /**
   * Opens the database (migrating it), starts the relay, listens, and connects NATS in the background
   * when it is used: the service is not ready until NATS is connected and its consumers are running.
   */
  async start(options: { port?: number; host?: string } = {}): Promise<Server> {
    const { config } = this.opts;
    const proof = this.registry.proof;
    // Tasks (migrate, purge) need no keys; a serving service cannot prove its facts without them.
    if (!proof) {
      throw new ConfigError([
        "SNAPMESH_EVENT_SIGNING_KEYS: required (or SNAPMESH_EVENT_SIGNING_KEYS_FILE); see 'snapmesh keys events'",
      ]);
    }
    this.onStop.push(
      proof.watch(config.SNAPMESH_EVENT_KEYS_RELOAD_SECONDS, (err) =>
        this.log.error({ err: err.message }, "could not reload the event keys; keeping the current ones"),
      ),
    );
    await this.openDatabaseOnly();
    if (config.MIGRATE_ON_START === "1") await this.migrate();
    const types = this.registry.subscriptions().map((d) => d.type);
    const consume = config.EVENT_CONSUMERS === "on" && types.length > 0;
    const deadLetters = config.DEAD_LETTERS === "nats";
    if (config.EVENT_SINK === "nats" || consume || deadLetters || this.opts.needs?.includes("nats")) {
      this.link = new NatsLink(
        {
          url: config.NATS_URL,
          name: this.opts.name,
          names: this.names,
          onConnected: async (nc) => {
            if (!consume) return;
            this.consumers ??= new JetStreamConsumers(
              nc,
              {
                service: this.opts.name,
                names: this.names,
                maxAttempts: config.CONSUMER_MAX_ATTEMPTS,
                backoffMs: config.CONSUMER_BACKOFF_MS,
                backoffMaxMs: config.CONSUMER_BACKOFF_MAX_MS,
              },
              (event: SnapEvent) => this.registry.dispatch(event),
              this.log,
              this.metrics,
            );
            await this.consumers.start(types);
          },
        },
        this.log,
      );
    }
    this.relay = new OutboxRelay({
      db: this.db,
      schema: this.opts.schema,
      sink: this.sink(),
      log: this.log,
      metrics: this.metrics,
      pollMs: config.OUTBOX_POLL_MS,
    });
    if (config.OUTBOX_PAUSED === "0" && !this.awaitingSink) this.relay.start();
    this.retention = new RetentionSweeper(this.db, this.opts.schema, this.log, {
      outboxSeconds: config.OUTBOX_RETENTION_SECONDS,
      inboxSeconds: config.INBOX_RETENTION_SECONDS,
      intervalMs: 10 * 60_000,
    });
    this.retention.start();
    // Scheduled tasks run only in a serving process (not in `main <task>`), once the database is open.
    for (const schedule of this.schedules) schedule();
    // The first PostgreSQL connection (its SCRAM exchange) is made while NATS connects, not after, by the check
    // the first readiness probe then reuses.
    const warmed = this.databaseHealth().catch(() => undefined);
    await this.link?.start();
    await warmed;
    this.relay.kick();
    if (deadLetters) this.app.on("post", "/dead-letters", deadLetterSink(this, config.MAX_BODY_BYTES));
    this.server = await listen(this.app, options.port ?? config.PORT, options.host);
    this.log.info({ port: this.port }, "listening");
    const processMetrics = setTimeout(() => this.metrics.collectProcessMetrics(), PROCESS_METRICS_AFTER_MS).unref();
    this.onStop.push(() => clearTimeout(processMetrics));
    return this.server;
  }

  async openDatabaseOnly(): Promise<void> {
    this.database ??= await openDatabase(this.opts.config.DATABASE_URL);
  }

  async migrate(): Promise<string[]> {
    const m = this.opts.migrations;
    const list = typeof m === "string" ? await readMigrations(m) : (m ?? []);
    const applied = await migrate(this.db, this.opts.schema, list);
    if (applied.length) this.log.info({ applied }, "migrations applied");
    return applied;
  }

  private sink(): EventSink {
    const { config } = this.opts;
    if (config.EVENT_SINK === "http") {
      // Without K_SINK the relay is never started (awaitingSink), so facts wait in the outbox.
      return config.K_SINK ? new HttpSink(config.K_SINK, config.K_CE_OVERRIDES) : new NoSink();
    }
    if (config.EVENT_SINK === "nats" && this.link) return this.link.sink();
    return new NoSink();
  }

  /** Drains the outbox now (tests and the CLI use it; the relay does it by itself). */
  async flushOutbox(): Promise<number> {
    return this.relay ? this.relay.drainOnce() : 0;
  }

  /**
   * Graceful stop: refuse new work, let in-flight requests and events finish, flush the outbox,
   * close NATS and the database. Its steps share SHUTDOWN_TIMEOUT_MS (each has at least STOP_STEP_MIN_MS): a step
   * still waiting then (a request that never ends, a stuck connection) is logged by name and left behind, and the
   * rest still run.
   */
  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const deadline = Date.now() + this.opts.config.SHUTDOWN_TIMEOUT_MS;
    const step = (name: string, work: unknown) => this.stopStep(name, work, deadline);
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive sockets turn idle as their in-flight requests finish; close each as it does.
      const reaper = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      await step("in-flight requests", closed);
      clearInterval(reaper);
    }
    await step("the NATS connect attempt", this.link?.stop());
    await step("events being handled", this.consumers?.stop());
    for (const fn of this.onStop) await step("stop hooks", fn());
    await step("the outbox relay", this.relay?.flush());
    await step("the retention sweep", this.retention?.stop());
    await step(
      "the NATS drain",
      this.link?.connection?.drain().catch(() => {}),
    );
    await step("the database pool", this.database?.close());
    this.log.info("stopped");
  }

  private async stopStep(name: string, work: unknown, deadline: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(resolve, Math.max(STOP_STEP_MIN_MS, deadline - Date.now()), "late").unref();
    });
    try {
      const outcome = await Promise.race([Promise.resolve(work).then(() => "done" as const), late]);
      if (outcome === "late") {
        this.log.error(
          { step: name, timeoutMs: this.opts.config.SHUTDOWN_TIMEOUT_MS },
          "stop: gave up waiting for this step after SHUTDOWN_TIMEOUT_MS; going on",
        );
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A step of stop() left after SHUTDOWN_TIMEOUT_MS still has this long (closing NATS and the database takes ms). */
const STOP_STEP_MIN_MS = 1000;

/** Node's process metrics start this long after the service listens (or at the first scrape), off the cold start. */
const PROCESS_METRICS_AFTER_MS = 1000;

/** The service's event keys from config; without any, start() refuses (tasks such as migrate still run). */
function eventProof(name: string, config: BaseConfig): EventProof | undefined {
  const sources = {
    signingKeys: config.SNAPMESH_EVENT_SIGNING_KEYS,
    signingKeysFile: config.SNAPMESH_EVENT_SIGNING_KEYS_FILE,
    trust: config.SNAPMESH_EVENT_TRUST,
    trustFile: config.SNAPMESH_EVENT_TRUST_FILE,
  };
  if (!EventProof.configured(sources)) return undefined;
  try {
    return new EventProof(name, sources);
  } catch (err) {
    throw new ConfigError([`SNAPMESH_EVENT_SIGNING_KEYS/SNAPMESH_EVENT_TRUST: ${(err as Error).message}`]);
  }
}

/**
 * The Knative dead-letter sink: a Trigger's delivery that failed for good arrives here with Knative's
 * `knativeerror*` extensions. The event must carry its producer's proof (nobody else fills the stream).
 */
function deadLetterSink(service: Service, maxBodyBytes: number): HttpHandler {
  return async ({ req, res }) => {
    const body = hasBody(req) ? await readBody(req, maxBodyBytes) : Buffer.alloc(0);
    const { events } = parseCloudEvents(req.headers, body);
    for (const event of events) service.registry.requireProof(event);
    const nc = service.nats;
    if (!nc) throw unavailable("NATS is not connected yet; retry", "dead_letters_unavailable");
    for (const event of events) {
      const { knativeerrorcode: code, knativeerrordata: data, knativeerrordest: dest, ...original } = event;
      const detail = typeof data === "string" ? Buffer.from(data, "base64").toString("utf8").slice(0, 1000) : "";
      await publishDeadLetter(
        nc,
        service.names,
        {
          reason: `delivery to ${String(dest ?? "the subscriber")} failed${code ? ` with ${String(code)}` : ""}${detail ? `: ${detail}` : ""}`,
          consumer: service.opts.name,
          attempts: 0,
          subject: String(dest ?? ""),
          event: original as SnapEvent,
        },
        `${service.opts.name}:${event.source}:${event.id}`,
      );
      service.metrics.deadLettered.inc({ type: event.type });
    }
    res.writeHead(202).end();
  };
}

/** SIGTERM/SIGINT: stop gracefully, exit 0; exit 1 if that takes longer than the bound. */
export function installShutdown(service: Service, timeoutMs: number): void {
  const onSignal = (signal: string) => {
    service.log.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      service.log.error({ timeoutMs }, "shutdown took too long; exiting");
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    service.stop().then(
      () => process.exit(0),
      (err) => {
        service.log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
}

/**
 * A service's process entry: `main migrate` applies the migrations and exits (a Kubernetes Job or
 * init container), `main <task>` runs one of the service's tasks (a CronJob) and exits; with no
 * argument the service starts and stops gracefully on SIGTERM. Configuration errors exit 78 with one
 * line per bad variable; an unknown task exits 64.
 */
export async function runProcess(
  build: () => Promise<Service>,
  argv: string[],
  tasks: Record<string, () => Promise<unknown>>,
): Promise<void> {
  const configError = (err: unknown) => {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  };
  const task = argv[0] === "migrate" ? undefined : argv[0] ? tasks[argv[0]] : undefined;
  if (argv[0] && argv[0] !== "migrate" && !task) {
    process.stderr.write(`unknown task '${argv[0]}' (one of: ${["migrate", ...Object.keys(tasks)].join(", ")})\n`);
    process.exit(64);
  }
  // A service whose construction reads configuration (auth's signing keys) fails here, the same way as at start.
  const service = await build().catch(configError);
  if (argv[0]) {
    try {
      await service.openDatabaseOnly();
      const result = task ? await task() : await service.migrate();
      service.log.info({ task: argv[0], result }, "task done");
      await service.db.close();
      process.exit(0);
    } catch (err) {
      service.log.error({ err, task: argv[0] }, "task failed");
      process.exit(1);
    }
  }
  installShutdown(service, service.opts.config.SHUTDOWN_TIMEOUT_MS);
  try {
    await service.start();
  } catch (err) {
    configError(err);
    service.log.fatal({ err: (err as Error).message }, "could not start");
    process.exit(1);
  }
}
