import { createHash, randomUUID } from "node:crypto";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { type AppError, appError, badRequest, tooLarge } from "@snapmesh/runtime";
import type { BlobBackend } from "./backends/backend.js";
import { MAGIC_BYTES, sniff } from "./magic.js";

export interface Ingested {
  blob: string;
  size: number;
  sha256: string;
  contentType: string;
}

export interface IngestLimits {
  maxBytes: number;
  allowedTypes: string[];
  /** A body that sends nothing for this long is aborted with 408 (streamed uploads). */
  idleTimeoutMs?: number;
}

/**
 * Streams a body into the backend under a fresh blob name, checking as it goes: the first bytes must be
 * an allowed image type (and agree with the declared type), the size must stay under the limit. Computes
 * sha256 on the way. Nothing is buffered beyond the first few bytes.
 */
export async function ingest(
  backend: BlobBackend,
  body: Readable,
  declaredType: string | undefined,
  limits: IngestLimits,
): Promise<Ingested> {
  const inspector = new Inspector(declaredType, limits);
  const blob = blobName();
  const source = body.pipe(inspector);
  body.once("error", (err) => inspector.destroy(err));
  // A refused body surfaces as backend.put's rejection (and inspector.failure), never as an unhandled 'error'.
  inspector.on("error", () => {});
  const stopWatching = limits.idleTimeoutMs ? watchIdle(body, limits.idleTimeoutMs, inspector) : () => {};
  try {
    const stored = await backend.put(blob, source, inspector.contentType ?? declaredType ?? "application/octet-stream");
    if (inspector.bytes === 0) throw badRequest("empty_body", "the object is empty");
    if (!inspector.contentType) throw inspector.typeError();
    return { blob, size: stored.size, sha256: inspector.sha256(), contentType: inspector.contentType };
  } catch (err) {
    await backend.delete(blob).catch(() => {});
    throw inspector.failure ?? err;
  } finally {
    stopWatching();
  }
}

/**
 * Aborts the ingest when `body` delivers nothing for `idleMs`. Time the body spends paused by our own
 * backpressure (a slow backend) does not count: only a sender that has gone quiet does.
 */
function watchIdle(body: Readable, idleMs: number, inspector: Inspector): () => void {
  const timer = setTimeout(function check() {
    if (body.readableFlowing === false) {
      timer.refresh();
      return;
    }
    inspector.abort(
      appError("upload_idle_timeout", `the upload sent nothing for ${idleMs} ms`, { details: { idleTimeoutMs: idleMs } }),
    );
  }, idleMs);
  const onData = () => timer.refresh();
  const stop = () => {
    clearTimeout(timer);
    body.off("data", onData);
  };
  body.on("data", onData);
  body.once("end", stop);
  return stop;
}

export function ingestBuffer(backend: BlobBackend, bytes: Buffer, declaredType: string | undefined, limits: IngestLimits) {
  return ingest(backend, Readable.from([bytes]), declaredType, limits);
}

/** Sharded, unguessable names: keys never reach the backend, so no key can escape or collide there. */
function blobName(): string {
  const id = randomUUID();
  return `${id.slice(0, 2)}/${id.slice(2, 4)}/${id}`;
}

class Inspector extends Transform {
  bytes = 0;
  contentType: string | undefined;
  failure: AppError | undefined;
  private readonly hash = createHash("sha256");
  private head = Buffer.alloc(0);

  constructor(
    private readonly declared: string | undefined,
    private readonly limits: IngestLimits,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limits.maxBytes) {
      const limit = this.limits.maxBytes;
      done(this.fail(tooLarge(`the object exceeds ${limit} bytes`, "object_too_large", { limit })));
      return;
    }
    if (!this.contentType) {
      this.head = Buffer.concat([this.head, chunk]);
      if (this.head.length >= MAGIC_BYTES) {
        const err = this.recognise();
        if (err) {
          done(this.fail(err));
          return;
        }
      }
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    if (!this.contentType && this.head.length > 0) {
      const err = this.recognise();
      if (err) {
        done(this.fail(err));
        return;
      }
    }
    done();
  }

  private recognise(): AppError | undefined {
    const found = sniff(this.head);
    if (!found || !this.limits.allowedTypes.includes(found)) return this.typeError();
    const declared = this.declared?.split(";")[0]?.trim().toLowerCase();
    if (declared && declared !== "application/octet-stream" && declared !== found) {
      return badRequest("content_type_mismatch", `the bytes are ${found} but the declared type is ${declared}`, {
        detected: found,
        declared,
      });
    }
    this.contentType = found;
    this.head = Buffer.alloc(0);
    return undefined;
  }

  typeError(): AppError {
    return appError(
      "unsupported_content",
      `the bytes are not one of the allowed types (${this.limits.allowedTypes.join(", ")})`,
      {
        details: { allowed: this.limits.allowedTypes },
      },
    );
  }

  /** Stops the ingest from outside (an idle sender): the backend's write fails and the blob is removed. */
  abort(err: AppError): void {
    this.destroy(this.fail(err));
  }

  private fail(err: AppError): AppError {
    this.failure = err;
    return err;
  }

  sha256(): string {
    return this.hash.digest("hex");
  }
}
