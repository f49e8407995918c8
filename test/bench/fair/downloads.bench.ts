// The fair downloads benchmark: one 1 MiB object fetched by its signed URL from storage (a process of its own,
// fs backend) and from a bare node:http baseline streaming the same file (download-baseline.ts), at the
// highWaterMark storage reads with and at 64 KiB and 1 MiB; the load generator in a third process counts bytes.
import { createHash } from "node:crypto";
import { FsBackend } from "../../../services/storage/src/backends/fs.ts";
import { freshDatabase } from "../../support/postgres.ts";
import { fmt } from "../stats.ts";
import {
  DURATION_MS,
  FAIR,
  listeningPort,
  loadgen,
  median,
  ROUNDS,
  rateLine,
  ratioLine,
  stopped,
  tsxProcess,
} from "./harness.ts";
import type { LoadgenResult } from "./loadgen.ts";
import { png, startStorage } from "./storage-fixture.ts";

const SIZE = 1024 * 1024;
const KEY = "bench/one-mib.png";
const MiB = 1024 * 1024;
const KiB = 1024;

/** The results with `rps` in MiB/s, so the harness's lines print a byte rate. */
const inMiBps = (rs: LoadgenResult[]) => rs.map((r) => ({ ...r, rps: (r.bytes ?? 0) / MiB / r.seconds }));
const size = (bytes: number) => (bytes >= MiB && bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${fmt(bytes / KiB)} KiB`);

/** The buffer storage's fs backend reads a blob with today: whatever its read stream has, asked of the backend. */
async function storageHighWaterMark(dir: string, blob: string): Promise<number> {
  const stream = await new FsBackend(dir).get(blob);
  const hwm = stream.readableHighWaterMark;
  stream.destroy();
  return hwm;
}

export async function downloadsFairBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const storage = await startStorage(natsUrl, databaseUrl, "benchdl");
  const baselines: ReturnType<typeof tsxProcess>[] = [];
  try {
    const sha256 = await storage.upload("bench", KEY, png(SIZE));
    const auth = await storage.issuer.bearer("bench");
    const signed = await fetch(`${storage.base}/v1/temp-urls`, {
      method: "POST",
      headers: { authorization: auth, "content-type": "application/json" },
      body: JSON.stringify({ keys: [KEY] }),
    });
    const url = new URL(((await signed.json()) as { items: Array<{ url: string }> }).items[0]!.url);
    const path = url.pathname + url.search;
    const rows = await storage.rows();
    const used = await storageHighWaterMark(storage.dir, rows[0]!.blob);
    const marks = [...new Set([64 * KiB, MiB, used])].sort((a, b) => a - b);

    const baseDb = await freshDatabase(databaseUrl, "benchdlb");
    const targets: Record<string, string> = { storage: storage.base };
    // One after another: each creates the table in the same database.
    for (const hwm of marks) {
      const child = tsxProcess(`${FAIR}download-baseline.ts`, [], {
        DATABASE_URL: baseDb,
        BENCH_OBJECTS: JSON.stringify(rows),
        BENCH_DIR: storage.dir,
        BENCH_SIGNING_KEY: storage.signingKey,
        BENCH_HIGH_WATER_MARK: String(hwm),
      });
      baselines.push(child);
      targets[`bare/${hwm}`] = `http://127.0.0.1:${await listeningPort(child)}`;
    }
    // Every target serves the uploaded bytes for the same URL, or the figures mean nothing.
    for (const [name, base] of Object.entries(targets)) {
      const res = await fetch(base + path);
      const got = createHash("sha256")
        .update(Buffer.from(await res.arrayBuffer()))
        .digest("hex");
      if (res.status !== 200 || got !== sha256) throw new Error(`${name} answered ${res.status} with other bytes`);
    }

    const series = Object.keys(targets);
    const results: Record<string, LoadgenResult[]> = Object.fromEntries(series.map((s) => [s, []]));
    const args = (target: string) => ({ url: targets[target]!, templates: [{ method: "GET", path }], countBytes: true });
    for (const s of series) {
      const warm = await loadgen(storage.scratch, { ...args(s), durationMs: Math.min(1000, DURATION_MS) });
      if (warm.errors) throw new Error(`${s}: ${warm.errors} of ${warm.requests} warm-up requests failed`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of series) results[s]!.push(await loadgen(storage.scratch, args(s)));
    }

    console.log(
      `\n## downloads, fair: ${size(SIZE)} by signed URL, storage (fs backend) vs bare node:http createReadStream().pipe(res) ` +
        `(c=16, keep-alive, ${ROUNDS} interleaved rounds × ${fmt(DURATION_MS / 1000)} s); storage reads with highWaterMark ${size(used)}`,
    );
    const s = rateLine("snapmesh storage (GET /v1/objects/:key?sig=…)", inMiBps(results.storage!), "MiB/s");
    const bare: Record<number, number> = {};
    for (const hwm of marks) {
      bare[hwm] = rateLine(`bare stream ${size(hwm)} (HMAC, same SELECT, open)`, inMiBps(results[`bare/${hwm}`]!), "MiB/s");
    }
    ratioLine(`ratio of medians storage / bare stream ${size(used)}`, s / bare[used]!, "≥ 0.85");
    ratioLine("ratio of medians bare stream 1 MiB / 64 KiB", bare[MiB]! / bare[64 * KiB]!, "> 1: a larger buffer helps");
    const perRequest = median(results.storage!.map((r) => (r.bytes ?? 0) / Math.max(1, r.requests)));
    console.log(
      `caveats: both check the same HMAC, run the same read-only transaction (BEGIN READ ONLY, SELECT, COMMIT) and ` +
        `open the same file, which sits in the page cache (no disk I/O); storage adds its router and ` +
        `metrics; the load generator reads every byte (${fmt(perRequest / KiB)} KiB a response) and shares the 2 cores.`,
    );
  } finally {
    await Promise.all(baselines.map(stopped));
    await storage.stop();
  }
}
