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
 * Publishes facts written to the outbox table, in order, and marks them sent. Runs after each commit that
 * emitted something, on a timer, and once at start (what a crash left).
 *
 * No transaction is held while publishing (network I/O): a short statement claims a batch with a lease
 * (`claimed_until`), the rows are published outside any transaction, and another short statement marks
 * them sent. Replicas never claim the same row while its lease holds; a relay that dies mid-batch leaves
 * rows whose lease expires and which are then published again (at-least-once; `Nats-Msg-Id` and the
 * consumers' inbox drop the repeat).
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private active = false;
  private readonly batchSize: number;
  private readonly leaseMs: number;

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

  start(): void {
    this.active = true;
    this.kick();
    this.timer = setInterval(() => this.kick(), this.opts.pollMs);
    this.timer.unref();
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
    const rows = (this.sink as { ready?: boolean }).ready === false ? [] : await this.claim();
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
             AND NOT EXISTS (SELECT 1 FROM ${table} e
                              WHERE e.sent_at IS NULL AND e.seq < o.seq AND e.claimed_until >= now())
           ORDER BY o.seq LIMIT $1 FOR UPDATE SKIP LOCKED)
        RETURNING seq, event, attempts`,
      [this.batchSize, this.leaseMs],
    );
    return rows.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
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

  /** Stops the timer and drains what is left, once (a held relay stays held). */
  async flush(): Promise<void> {
    if (!this.active) return;
    if (this.timer) clearInterval(this.timer);
    this.active = false;
    await this.running;
    await this.drainLoop().catch(() => {});
  }
}
