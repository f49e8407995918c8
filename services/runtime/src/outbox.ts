import type { SnapEvent } from "@snapmesh/events";
import type { Database } from "./db.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import type { EventSink } from "./sinks.js";

interface OutboxRow {
  seq: string;
  event: SnapEvent;
  attempts: number;
}

/**
 * Publishes facts written to the outbox table, in order, and marks them sent. Runs after each commit that
 * emitted something, on a timer, and once at start (what a crash left). Rows are locked while being sent
 * (FOR UPDATE SKIP LOCKED), so replicas never send the same row at once.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private active = false;

  constructor(
    private readonly db: Database,
    private readonly schema: string,
    private readonly sink: EventSink,
    private readonly log: Logger,
    private readonly metrics: Metrics,
    private readonly pollMs: number,
    private readonly batchSize = 100,
  ) {}

  start(): void {
    this.active = true;
    this.kick();
    this.timer = setInterval(() => this.kick(), this.pollMs);
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
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<OutboxRow>(
        `SELECT seq, event, attempts FROM ${table} WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.batchSize],
      );
      const sent: string[] = [];
      for (const row of rows) {
        try {
          await this.sink.publish(row.event);
        } catch (err) {
          await tx.query(`UPDATE ${table} SET attempts = attempts + 1, last_error = $2 WHERE seq = $1`, [
            row.seq,
            String((err as Error).message).slice(0, 500),
          ]);
          this.metrics.eventsPublished.inc({ type: row.event.type, sink: this.sink.kind, outcome: "failed" });
          break;
        }
        this.metrics.eventsPublished.inc({ type: row.event.type, sink: this.sink.kind, outcome: "ok" });
        sent.push(row.seq);
      }
      // One statement marks the whole published run; it commits with the row locks taken above.
      if (sent.length > 0) {
        await tx.query(`UPDATE ${table} SET sent_at = now(), attempts = attempts + 1 WHERE seq = ANY($1::bigint[])`, [sent]);
      }
      this.metrics.outboxPending.observe(sent.length);
      return sent.length;
    });
  }

  async pending(): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(`SELECT count(*) AS n FROM ${this.schema}.outbox WHERE sent_at IS NULL`);
    return Number(rows[0]?.n ?? 0);
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
