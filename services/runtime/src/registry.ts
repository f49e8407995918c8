import { createHash } from "node:crypto";
import type { CommandDef, DataOf, EventDef, SnapEvent } from "@snapmesh/events";
import { makeEvent } from "@snapmesh/events";
import type { z } from "zod";
import type { Database, Queryable } from "./db.js";
import { AppError, appError, badRequest, conflict, unauthorized, withContext } from "./errors.js";
import { type EventProof, PROOF_ATTRIBUTE, ProofError } from "./event-proof.js";
import type { Logger } from "./logger.js";

export interface User {
  id: string;
  /** The session token the caller presented, for calls made on the caller's behalf. */
  token?: string;
  [claim: string]: unknown;
}

export interface HandlerContext {
  /** The event being handled (REST calls are turned into one too). */
  readonly event: SnapEvent;
  /** The transaction the effect, the inbox record and the emitted facts commit in. */
  readonly tx: Queryable;
  readonly log: Logger;
  /** The caller, when the request carried a valid session token. */
  readonly user: User | undefined;
  /** The mesh service whose signature the event carries (verified), or undefined. */
  readonly producer?: string | undefined;
  /** The caller, or a 401. */
  requireUser(): User;
  /** Writes a fact to the outbox in this transaction; it is published after commit. */
  emit<D extends EventDef>(def: D, data: DataOf<D>, extras?: { subject?: string }): Promise<SnapEvent>;
  /** Runs once the transaction has committed (e.g. removing a blob whose metadata is gone); errors are logged. */
  afterCommit(fn: () => Promise<void> | void): void;
  /** Runs if the transaction rolls back: undoes an effect made outside it (an object stored in another service). */
  onRollback(fn: () => Promise<void> | void): void;
  /** The client's address as the HTTP door saw it (X-Forwarded-For only as far as TRUST_PROXY_HOPS trusts it). */
  readonly clientIp?: string | undefined;
}

/** What a transaction opened outside a handler (a streamed upload, say) gets: the same effects, no inbox. */
export type EffectsContext = Omit<HandlerContext, "event" | "producer">;

export type Handler<In, Out> = (data: In, ctx: HandlerContext) => Promise<Out>;

interface Registration {
  def: EventDef;
  replyDef?: EventDef;
  /** false: every delivery runs the handler and no reply is stored (replies that carry secrets). */
  dedupe: boolean;
  handler: Handler<unknown, unknown>;
  /** Subscriptions (facts from other services) may be consumed from JetStream. */
  subscription: boolean;
  /** Runs only for events a trusted mesh service signed: every fact, and commands marked internal. */
  internal: boolean;
  /** Changes nothing: runs outside any transaction, with no inbox row, and may emit nothing. */
  readOnly: boolean;
}

export interface DispatchResult {
  reply?: SnapEvent;
  duplicate: boolean;
}

/** The relay's side of the outbox, as transactions see it. */
export interface OutboxListener {
  /** A fact is about to be written: no poller may claim its row while this process may publish it. */
  reserve(eventId: string): void;
  /** The transaction committed: publish these facts now. */
  committed(facts: readonly SnapEvent[]): void;
  /** The transaction rolled back: the facts were never stored. */
  released(facts: readonly SnapEvent[]): void;
}

export type Authenticate = (token: string) => Promise<User>;

export interface CommandOptions {
  /**
   * false for commands whose reply is a secret (a session token): the reply is never stored, and a
   * repeated event runs the handler again, so the handler itself must be safe to repeat.
   */
  dedupe?: boolean;
  /** true: only a mesh service may send it (the event must carry a trusted producer's signature). */
  internal?: boolean;
  /**
   * true for a command that changes nothing (signing URLs): it runs outside any transaction (each statement
   * on its own, no BEGIN/COMMIT round trips), records no inbox row (a repeat simply runs again), and may not emit.
   */
  readOnly?: boolean;
}

export interface DispatchOptions {
  /** `Bearer …` from the HTTP header, or the event's `authorization` extension. */
  authorization?: string;
  /** false for events that can never arrive twice (a REST call without Idempotency-Key): no inbox row. */
  dedupe?: boolean;
  /** The client's address, from the HTTP doors. */
  clientIp?: string | undefined;
}

