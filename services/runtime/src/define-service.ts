import { realpathSync } from "node:fs";
import type { Server } from "node:http";
import { fileURLToPath } from "node:url";
import { type CommandDef, type DataOf, type EventDef, isServiceName, manifest } from "@snapmesh/events";
import type { NatsConnection } from "nats";
import type { z } from "zod";
import { type BaseConfig, baseConfigSchema, ConfigError, parseConfig } from "./config.js";
import type { Database } from "./db.js";
import { type EgressClient, egressFromConfig } from "./egress.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import type { Migration } from "./migrate.js";
import type { StreamNames } from "./nats.js";
import type { Authenticate, CommandOptions, EffectsContext, HandlerContext, ReplyData } from "./registry.js";
import type { Route } from "./routes.js";
import { runProcess, Service } from "./service.js";

/** What a service cannot serve without: checked at start and in readiness. */
export type Need = "db" | "nats";

/** A command's handler: a plain function of the command's data, the context and the service's dependencies. */
export type CommandHandler<C extends CommandDef, D> = (data: DataOf<C>, ctx: HandlerContext, deps: D) => Promise<ReplyData<C>>;
/** A fact's handler: applies another service's fact; it returns nothing. */
export type FactHandler<E extends EventDef, D> = (data: DataOf<E>, ctx: HandlerContext, deps: D) => Promise<void>;

export interface HandlerBinding<D> {
  readonly def: EventDef;
  readonly kind: "command" | "fact";
  readonly run: (data: never, ctx: HandlerContext, deps: D) => Promise<unknown>;
  readonly options?: CommandOptions;
}

/** Binds a command of the catalog to its handler. */
export function onCommand<C extends CommandDef, D>(
  def: C,
  run: CommandHandler<C, D>,
  options?: CommandOptions,
): HandlerBinding<D> {
  return { def, kind: "command", run: run as HandlerBinding<D>["run"], ...(options ? { options } : {}) };
}

/** Subscribes to a fact of another service (the manifest's `subscribes` must list it). */
export function onFact<E extends EventDef, D>(def: E, run: FactHandler<E, D>): HandlerBinding<D> {
  return { def, kind: "fact", run: run as HandlerBinding<D>["run"] };
}

/** What a service's dependency builder and tasks get from the runtime. */
export interface Runtime<C> {
  readonly name: string;
  readonly config: C;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The NATS connection once made (the service connects in the background at start). */
  nats(): NatsConnection | undefined;
  /** The port the service listens on (after start). */
  port(): number | undefined;
  /** The one outbound HTTP client (egress gateway, allow-list, retries), built on first use and closed at stop. */
  egress(): EgressClient;
  /** Runs at stop, after in-flight work and before the database closes. */
  onClose(fn: () => Promise<void> | void): void;
}

/** A job the process runs on its own (`main <task>`, the chart's CronJob) and, optionally, on a timer. */
export interface Task<C, D> {
  /** Runs in one transaction with the handler effects. */
  run(ctx: EffectsContext, deps: D): Promise<unknown>;
  /** Seconds between runs inside a serving replica; 0 or absent: only as `main <task>`. */
  everySeconds?: (config: C) => number;
}

export interface ServiceSpec<S extends z.ZodObject, D, O> {
  /** The service's name in the manifest (its schema, port and subscriptions come from there). */
  name: string;
  /** The PostgreSQL schema, for a service outside the manifest (test fixtures). */
  schema?: string;
  /** The service's configuration schema (extending `baseConfigSchema`); errors exit 78, one line per variable. */
  config: S;
  /** A folder of `NNN_name.sql` files (a file URL, e.g. `new URL("../migrations", import.meta.url)`), or the migrations. */
  migrations?: URL | string | Migration[];
  needs?: readonly Need[] | ((config: z.infer<S>) => readonly Need[]);
  /** The facts it emits: emitting any other type is a bug caught at the emit. */
  events?: readonly EventDef[];
  /** Builds the handlers' dependencies once per process; `options` are what `create` was given (test doubles). */
  deps?: (rt: Runtime<z.infer<S>>, options: O) => D | Promise<D>;
  handlers: readonly HandlerBinding<D>[];
  routes?: readonly Route<D>[];
  tasks?: Readonly<Record<string, Task<z.infer<S>, D>>>;
  /** How callers' session tokens are verified; default: auth's JWKS at SNAPMESH_JWKS_URL. */
  authenticate?: (deps: D, config: z.infer<S>) => Authenticate;
}

