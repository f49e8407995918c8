import { Readable } from "node:stream";
import type { NatsConnection, ObjectStore } from "nats";
import { type BlobBackend, BlobNotFound, type StoredBlob } from "./backend.js";

/** NATS JetStream object store: bytes chunked into a stream, replicated by JetStream. */
export class NatsObjectBackend implements BlobBackend {
  readonly kind = "nats";
  private store: Promise<ObjectStore> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
  ) {}

  private os(): Promise<ObjectStore> {
    this.store ??= this.nc.jetstream().views.os(this.bucket);
    return this.store;
  }

  async put(key: string, body: Readable): Promise<StoredBlob> {
    const info = await (await this.os()).put({ name: key }, Readable.toWeb(body) as ReadableStream<Uint8Array>);
    return { size: info.size };
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const result = await (await this.os()).get(key);
    if (!result) throw new BlobNotFound(key);
    const whole = Readable.fromWeb(result.data as import("node:stream/web").ReadableStream<Uint8Array>);
    return range ? Readable.from(sliceBytes(range.start, range.end)(whole)) : whole;
  }

  async delete(key: string): Promise<void> {
    await (await this.os()).delete(key).catch(() => {});
  }

  async close(): Promise<void> {}
}

/** Passes through only bytes start..end (inclusive) of a stream. */
function sliceBytes(start: number, end: number) {
  return async function* (source: AsyncIterable<Buffer | Uint8Array>) {
    let offset = 0;
    for await (const chunk of source) {
      const buf = Buffer.from(chunk);
      const from = Math.max(0, start - offset);
      const to = Math.min(buf.length, end - offset + 1);
      if (to > from) yield buf.subarray(from, to);
      offset += buf.length;
      if (offset > end) break;
    }
  };
}