/** Maps CloudEvent types to zod-validated handlers and runs them with exactly-once effects. */
export class Registry {
  private readonly byType = new Map<string, Registration>();
  authenticate: Authenticate | undefined;
  /** Signs emitted facts and proves where incoming events came from. */
  proof: EventProof | undefined;
  /**
   * Signed events older than this are refused: their inbox rows may be gone (retention), so a replay of
   * one could otherwise be applied twice.
   */
  maxSignedAgeSeconds = Number.POSITIVE_INFINITY;
  /** The fact types handlers may emit; undefined: any. */
  emits: ReadonlySet<string> | undefined;
  /** Told of every event refused for a missing or bad proof (a metric). */
  onRefused: ((type: string, reason: string) => void) | undefined;

  constructor(
    readonly service: string,
    readonly schema: string,
    private readonly db: () => Database,
    private readonly log: Logger,
    /** Told of each fact written to the outbox, and whether its transaction committed (the relay publishes it). */
    private readonly outbox: OutboxListener,
  ) {}

  command<C extends CommandDef>(def: C, handler: Handler<DataOf<C>, ReplyData<C>>, options: CommandOptions = {}): void {
    this.add({
      def,
      replyDef: def.reply,
      handler: handler as Handler<unknown, unknown>,
      subscription: false,
      dedupe: options.readOnly ? false : (options.dedupe ?? true),
      internal: options.internal ?? false,
      readOnly: options.readOnly ?? false,
    });
  }

  /** Declares a subscription to a fact: the source of JetStream consumers and of the chart's Triggers. */
  on<D extends EventDef>(def: D, handler: Handler<DataOf<D>, void>): void {
    this.add({
      def,
      handler: handler as Handler<unknown, unknown>,
      subscription: true,
      dedupe: true,
      internal: true,
      readOnly: false,
    });
  }

  private add(reg: Registration): void {
    if (this.byType.has(reg.def.type)) throw new Error(`handler for ${reg.def.type} registered twice`);
    this.byType.set(reg.def.type, reg);
  }

  types(): string[] {
    return [...this.byType.keys()];
  }

  subscriptions(): EventDef[] {
    return [...this.byType.values()].filter((r) => r.subscription).map((r) => r.def);
  }

  has(type: string): boolean {
    return this.byType.has(type);
  }

  /** Checks type and data without running anything: lets a batch be refused whole before any effect. */
  validate(event: SnapEvent): { reg: Registration; data: unknown } {
    const reg = this.byType.get(event.type);
    if (!reg) {
      throw badRequest("unknown_event_type", `no handler for event type '${event.type}' in ${this.service}`, {
        type: event.type,
        accepted: this.types(),
      });
    }
    const parsed = (reg.def.data as z.ZodType).safeParse(event.data);
    if (!parsed.success) {
      throw badRequest("invalid_event_data", `data does not match the schema of ${event.type}`, {
        issues: parsed.error.issues.map((i) => ({ path: i.path.join("."), code: i.code, message: i.message })),
      });
    }
    return { reg, data: parsed.data };
  }

  /**
   * Validates and applies one event. Records `(source, id)` in the inbox in the same transaction as the
   * effect and the emitted facts; a repeated event is acknowledged with the reply stored the first time.
   */
  async dispatch(event: SnapEvent, options: DispatchOptions = {}): Promise<DispatchResult> {
    const entry = await this.prepare(event, options);
    if (entry.reg.readOnly) return this.applyReadOnly(entry, options);
    const result = await this.withEffects({ user: entry.user, log: entry.log, traceparent: event.traceparent }, (effects) =>
      this.applyIn({ ...effects, event, producer: entry.producer, clientIp: options.clientIp }, entry, options),
    );
    if (result.duplicate) entry.log.info("duplicate event acknowledged without re-applying");
    return result;
  }

  /** Everything about an event that needs no transaction: its handler and data, producer, caller. */
  private async prepare(event: SnapEvent, options: DispatchOptions): Promise<Prepared> {
    const { reg, data } = this.validate(event);
    const producer = this.prove(event, reg);
    const user = await this.resolveUser(options.authorization ?? bearerFrom(event));
    const log = this.log.child({ eventId: event.id, eventType: event.type, traceparent: event.traceparent });
    // The stored reply goes back only to the caller who caused it (same credentials), never to whoever reuses the id.
    const caller = user ? createHash("sha256").update(user.id).digest("hex") : "";
    return { event, reg, data, producer, user, log, caller };
  }

