import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { type FileHandle, mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type BlobBackend, BlobNotFound, type StoredBlob } from "./backend.js";

/** A download reads 1 MiB at a time (Node's default 64 KiB: 16 reads and 16 socket writes per MiB). */
export const READ_CHUNK_BYTES = 1024 * 1024;

/** Local filesystem (the embedded default): write to a temp file, fsync, rename over the target. */
export class FsBackend implements BlobBackend {
  readonly kind = "fs";
  private readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  private path(key: string): string {
    const p = resolve(this.root, "objects", key);
    if (!p.startsWith(join(this.root, "objects") + sep)) throw new Error(`key escapes the storage root: ${key}`);
    return p;
  }

  async put(key: string, body: Readable): Promise<StoredBlob> {
    const target = this.path(key);
    const tmpDir = join(this.root, "tmp");
    await mkdir(tmpDir, { recursive: true });
    await mkdir(dirname(target), { recursive: true });
    const tmp = join(tmpDir, randomUUID());
    try {
      await pipeline(body, createWriteStream(tmp, { flags: "wx" }));
      const fh = await open(tmp, "r");
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return { size: (await stat(target)).size };
  }

  /** One `open()` (a missing blob fails there, no separate `stat()`), read in large chunks: fewer reads and socket writes. */
  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    let fh: FileHandle;
    try {
      fh = await open(this.path(key), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new BlobNotFound(key);
      throw err;
    }
    return fh.createReadStream({ highWaterMark: READ_CHUNK_BYTES, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async close(): Promise<void> {}
}