/** A created service: what tests, benchmarks and the process entry drive. */
export interface ServiceInstance<C, D> {
  readonly name: string;
  readonly config: C;
  readonly deps: D;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly names: StreamNames;
  readonly port: number | undefined;
  readonly nats: NatsConnection | undefined;
  /** The service's database (tests read it to check effects; handlers get their transaction instead). */
  readonly db: Database;
  start(options?: { port?: number; host?: string }): Promise<Server>;
  stop(): Promise<void>;
  migrate(): Promise<string[]>;
  /** Runs one of the tasks now (after the database is open). */
  runTask(name: string): Promise<unknown>;
  /** Relays the outbox now (tests; the relay does it by itself). */
  flushOutbox(): Promise<number>;
  /** Replaces how session tokens are verified (tests sign in with their own issuer). */
  set authenticate(fn: Authenticate);
}

export interface ServiceDefinition<C, D, O> {
  readonly name: string;
  readonly schema: string;
  /** The migrations folder or list (the unit tests' databases are migrated from it). */
  readonly migrations: string | readonly Migration[] | undefined;
  readonly handlers: readonly HandlerBinding<D>[];
  /** The fact types the handlers consume. */
  readonly subscriptions: readonly string[];
  /** Builds the service from an environment (process.env by default) without opening anything. */
  create(env?: NodeJS.ProcessEnv, options?: O): Promise<ServiceInstance<C, D>>;
  /** The same from a configuration already parsed. */
  build(config: C, options?: O): Promise<ServiceInstance<C, D>>;
  /**
   * The process entry, called as `void x.main(import.meta.url)` from `src/main.ts`: `main migrate` migrates
   * with the base configuration only, `main <task>` runs a task and exits; without an argument the service
   * serves until SIGTERM. Configuration errors exit 78. Nothing runs when `entry` is not the script the
   * process started with (the image's build loads the bundle, runs a warm-up and writes V8's code cache).
   */
  main(entry: string, argv?: string[]): Promise<void>;
}