  /**
   * One transaction with the handler effects (emit to the outbox, after-commit hooks): what dispatch
   * uses, and what routes that cannot be a plain handler (streamed uploads) use directly.
   */
  async withEffects<T>(
    opts: { user?: User | undefined; log?: Logger; traceparent?: unknown },
    fn: (ctx: EffectsContext) => Promise<T>,
  ): Promise<T> {
    const log = opts.log ?? this.log;
    const after: Array<() => Promise<void> | void> = [];
    const undo: Array<() => Promise<void> | void> = [];
    const emitted: SnapEvent[] = [];
    const transaction = this.db().transaction(async (tx) => {
      const ctx: EffectsContext = {
        tx,
        log,
        user: opts.user,
        requireUser: () => requireUser(opts.user),
        emit: async (def, factData, extras) => {
          if (this.emits && !this.emits.has(def.type)) {
            throw appError("internal", `${this.service} does not declare ${def.type} among the facts it emits`);
          }
          const unsigned = makeEvent(def, (def.data as z.ZodType).parse(factData) as DataOf<typeof def>, {
            service: this.service,
            ...(extras?.subject ? { subject: extras.subject } : {}),
            ...(typeof opts.traceparent === "string" ? { traceparent: opts.traceparent } : {}),
          });
          // Signed before it is stored: the proof travels with the fact through every sink and replay.
          const fact = this.proof ? this.proof.sign(unsigned) : unsigned;
          this.outbox.reserve(fact.id);
          emitted.push(fact);
          await tx.query(`INSERT INTO ${this.schema}.outbox (event_id, type, event) VALUES ($1, $2, $3)`, [
            fact.id,
            fact.type,
            JSON.stringify(fact),
          ]);
          return fact;
        },
        afterCommit: (fn) => {
          after.push(fn);
        },
        onRollback: (fn) => {
          undo.push(fn);
        },
      };
      return fn(ctx);
    });
    const result = await transaction.catch(async (err: unknown) => {
      this.outbox.released(emitted);
      for (const fn of undo.reverse()) {
        try {
          await fn();
        } catch (undoErr) {
          log.error({ err: undoErr }, "rollback compensation failed");
        }
      }
      throw err;
    });
    if (emitted.length > 0) this.outbox.committed(emitted);
    for (const fn of after) {
      try {
        await fn();
      } catch (err) {
        log.error({ err }, "after-commit hook failed");
      }
    }
    return result;
  }

  /**
   * Who produced the event: a signed event must verify whatever its type (a bad proof is never ignored);
   * an internal one (a fact) must be signed. Unsigned commands from app clients pass with no producer.
   */
  private prove(event: SnapEvent, reg: Registration): string | undefined {
    const signed = event[PROOF_ATTRIBUTE] !== undefined;
    if (!signed && !reg.internal) return undefined;
    return this.requireProof(event);
  }

  /** The proven producer of a signed event, or a ProofError (401/403), logged and counted. */
  requireProof(event: SnapEvent): string {
    try {
      if (!this.proof) throw new ProofError("producer_unknown", `${this.service} has no event keys to verify ${event.type}`);
      const producer = this.proof.verify(event);
      const age = (Date.now() - Date.parse(String(event.time))) / 1000;
      if (!(age <= this.maxSignedAgeSeconds)) {
        throw new ProofError("too_old", `a signed event must carry a time within the last ${this.maxSignedAgeSeconds} s`);
      }
      return producer;
    } catch (err) {
      this.onRefused?.(event.type, err instanceof ProofError ? err.reason : "error");
      this.log.warn(
        { eventId: event.id, eventType: event.type, source: event.source, reason: (err as Error).message },
        "event refused: its producer is not proven",
      );
      throw err;
    }
  }

  /** The caller behind an `Authorization` header (undefined without one; 401 for a bad one). */
  async userFrom(authorization: string | undefined): Promise<User | undefined> {
    return this.resolveUser(authorization);
  }

  private replyEvent(def: EventDef, out: unknown, cause: SnapEvent): SnapEvent {
    const parsed = (def.data as z.ZodType).safeParse(out);
    if (!parsed.success) {
      throw appError("internal", `handler reply does not match ${def.type}`);
    }
    return makeEvent(def, parsed.data as never, {
      service: this.service,
      ...(cause.subject ? { subject: cause.subject } : {}),
      ...(typeof cause.traceparent === "string" ? { traceparent: cause.traceparent } : {}),
    });
  }

  private async resolveUser(authorization: string | undefined): Promise<User | undefined> {
    if (!authorization) return undefined;
    const token = /^Bearer\s+(.+)$/i.exec(authorization)?.[1];
    if (!token) throw unauthorized("authorization must be 'Bearer <token>'", "invalid_token");
    if (!this.authenticate) throw unauthorized("this service does not accept session tokens", "invalid_token");
    return { ...(await this.authenticate(token)), token };
  }

