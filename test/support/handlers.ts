// Unit tests of one handler: the handler function called with a context on a real transaction, no server,
// no NATS. Facts it emits are recorded instead of written to the outbox.
import type { DataOf, EventDef, SnapEvent } from "@snapmesh/events";
import { makeEvent } from "@snapmesh/events";
import {
  type Database,
  type HandlerContext,
  type Migration,
  migrate,
  openDatabase,
  type Queryable,
  readMigrations,
  type User,
  unauthorized,
} from "../../services/runtime/src/internal.ts";
import { testDatabaseUrl } from "./index.ts";
import { freshDatabase } from "./postgres.ts";

export interface Emitted {
  type: string;
  data: unknown;
  subject: string | undefined;
}

export interface TestContext extends HandlerContext {
  /** The facts the handler emitted, in order. */
  readonly emitted: Emitted[];
  /** Runs the compensations the handler registered with onRollback (what a rollback would do). */
  rollback(): Promise<void>;
}

/** A context for calling a handler directly: `tx` is the transaction, `user` the caller. */
export function handlerContext(
  tx: Queryable,
  opts: { user?: User; event?: Partial<SnapEvent>; producer?: string; clientIp?: string } = {},
): TestContext {
  const emitted: Emitted[] = [];
  const undo: Array<() => Promise<void> | void> = [];
  const silent = { info() {}, warn() {}, error() {}, debug() {}, fatal() {}, trace() {}, child: () => silent };
  return {
    event: { specversion: "1.0", id: "test", source: "/test", type: "test", time: new Date().toISOString(), ...opts.event },
    tx,
    log: silent as unknown as HandlerContext["log"],
    user: opts.user,
    producer: opts.producer,
    clientIp: opts.clientIp,
    emitted,
    requireUser: () => {
      if (!opts.user) throw unauthorized();
      return opts.user;
    },
    emit: async <D extends EventDef>(def: D, data: DataOf<D>, extras?: { subject?: string }) => {
      const parsed = def.data.parse(data) as DataOf<D>;
      emitted.push({ type: def.type, data: parsed, subject: extras?.subject });
      return makeEvent(def, parsed, extras?.subject ? { subject: extras.subject } : {});
    },
    afterCommit: () => {},
    onRollback: (fn) => {
      undo.push(fn);
    },
    rollback: async () => {
      for (const fn of undo.reverse()) await fn();
    },
  };
}

/** A fresh database on the test PostgreSQL with a service's schema migrated: what its handlers' tests run on. */
export async function serviceDatabase(service: {
  schema: string;
  migrations: string | readonly Migration[] | undefined;
}): Promise<Database> {
  const db = await openDatabase(await freshDatabase(testDatabaseUrl()));
  const list =
    typeof service.migrations === "string" ? await readMigrations(service.migrations) : [...(service.migrations ?? [])];
  await migrate(db, service.schema, list);
  return db;
}

/**
 * Runs `fn` in a transaction that is always rolled back: each test sees the migrated schema and leaves
 * nothing behind. Returns what `fn` returned (or rethrows what it threw).
 */
export async function inRolledBackTx<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  const ROLLBACK = Symbol("rollback");
  let out: { value: T } | undefined;
  await db
    .transaction(async (tx) => {
      out = { value: await fn(tx) };
      throw ROLLBACK;
    })
    .catch((err: unknown) => {
      if (err !== ROLLBACK) throw err;
    });
  return out!.value;
}
