// The fair RSS-growth row: social's bundle (what its image runs) with real NATS and PostgreSQL, driven by the load
// generator in a process of its own through 40,000 requests (a session-token GET of a photo's summary and PUT/DELETE
// likes); its VmRSS and JS heap read every ~1,000 requests and shown every 5,000. The slope over the last half says
// whether memory keeps growing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../../scripts/src/proxy.ts";
import { testIssuer } from "../../support/tokens.ts";
import { fmt } from "../stats.ts";
import { loadgen, stopped } from "./harness.ts";
import type { RequestTemplate } from "./loadgen.ts";
import { buildBundles, jwksServer, rssMiB, serviceEnv, spawnNode, untilReady } from "./startup.bench.ts";

const TOTAL = Number(process.env.BENCH_RSS_REQUESTS ?? 40_000);
const ROWS = 8;
const USERS = 200;
const PHOTOS = 20;

/** Per user and photo: read the summary, like, read it again, unlike (so likes never pile up). */
function mix(tokens: string[]): RequestTemplate[] {
  const out: RequestTemplate[] = [];
  for (let k = 0; k < USERS * PHOTOS; k++) {
    const headers = { authorization: tokens[Math.floor(k / PHOTOS)]! };
    const photo = `/v1/photos/p${k % PHOTOS}`;
    out.push(
      { method: "GET", path: `${photo}/social`, headers },
      { method: "PUT", path: `${photo}/like`, headers },
      { method: "GET", path: `${photo}/social`, headers },
      { method: "DELETE", path: `${photo}/like`, headers },
    );
  }
  return out;
}

/** The JS heap in use, MiB, from the service's own /metrics (prom-client's default process metrics). */
async function heapUsedMiB(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(/^nodejs_heap_size_used_bytes\{[^}]*\} (\d+)/m.exec(text)?.[1]) / 2 ** 20;
}

/** Least-squares slope of y over x. */
function slope(points: Array<{ x: number; y: number }>): number {
  const mx = points.reduce((n, p) => n + p.x, 0) / points.length;
  const my = points.reduce((n, p) => n + p.y, 0) / points.length;
  const num = points.reduce((n, p) => n + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((n, p) => n + (p.x - mx) ** 2, 0);
  return num / den;
}

export async function rssGrowthFairBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-rss-"));
  const issuer = await testIssuer();
  const jwks = await jwksServer(issuer.jwks);
  const tokens = await Promise.all(
    Array.from({ length: USERS }, async (_, i) => `Bearer ${await issuer.token(`user${i}`, { expiresIn: "2h" })}`),
  );
  const entries = await buildBundles(dir);
  const port = await freePort("127.0.0.1");
  const env = await serviceEnv("social", entries.social, { natsUrl, databaseUrl, jwksUrl: jwks.url, scratch: dir });
  // The like limit (120 a minute per user) would answer 429 to a load generator; the limiter's bookkeeping still runs.
  const service = spawnNode([entries.social], { ...env, PORT: String(port), SOCIAL_LIKE_LIMIT_PER_MINUTE: "100000000" }, dir);
  try {
    await untilReady(port, service);
    await new Promise((r) => setTimeout(r, 1000));
    const templates = mix(tokens);
    const base = `http://127.0.0.1:${port}`;
    const sample = async (requests: number) => ({ requests, rss: rssMiB(service.pid!), heap: await heapUsedMiB(base) });
    const samples = [await sample(0)];
    // A sample every ~1,000 requests; a row every 5,000 gives the window's spread, as one sample lands anywhere on
    // the garbage collector's sawtooth.
    const step = TOTAL / ROWS;
    const sub = step / 5;
    let done = 0;
    let errors = 0;
    let rps = 0;
    let next = sub;
    while (done < TOTAL - sub * 0.25) {
      // Each run goes on where the last one stopped in the mix; its length is aimed at the next sample point, at most
      // 2 s, as the rate climbs while the JIT warms up (a first estimate would overshoot).
      const offset = done % templates.length;
      const r = await loadgen(dir, {
        url: base,
        templates: [...templates.slice(offset), ...templates.slice(0, offset)],
        durationMs: rps > 0 ? Math.min(2000, Math.max(200, ((next - done) / rps) * 1000)) : 1000,
      });
      done += r.requests;
      errors += r.errors;
      rps = r.rps;
      if (done >= next - sub * 0.25) {
        samples.push(await sample(done));
        next = (Math.floor(done / sub + 0.25) + 1) * sub;
      }
    }
    const windows = Array.from({ length: ROWS }, (_, w) =>
      samples.filter((s) => s.requests > 0 && Math.min(ROWS, Math.max(1, Math.ceil((s.requests - sub * 0.25) / step))) === w + 1),
    ).filter((w) => w.length > 0);

    console.log(
      `\n## rss-growth, fair: social's bundle (as its image runs it) through ${fmt(TOTAL)} requests from the load generator ` +
        `in its own process (c=16, keep-alive; per user and photo GET …/social, PUT …/like, GET …/social, DELETE …/like, ` +
        `${USERS} users × ${PHOTOS} photos, session tokens); VmRSS and the JS heap in use (its /metrics) every ~${fmt(sub)} ` +
        `requests, a row every ~${fmt(step)}`,
    );
    const range = (xs: number[]) => `${fmt(Math.min(...xs), 1)}–${fmt(Math.max(...xs), 1)}`;
    console.log(
      `${"RSS when ready, after 1 s idle".padEnd(52)} ${fmt(samples[0]!.rss, 1).padStart(7)} MiB   (JS heap in use ${fmt(samples[0]!.heap, 1)})`,
    );
    for (const w of windows) {
      const last = w.at(-1)!;
      console.log(
        `${`RSS after ${fmt(last.requests)} requests`.padEnd(52)} ${fmt(last.rss, 1).padStart(7)} MiB   ` +
          `(${range(w.map((s) => s.rss))} over the window; JS heap in use ${range(w.map((s) => s.heap))})`,
      );
    }
    // Over the last half: RSS by least squares over every sample; the heap by its floor (each window's lowest), which
    // is what survives collection.
    const half = samples.filter((s) => s.requests >= TOTAL / 2);
    const floors = windows
      .filter((w) => w.at(-1)!.requests >= TOTAL / 2)
      .map((w) => ({ x: w.at(-1)!.requests / 10_000, y: Math.min(...w.map((s) => s.heap)) }));
    const rssTrend = half.length >= 2 ? fmt(slope(half.map((s) => ({ x: s.requests / 10_000, y: s.rss }))), 2) : "n/a";
    const heapTrend = floors.length >= 2 ? fmt(slope(floors), 2) : "n/a";
    console.log(
      `${"slope of RSS over the last half, MiB per 10k requests".padEnd(52)} ${rssTrend.padStart(7)}   ` +
        `(target ≈ 0, no growth trend; the JS heap's floor ${heapTrend})`,
    );
    console.log(
      `caveats: one run (BENCH_ROUNDS does not apply; BENCH_RSS_REQUESTS sets the total); ${fmt(rps, 0)} req/s in the last ` +
        `stretch, ${errors} non-2xx answers; RSS and the heap hold garbage not yet collected (hence the ranges), the first ` +
        "half includes the JIT warming up, the service idles ~1 s between the load generator's runs, and its relay " +
        "publishes each like's fact to NATS as it goes.",
    );
  } finally {
    await stopped(service);
    await jwks.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
