import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, rename, rm, stat } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type BlobBackend, BlobNotFound, type StoredBlob } from "./backend.js";

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

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const p = this.path(key);
    try {
      await stat(p);
    } catch {
      throw new BlobNotFound(key);
    }
    return createReadStream(p, range ? { start: range.start, end: range.end } : {});
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async close(): Promise<void> {}
}
