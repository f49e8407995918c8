// The baseline for the fair downloads benchmark: a bare node:http server in its own process answering
// GET /v1/objects/{key}?v=&expires=&kid=&sig= like storage's download route (services/storage/src/routes/
// download.ts, served through the runtime's query door and the fs backend, services/storage/src/backends/fs.ts).
// What it does, per request, as storage does it: checks the key; verifies the URL's HMAC-SHA256 in constant
// time and its expiry (services/storage/src/signing.ts verify); reads the object's row in a read-only
// transaction on a pg Pool of 10 — BEGIN READ ONLY, the same `SELECT … FROM objects WHERE
// key = $1`, COMMIT (storage's ctx.read: services/runtime/src/service.ts read) — and checks it is live and
// holds the bytes the URL was signed for; sends the same headers (ETag, Cache-Control, Accept-Ranges,
// Last-Modified, X-Content-Type-Options, Content-Type, Content-Length); then streams the very
// file storage serves with `createReadStream(path, { highWaterMark }).pipe(res)`.
// What it leaves out: the runtime's router (routing, query parsing, headers), If-None-Match/Range handling (the load
// sends neither header; storage only reads them), error replies, metrics.
// Env: DATABASE_URL (a fresh database; its table is created here), BENCH_OBJECTS (storage.objects rows, JSON),
// BENCH_DIR (storage's STORAGE_DIR), BENCH_SIGNING_KEY (`kid:secret`), BENCH_HIGH_WATER_MARK (bytes per read,
// default 64 KiB like createReadStream's), PORT (default 0). Prints `listening <port>` once it accepts requests.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createReadStream } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import pg from "pg";
import { serveBaseline } from "./baseline-common.ts";
import { seedObjects, validKey } from "./objects-table.ts";
import type { ObjectRow } from "./storage-fixture.ts";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
await seedObjects(pool, JSON.parse(process.env.BENCH_OBJECTS ?? "[]") as ObjectRow[]);
const root = join(process.env.BENCH_DIR ?? "", "objects");
const highWaterMark = Number(process.env.BENCH_HIGH_WATER_MARK ?? 64 * 1024);
const signing = process.env.BENCH_SIGNING_KEY ?? "";
const kid = signing.slice(0, signing.indexOf(":"));
const secret = Buffer.from(signing.slice(signing.indexOf(":") + 1));
const PREFIX = "/v1/objects/";

// storage's store.ts COLUMNS.
const COLUMNS = `key, owner, blob, size::float8 AS size, content_type AS "contentType", sha256, etag,
  created_at AS "createdAt", deleted_at AS "deletedAt"`;
interface Row {
  blob: string;
  size: number;
  contentType: string;
  sha256: string;
  etag: string;
  createdAt: Date;
  deletedAt: Date | null;
}

function verified(key: string, q: URLSearchParams, now: number): string | undefined {
  const expires = q.get("expires");
  const sig = q.get("sig");
  const v = q.get("v");
  if (!expires || !sig || !v || !/^\d+$/.test(expires) || !/^[0-9a-f]{64}$/.test(v)) return undefined;
  if ((q.get("kid") ?? kid) !== kid) return undefined;
  const expected = Buffer.from(
    createHmac("sha256", secret)
      .update(`GET\n${key}\n${v}\n${Number(expires)}`)
      .digest("base64url"),
  );
  const given = Buffer.from(sig);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return Number(expires) > now ? v : undefined;
}

async function liveObject(key: string): Promise<Row | undefined> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN READ ONLY");
    const { rows } = await client.query<Row>(`SELECT ${COLUMNS} FROM base.objects WHERE key = $1`, [key]);
    await client.query("COMMIT");
    const row = rows[0];
    return row && !row.deletedAt ? row : undefined;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

function fail(res: http.ServerResponse, status: number): void {
  res.writeHead(status, { "content-type": "application/json" }).end(`{"error":{"status":${status}}}`);
}

const server = http.createServer((req, res) => {
  req.resume();
  const url = req.url ?? "";
  const qi = url.indexOf("?");
  const path = qi < 0 ? url : url.slice(0, qi);
  if (req.method !== "GET" || !path.startsWith(PREFIX)) return fail(res, 404);
  const key = decodeURIComponent(path.slice(PREFIX.length));
  if (!validKey(key)) return fail(res, 400);
  const now = Math.floor(Date.now() / 1000);
  const q = new URLSearchParams(qi < 0 ? "" : url.slice(qi + 1));
  const sha256 = verified(key, q, now);
  if (!sha256) return fail(res, 403);
  void (async () => {
    const obj = await liveObject(key);
    if (!obj) return fail(res, 404);
    if (obj.sha256 !== sha256) return fail(res, 410);
    const file = join(root, obj.blob);
    res.writeHead(200, {
      etag: obj.etag,
      "cache-control": `private, max-age=${Math.max(0, Number(q.get("expires")) - now)}`,
      "accept-ranges": "bytes",
      "last-modified": new Date(obj.createdAt).toUTCString(),
      "x-content-type-options": "nosniff",
      "content-type": obj.contentType,
      "content-length": String(obj.size),
    });
    const stream = createReadStream(file, { highWaterMark });
    stream.on("error", () => res.destroy());
    stream.pipe(res);
  })().catch(() => fail(res, 500));
});
serveBaseline(server, () => pool.end());