/** Declares a service: its configuration, handlers, routes and tasks. Nothing is opened until `start`. */
export function defineService<S extends z.ZodObject, D = undefined, O = Record<string, never>>(
  spec: ServiceSpec<S, D, O>,
): ServiceDefinition<z.infer<S>, D, O> {
  type C = z.infer<S>;
  const schema = spec.schema ?? (isServiceName(spec.name) ? manifest[spec.name].schema : undefined);
  if (!schema) throw new Error(`service '${spec.name}' is not in the manifest (services/events/src/manifest.ts)`);
  const subscriptions = spec.handlers.filter((h) => h.kind === "fact").map((h) => h.def.type);
  checkAgainstManifest(spec.name, spec.handlers, subscriptions, spec.tasks);
  const migrations = spec.migrations instanceof URL ? fileURLToPath(spec.migrations) : spec.migrations;

  const build = async (parsed: C, options = {} as O): Promise<ServiceInstance<C, D>> => {
    const config = parsed as C & BaseConfig;
    const needs = typeof spec.needs === "function" ? spec.needs(config) : (spec.needs ?? []);
    const service = new Service({
      name: spec.name,
      schema,
      config,
      ...(migrations ? { migrations } : {}),
      needs: needs.filter((n): n is "nats" => n === "nats"),
      ...(spec.events ? { emits: spec.events } : {}),
    });
    let egress: EgressClient | undefined;
    const rt: Runtime<C> = {
      name: spec.name,
      config,
      log: service.log,
      metrics: service.metrics,
      nats: () => service.nats,
      port: () => service.port,
      egress: () => {
        if (!egress) {
          const client = egressFromConfig(config, service.metrics);
          service.beforeClose(() => client.close());
          egress = client;
        }
        return egress;
      },
      onClose: (fn) => service.beforeClose(fn),
    };
    const deps = spec.deps ? await spec.deps(rt, options) : (undefined as D);
    if (spec.authenticate) service.authenticate = spec.authenticate(deps, config);
    for (const h of spec.handlers) {
      const run = (data: unknown, ctx: HandlerContext) => h.run(data as never, ctx, deps);
      if (h.kind === "fact") service.on(h.def, run as never);
      else service.command(h.def as CommandDef, run as never, h.options);
    }
    for (const route of spec.routes ?? []) service.route(route, () => deps);
    const tasks = Object.fromEntries(
      Object.entries(spec.tasks ?? {}).map(([task, t]) => [task, () => service.effects((ctx) => t.run(ctx, deps))]),
    );
    for (const [task, t] of Object.entries(spec.tasks ?? {})) {
      const seconds = t.everySeconds?.(config) ?? 0;
      if (seconds > 0) service.every(seconds, task, tasks[task]!);
    }
    return instance(service, config, deps, tasks);
  };

  return {
    name: spec.name,
    schema,
    migrations,
    handlers: spec.handlers,
    subscriptions,
    create: (env = process.env, options) => build(parseConfig(spec.config, env), options),
    build,
    async main(entry, argv = process.argv.slice(2)) {
      if (!isProcessEntry(entry)) return;
      if (argv[0] === "migrate") {
        // Only the base configuration: the migration Job needs none of the service's secrets.
        const migrator = async () =>
          new Service({
            name: spec.name,
            schema,
            config: parseConfig(baseConfigSchema, process.env),
            ...(migrations ? { migrations } : {}),
          });
        await runProcess(migrator, argv, {});
        return;
      }
      // Parsed inside the promise: a configuration error is runProcess's to report (exit 78, one line each).
      const created = Promise.resolve().then(() => build(parseConfig(spec.config, process.env)));
      await runProcess(
        () => created.then((s) => s as unknown as Service),
        argv,
        Object.fromEntries(Object.keys(spec.tasks ?? {}).map((t) => [t, () => created.then((s) => s.runTask(t))])),
      );
    },
  };
}

function instance<C, D>(
  service: Service,
  config: C,
  deps: D,
  tasks: Record<string, () => Promise<unknown>>,
): ServiceInstance<C, D> {
  return Object.assign(service, {
    config,
    deps,
    async runTask(name: string) {
      const task = tasks[name];
      if (!task) throw new ConfigError([`unknown task '${name}' (one of: migrate, ${Object.keys(tasks).join(", ")})`]);
      return task();
    },
  }) as unknown as ServiceInstance<C, D>;
}

/** A service in the manifest must consume exactly the facts the manifest lists and run the tasks it names. */
function checkAgainstManifest<D>(
  name: string,
  handlers: readonly HandlerBinding<D>[],
  subscriptions: string[],
  tasks: Readonly<Record<string, unknown>> | undefined,
): void {
  const types = handlers.map((h) => h.def.type);
  const twice = types.find((t, i) => types.indexOf(t) !== i);
  if (twice) throw new Error(`${name}: a handler for ${twice} is bound twice`);
  if (!isServiceName(name)) return;
  const entry = manifest[name];
  const declared = [...entry.subscribes].sort().join(", ");
  const actual = [...subscriptions].sort().join(", ");
  if (declared !== actual) {
    throw new Error(`${name}: the manifest subscribes to [${declared}] but the fact handlers consume [${actual}]`);
  }
  const foreign = handlers.find((h) => h.kind === "command" && h.def.service !== name);
  if (foreign) throw new Error(`${name}: command ${foreign.def.type} belongs to ${foreign.def.service}`);
  const taskNames = Object.keys(tasks ?? {})
    .sort()
    .join(", ");
  if (taskNames !== [...entry.tasks].sort().join(", ")) {
    throw new Error(`${name}: the manifest lists tasks [${entry.tasks.join(", ")}] but the service defines [${taskNames}]`);
  }
}

/** Whether `url` (a module's import.meta.url) is the script this process was started with. */
export function isProcessEntry(url: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(url));
  } catch {
    return false;
  }
}
