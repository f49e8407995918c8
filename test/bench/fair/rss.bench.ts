// The fair RSS-growth row: social's bundle (what its image runs) with real NATS and PostgreSQL, driven by the load
// generator in a process of its own through 40,000 requests (a session-token GET of a photo's summary and PUT/DELETE
// likes), its VmRSS read every 5,000; the slope over the last half says whether memory keeps growing.
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
const SAMPLES = 8;
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
    const samples = [{ requests: 0, rss: rssMiB(service.pid!) }];
    const step = TOTAL / SAMPLES;
    let done = 0;
    let errors = 0;
    let rps = 0;
    let next = step;
    while (done < TOTAL - step * 0.05) {
      // Each run goes on where the last one stopped in the mix; its length is aimed at the next sample point.
      const offset = done % templates.length;
      const r = await loadgen(dir, {
        url: `http://127.0.0.1:${port}`,
        templates: [...templates.slice(offset), ...templates.slice(0, offset)],
        durationMs: rps > 0 ? Math.max(200, ((next - done) / rps) * 1000) : 1000,
      });
      done += r.requests;
      errors += r.errors;
      rps = r.rps;
      if (done >= next - step * 0.05) {
        samples.push({ requests: done, rss: rssMiB(service.pid!) });
        next = (Math.floor(done / step + 0.05) + 1) * step;
      }
    }

    console.log(
      `\n## rss-growth, fair: social's bundle (as its image runs it) through ${fmt(TOTAL)} requests from the load generator ` +
        `in its own process (c=16, keep-alive; per user and photo GET …/social, PUT …/like, GET …/social, DELETE …/like, ` +
        `${USERS} users × ${PHOTOS} photos, session tokens), VmRSS after each ~${fmt(step)} requests`,
    );
    for (const s of samples) {
      const label = s.requests === 0 ? "0 (ready, 1 s idle)" : fmt(s.requests);
      console.log(`${`RSS after ${label} requests`.padEnd(52)} ${fmt(s.rss, 1).padStart(7)} MiB`);
    }
    const lastHalf = samples.filter((s) => s.requests >= TOTAL / 2).map((s) => ({ x: s.requests / 10_000, y: s.rss }));
    const growth = lastHalf.length >= 2 ? fmt(slope(lastHalf), 2) : "n/a";
    console.log(
      `${"slope over the last half, MiB per 10k requests".padEnd(52)} ${growth.padStart(7)}   (target ≈ 0, no growth trend)`,
    );
    console.log(
      `caveats: one run (BENCH_ROUNDS does not apply; BENCH_RSS_REQUESTS sets the total); ${fmt(rps, 0)} req/s in the last ` +
        `stretch, ${errors} non-2xx answers; RSS holds garbage not yet collected, so one sample swings by a few MiB and the ` +
        "first half includes the JIT warming up; the relay publishes each like's fact to NATS as it goes.",
    );
  } finally {
    await stopped(service);
    await jwks.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
