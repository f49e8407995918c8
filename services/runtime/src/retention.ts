import type { Database } from "./db.js";
import type { Logger } from "./logger.js";

export interface RetentionOptions {
  /** Sent outbox rows older than this are deleted. */
  outboxSeconds: number;
  /**
   * Inbox rows (the record that an event was applied) older than this are deleted. An event replayed
   * after that would be applied again, so facts older than this bound must be refused at the door.
   */
  inboxSeconds: number;
  intervalMs: number;
  /** The first sweep waits this long (default 2 s): not on a cold start's path, yet within a short-lived instance. */
  firstSweepMs?: number;
  batchSize?: number;
  /** Bound on the batches one sweep deletes, so a large backlog is worked off over several sweeps. */
  maxBatches?: number;
}

/** Keeps the inbox and outbox bounded: deletes rows past their retention, in small batches, on a timer. */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly db: Database,
    private readonly schema: string,
    private readonly log: Logger,
    private readonly opts: RetentionOptions,
  ) {}

  start(): void {
    const tick = () => {
      this.running ??= this.sweep()
        .catch((err) => this.log.warn({ err: (err as Error).message }, "retention sweep failed; will retry"))
        .finally(() => {
          this.running = undefined;
        });
    };
    this.timer = setTimeout(() => {
      tick();
      this.timer = setInterval(tick, this.opts.intervalMs);
      this.timer.unref();
    }, this.opts.firstSweepMs ?? 2000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer); // the first sweep's timeout or the interval: Node clears either
    await this.running;
  }

  /** One sweep; returns how many rows it deleted from each table. */
  async sweep(): Promise<{ outbox: number; inbox: number }> {
    const outbox = await this.inBatches(
      `DELETE FROM ${this.schema}.outbox WHERE seq IN (
         SELECT seq FROM ${this.schema}.outbox
          WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1::float8) LIMIT $2)`,
      this.opts.outboxSeconds,
    );
    const inbox = await this.inBatches(
      `DELETE FROM ${this.schema}.inbox WHERE (source, id) IN (
         SELECT source, id FROM ${this.schema}.inbox
          WHERE applied_at < now() - make_interval(secs => $1::float8) LIMIT $2)`,
      this.opts.inboxSeconds,
    );
    if (outbox + inbox > 0) this.log.info({ outbox, inbox }, "retention: old inbox and outbox rows deleted");
    return { outbox, inbox };
  }

  private async inBatches(sql: string, seconds: number): Promise<number> {
    const batch = this.opts.batchSize ?? 500;
    let total = 0;
    for (let i = 0; i < (this.opts.maxBatches ?? 20); i++) {
      const { rowCount } = await this.db.query(sql, [seconds, batch]);
      total += rowCount;
      if (rowCount < batch) break;
    }
    return total;
  }
}
