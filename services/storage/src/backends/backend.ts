import type { Readable } from "node:stream";

export interface StoredBlob {
  size: number;
}

/** Where object bytes live. Metadata stays in PostgreSQL; a backend only keeps bytes under a key. */
export interface BlobBackend {
  readonly kind: "fs" | "s3" | "nats";
  /** Writes the whole stream atomically: readers see the old object or the new one, never a part. */
  put(key: string, body: Readable, contentType: string): Promise<StoredBlob>;
  /** The bytes, or a range of them (`end` inclusive). */
  get(key: string, range?: { start: number; end: number }): Promise<Readable>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

export class BlobNotFound extends Error {
  constructor(key: string) {
    super(`no blob stored under '${key}'`);
    this.name = "BlobNotFound";
  }
}
