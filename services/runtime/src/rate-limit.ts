import { tooManyRequests } from "./errors.js";

/** Fixed-window counters per key, in this replica's memory: a brake on sign-in abuse, not a quota. */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a hit; throws 429 with Retry-After when over the limit. */
  hit(key: string): void {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      w = { start: now, count: 0 };
      this.windows.set(key, w);
      if (this.windows.size > 100_000) this.sweep(now);
    }
    w.count++;
    if (w.count > this.limit) throw tooManyRequests(Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000)));
  }

  private sweep(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
  }
}
