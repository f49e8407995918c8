import type { SnapEvent } from "@snapmesh/events";
import type { Database } from "./db.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import type { EventSink } from "./sinks.js";

interface OutboxRow {
  seq: string | number | bigint;
  event: SnapEvent;
  attempts: number;
}

export interface OutboxRelayOptions {
  db: Database;
  /** The service's schema: its outbox table. */
  schema: string;
  sink: EventSink;
  log: Logger;
  metrics: Metrics;
  pollMs: number;
  batchSize?: number;
  /** How long a claim holds rows; a relay that dies mid-batch leaves them to others after this. */
  leaseMs?: number;
}

/**
 * Publishes facts written to the outbox table and marks them sent, on two paths:
 *
 * - **From memory, right after commit** (`committed`): the facts a transaction wrote are published at once,
 *   in the order they were emitted, without reading them back; acks are awaited concurrently and the rows
 *   are marked sent in batches. No database connection is held while publishing.
 * - **The poller** (on a timer, once at start, and on `kick`) is the fallback for what the first path did not
 *   mark: a crash between commit and ack, a failed publish, a sink that was not ready. A short statement
 *   claims a batch in order with a lease (`claimed_until`), the rows are published outside any
 *   transaction, and another short statement marks them sent. Replicas never claim the same row while its
 *   lease holds. It skips rows this process is publishing from memory.
 *
 * Delivery is at-least-once either way: a fact may be published twice (a crash after publish and before the
 * mark, another replica's poller in the instant between commit and ack); `Nats-Msg-Id` and the consumers'
 * inbox drop the repeat. Facts are published in commit order, except that one whose publish failed is
 * published again later by the poller, after facts committed behind it.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private active = false;
  private readonly batchSize: number;
  private readonly leaseMs: number;
  /** Event ids being published from memory (the poller leaves them alone). */
  private readonly inFlight = new Set<string>();
  private readonly publishes = new Set<Promise<void>>();
  private toMark: string[] = [];
  private marking: Promise<void> | undefined;

  private readonly db: Database;
  private readonly schema: string;
  private readonly sink: EventSink;
  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor(private readonly opts: OutboxRelayOptions) {
    ({ db: this.db, schema: this.schema, sink: this.sink, log: this.log, metrics: this.metrics } = opts);
    this.batchSize = opts.batchSize ?? 100;
    this.leaseMs = opts.leaseMs ?? 60_000;
  }

  get sinkKind(): string {
    return this.sink.kind;
  }

  get started(): boolean {
    return this.active;
  }

  /** A sink that says it cannot publish yet (NATS still connecting). */
  private get sinkConnecting(): boolean {
    return (this.sink as { ready?: boolean }).ready === false;
  }

  start(): void {
    this.active = true;
    // A sink still connecting gets its first drain from whoever connects it (a drain now would only count rows).
    if (!this.sinkConnecting) this.kick();
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
    this.timer.unref();
  }

  /**
   * A fact is being written in a transaction not yet committed: the poller leaves its row alone from now
   * on (a claim running just after the commit would otherwise publish it a second time).
   */
  reserve(eventId: string): void {
    if (this.active) this.inFlight.add(eventId);
  }

  /** The transaction that wrote these facts rolled back. */
  released(facts: readonly SnapEvent[]): void {
    for (const fact of facts) this.inFlight.delete(fact.id);
  }

  /** Facts a transaction just committed to the outbox: published now, from memory. */
  committed(facts: readonly SnapEvent[]): void {
    // An inactive relay, or a sink that cannot publish yet, leaves the rows to the poller.
    if (!this.active || this.sinkConnecting) {
      this.released(facts);
      return;
    }
    for (const fact of facts) {
      const publish = this.sink.publish(fact).then(
        () => {
          this.metrics.eventsPublished.inc({ type: fact.type, sink: this.sink.kind, outcome: "ok" });
          this.toMark.push(fact.id);
          this.markSent();
        },
        (err: unknown) => {
          this.inFlight.delete(fact.id);
          this.metrics.eventsPublished.inc({ type: fact.type, sink: this.sink.kind, outcome: "failed" });
          const message = String((err as Error).message).slice(0, 500);
          this.log.warn({ eventId: fact.id, err: message }, "publishing a fact failed; the poller retries it");
          return this.db
            .query(`UPDATE ${this.schema}.outbox SET attempts = attempts + 1, last_error = $2 WHERE event_id = $1`, [
              fact.id,
              message,
            ])
            .then(
              () => {},
              () => {},
            );
        },
      );
      this.publishes.add(publish);
      void publish.finally(() => this.publishes.delete(publish));
    }
  }

  /** Marks what was published from memory as sent, many rows per statement. */
  private markSent(): void {
    if (this.marking) return;
    this.marking = (async () => {
      while (this.toMark.length > 0) {
        const ids = this.toMark.splice(0, 1000);
        try {
          await this.db.query(
            `UPDATE ${this.schema}.outbox SET sent_at = now(), attempts = attempts + 1
              WHERE event_id = ANY($1::text[]) AND sent_at IS NULL`,
            [ids],
          );
        } catch (err) {
          // Left unsent: the poller publishes them again (the stream and the consumers drop the repeat).
          this.log.warn({ err: (err as Error).message, facts: ids.length }, "could not mark published facts as sent");
        } finally {
          for (const id of ids) this.inFlight.delete(id);
        }
      }
    })().finally(() => {
      this.marking = undefined;
      if (this.toMark.length > 0) this.markSent();
    });
  }

  /** Asks for a drain soon; coalesces with one already running. */
  kick(): void {
    if (!this.active) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drainLoop().finally(() => {
      this.running = undefined;
    });
  }

  private async drainLoop(): Promise<void> {
    do {
      this.again = false;
      try {
        while ((await this.drainOnce()) === this.batchSize) {
          /* full batch: there may be more */
        }
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, "outbox drain failed; will retry");
      }
    } while (this.again && this.active);
  }

  /** Sends one batch; returns how many rows were sent. Stops at the first failure to keep order. */
  async drainOnce(): Promise<number> {
    const table = `${this.schema}.outbox`;
    // A sink that says it cannot publish yet (NATS still connecting): leave the rows, count no attempt.
    const rows = this.sinkConnecting ? [] : await this.claim();
    const sent: string[] = [];
    let failure: { seq: string; message: string } | undefined;
    for (const row of rows) {
      try {
        await this.sink.publish(row.event);
      } catch (err) {
        failure = { seq: String(row.seq), message: String((err as Error).message).slice(0, 500) };
        this.metrics.eventsPublished.inc({ type: row.event.type, sink: this.sink.kind, outcome: "failed" });
        break;
      }
      this.metrics.eventsPublished.inc({ type: row.event.type, sink: this.sink.kind, outcome: "ok" });
      sent.push(String(row.seq));
    }
    if (sent.length > 0) {
      await this.db.query(
        `UPDATE ${table} SET sent_at = now(), attempts = attempts + 1, claimed_until = NULL WHERE seq = ANY($1::bigint[])`,
        [sent],
      );
    }
    if (failure) {
      await this.db.query(`UPDATE ${table} SET attempts = attempts + 1, last_error = $2 WHERE seq = $1`, [
        failure.seq,
        failure.message,
      ]);
    }
    // What this batch did not publish goes back at once, so the next drain starts from the first unsent row.
    const unsent = rows.slice(sent.length).map((r) => String(r.seq));
    if (unsent.length > 0) {
      await this.db.query(`UPDATE ${table} SET claimed_until = NULL WHERE seq = ANY($1::bigint[])`, [unsent]);
    }
    this.metrics.outboxPending.set(await this.pending());
    return sent.length;
  }

  /**
   * Claims the first unsent rows in one short statement. A row is skipped while another relay's lease
   * holds it or an earlier row (so no relay overtakes another's batch).
   */
  private async claim(): Promise<OutboxRow[]> {
    const table = `${this.schema}.outbox`;
    const { rows } = await this.db.query<OutboxRow>(
      `UPDATE ${table} SET claimed_until = now() + make_interval(secs => $2::float8 / 1000)
        WHERE seq IN (
          SELECT o.seq FROM ${table} o
           WHERE o.sent_at IS NULL AND (o.claimed_until IS NULL OR o.claimed_until < now())
             AND NOT (o.event_id = ANY($3::text[]))
             AND NOT EXISTS (SELECT 1 FROM ${table} e
                              WHERE e.sent_at IS NULL AND e.seq < o.seq AND e.claimed_until >= now())
           ORDER BY o.seq LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING seq, event, attempts`,
      [this.batchSize, this.leaseMs, [...this.inFlight]],
    );
    // The list above is as of the call: a statement that waited for a pool connection can claim a fact committed
    // meanwhile, which the path from memory is publishing. Such rows go back unclaimed.
    const taken = rows.filter((r) => this.inFlight.has(r.event.id));
    if (taken.length > 0) {
      await this.db.query(`UPDATE ${table} SET claimed_until = NULL WHERE seq = ANY($1::bigint[])`, [
        taken.map((r) => String(r.seq)),
      ]);
    }
    return rows.filter((r) => !taken.includes(r)).sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
  }

  async pending(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.schema}.outbox WHERE sent_at IS NULL`);
    return Number(rows[0]?.n ?? 0);
  }

  /** Seconds the oldest unsent fact has waited (0 when nothing waits), by the database's clock. */
  async oldestUnsentAgeSeconds(): Promise<number> {
    const { rows } = await this.db.query<{ age: number | string }>(
      `SELECT EXTRACT(EPOCH FROM now() - created_at)::float8 AS age FROM ${this.schema}.outbox
        WHERE sent_at IS NULL ORDER BY seq LIMIT 1`,
    );
    return Number(rows[0]?.age ?? 0);
  }

  /** Stops the timer, waits for publishes from memory, and drains what is left, once (a held relay stays held). */
  async flush(): Promise<void> {
    if (!this.active) return;
    if (this.timer) clearInterval(this.timer);
    this.active = false;
    await Promise.all(this.publishes);
    while (this.marking) await this.marking;
    await this.running;
    await this.drainLoop().catch(() => {});
  }
}
