import { appError } from "@snapmesh/runtime";
import type { StorageConfig } from "./config.js";

const RETRY_AFTER_SECONDS = 5;

/**
 * Bounds streamed uploads in progress: each one holds a socket and a blob being written, so a client
 * trickling many slow bodies could otherwise hold descriptors without limit. Per replica.
 */
export class UploadGate {
  private readonly perUser = new Map<string, number>();
  private total = 0;

  constructor(
    readonly maxPerUser: number,
    readonly maxTotal: number,
  ) {}

  static fromConfig(config: StorageConfig): UploadGate {
    return new UploadGate(config.STORAGE_MAX_CONCURRENT_UPLOADS_PER_USER, config.STORAGE_MAX_CONCURRENT_UPLOADS);
  }

  /** Takes a slot for `user` (429 when they have too many, 503 when the replica is full); call the result once done. */
  enter(user: string): () => void {
    const mine = this.perUser.get(user) ?? 0;
    if (mine >= this.maxPerUser) {
      throw appError("too_many_uploads", `at most ${this.maxPerUser} uploads at once per user; wait for one to finish`, {
        details: { limit: this.maxPerUser, retryAfterSeconds: RETRY_AFTER_SECONDS },
        headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
      });
    }
    if (this.total >= this.maxTotal) {
      throw appError("uploads_busy", "the service is taking as many uploads as it can; retry shortly", {
        details: { retryAfterSeconds: RETRY_AFTER_SECONDS },
        headers: { "retry-after": String(RETRY_AFTER_SECONDS) },
      });
    }
    this.perUser.set(user, mine + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perUser.get(user) ?? 1) - 1;
      if (left > 0) this.perUser.set(user, left);
      else this.perUser.delete(user);
    };
  }

  /** Uploads in progress, for one user or in all. */
  inFlight(user?: string): number {
    return user === undefined ? this.total : (this.perUser.get(user) ?? 0);
  }
}