  /**
   * Applies a batch all-or-nothing: every entry in ONE transaction, so an error in any entry rolls back
   * all of them; the error names the failing entry's index.
   */
  async dispatchBatch(events: SnapEvent[], options: DispatchOptions = {}): Promise<DispatchResult[]> {
    const entries: Prepared[] = [];
    for (const [index, event] of events.entries()) entries.push(await atIndex(index, () => this.prepare(event, options)));
    // emit reads the traceparent when it runs, so each entry's facts carry that entry's trace.
    const shared: { user?: User; log: Logger; traceparent?: unknown } = { log: this.log };
    const results = await this.withEffects(shared, async (effects) => {
      const out: DispatchResult[] = [];
      for (const [index, entry] of entries.entries()) {
        const { event, producer, user, log } = entry;
        shared.traceparent = event.traceparent;
        const ctx = { ...effects, event, producer, user, requireUser: () => requireUser(user), log, clientIp: options.clientIp };
        out.push(await atIndex(index, () => this.applyIn(ctx, entry, options)));
      }
      return out;
    });
    for (const [index, result] of results.entries()) {
      if (result.duplicate) entries[index]!.log.info("duplicate event acknowledged without re-applying");
    }
    return results;
  }

  /** A read-only command: no transaction, no inbox; what it tries to emit is a bug, refused. */
  private async applyReadOnly(entry: Prepared, options: DispatchOptions): Promise<DispatchResult> {
    const { event, reg, data, producer, user, log } = entry;
    const after: Array<() => Promise<void> | void> = [];
    const ctx: HandlerContext = {
      event,
      tx: this.db(),
      log,
      user,
      producer,
      clientIp: options.clientIp,
      requireUser: () => requireUser(user),
      emit: async (def) => {
        throw appError("internal", `${event.type} is read-only and cannot emit ${def.type}`);
      },
      afterCommit: (fn) => {
        after.push(fn);
      },
      onRollback: () => {},
    };
    const out = await reg.handler(data, ctx);
    for (const fn of after) await fn();
    return { duplicate: false, reply: reg.replyDef ? this.replyEvent(reg.replyDef, out, event) : undefined };
  }

  /** One event inside an open transaction: claim `(source, id)` in the inbox, run the handler, store the reply. */
  private async applyIn(ctx: HandlerContext, { reg, data, caller }: Prepared, options: DispatchOptions): Promise<DispatchResult> {
    const { tx, event } = ctx;
    const inbox = `${this.schema}.inbox`;
    const dedupe = options.dedupe !== false && reg.dedupe;
    const claimed = dedupe
      ? await tx.query(
          `INSERT INTO ${inbox} (source, id, type, caller) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id`,
          [event.source, event.id, event.type, caller],
        )
      : { rowCount: 1 };
    if (claimed.rowCount === 0) {
      const prior = await tx.query<{ reply: SnapEvent | null; caller: string }>(
        `SELECT reply, caller FROM ${inbox} WHERE source = $1 AND id = $2`,
        [event.source, event.id],
      );
      if (prior.rows[0] && prior.rows[0].caller !== caller) {
        throw conflict(
          `an event with source '${event.source}' and id '${event.id}' was already applied for another caller`,
          "event_id_reused",
        );
      }
      return { duplicate: true, reply: prior.rows[0]?.reply ?? undefined };
    }
    const out = await reg.handler(data, ctx);
    const reply = reg.replyDef ? this.replyEvent(reg.replyDef, out, event) : undefined;
    if (reply && dedupe) {
      await tx.query(`UPDATE ${inbox} SET reply = $3 WHERE source = $1 AND id = $2`, [
        event.source,
        event.id,
        JSON.stringify(reply),
      ]);
    }
    return { duplicate: false, reply };
  }
}

export type ReplyData<C extends CommandDef> = NonNullable<C["reply"]> extends EventDef ? DataOf<NonNullable<C["reply"]>> : void;

interface Prepared {
  event: SnapEvent;
  reg: Registration;
  data: unknown;
  producer: string | undefined;
  user: User | undefined;
  log: Logger;
  /** Hash of the caller's user id ('' for none): whose stored reply a repeated event may see. */
  caller: string;
}

function requireUser(user: User | undefined): User {
  if (!user) throw unauthorized();
  return user;
}

/** Names a batch entry in its error (the error's details get `index`). */
async function atIndex<T>(index: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AppError) {
      throw withContext(err, `batch entry ${index}: `, { index });
    }
    throw err;
  }
}

function bearerFrom(event: SnapEvent): string | undefined {
  return typeof event.authorization === "string" ? event.authorization : undefined;
}
