// The fair likes benchmark: social, a bare node:http + pg baseline doing the same database work, and the load
// generator each run in a process of their own, in interleaved rounds with the same request mix.
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../../../scripts/src/proxy.ts";
import { testEventKeysEnv } from "../../support/event-keys.ts";
import { uniqueName } from "../../support/names.ts";
import { freshDatabase } from "../../support/postgres.ts";
import { testIssuer } from "../../support/tokens.ts";
import { fmt } from "../stats.ts";
import { DURATION_MS, FAIR, listeningPort, loadgen, ROUNDS, rateLine, ratioLine, stopped, tsxProcess, until } from "./harness.ts";
import type { LoadgenResult, RequestTemplate } from "./loadgen.ts";

const USERS = 200;
const PHOTOS = 20;

/** 200 users × 20 photos; each pair is liked then unliked, so (nearly) every request changes state and emits. */
function likeTemplates(tokens: string[], idempotent: boolean): RequestTemplate[] {
  const out: RequestTemplate[] = [];
  for (let k = 0; k < USERS * PHOTOS; k++) {
    const headers = { authorization: tokens[Math.floor(k / PHOTOS)]!, ...(idempotent ? { "idempotency-key": "{n}" } : {}) };
    const path = `/v1/photos/p${k % PHOTOS}/like`;
    out.push({ method: "PUT", path, headers }, { method: "DELETE", path, headers });
  }
  return out;
}

export async function likesFairBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const [socialDb, baseDb] = await Promise.all([freshDatabase(databaseUrl, "benchfs"), freshDatabase(databaseUrl, "benchfb")]);
  const issuer = await testIssuer();
  const tokens = await Promise.all(
    Array.from({ length: USERS }, async (_, i) => `Bearer ${await issuer.token(`user${i}`, { expiresIn: "2h" })}`),
  );
  const jwks = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(issuer.jwks));
  });
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-bench-"));
  const port = await freePort("127.0.0.1");
  const service = tsxProcess("services/social/src/main.ts", [], {
    PORT: String(port),
    LOG_LEVEL: "silent",
    DATABASE_URL: socialDb,
    NATS_URL: natsUrl,
    EVENTS_STREAM: uniqueName("BENCHFS"),
    EVENTS_SUBJECT_PREFIX: uniqueName("benchfs").toLowerCase(),
    ...testEventKeysEnv(),
    SNAPMESH_DEV_AUTH: "1",
    SNAPMESH_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
    SOCIAL_LIKE_LIMIT_PER_MINUTE: "100000000",
  });
  const baseline = tsxProcess(join(FAIR, "likes-baseline.ts"), [], {
    DATABASE_URL: baseDb,
    BENCH_JWKS: JSON.stringify(issuer.jwks),
  });
  const socialPool = new pg.Pool({ connectionString: socialDb, max: 1 });
  try {
    const basePort = await listeningPort(baseline);
    await until("social to be ready", async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
    const targets = {
      snapmesh: `http://127.0.0.1:${port}`,
      baseline: `http://127.0.0.1:${basePort}`,
    };
    // social's relay publishes what a round wrote; the next round starts once it is done, on a quiet machine.
    const drained = () =>
      until(
        "social's outbox to drain",
        async () => (await socialPool.query("SELECT 1 FROM social.outbox WHERE sent_at IS NULL LIMIT 1")).rowCount === 0,
      );
    const mixes = { plain: likeTemplates(tokens, false), idempotent: likeTemplates(tokens, true) };
    const series = (["plain", "idempotent"] as const).flatMap((mix) =>
      (["snapmesh", "baseline"] as const).map((target) => ({ mix, target, key: `${target}/${mix}` })),
    );
    const results: Record<string, LoadgenResult[]> = Object.fromEntries(series.map((s) => [s.key, []]));
    for (const s of series) {
      await drained();
      const warm = await loadgen(dir, {
        url: targets[s.target],
        templates: mixes[s.mix],
        durationMs: Math.min(1000, DURATION_MS),
      });
      if (warm.errors) throw new Error(`${s.key}: ${warm.errors} of ${warm.requests} warm-up requests failed`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of series) {
        await drained();
        results[s.key]!.push(await loadgen(dir, { url: targets[s.target], templates: mixes[s.mix] }));
      }
    }

    console.log(
      `\n## likes, fair: social, baseline and load generator in separate processes (c=16, keep-alive, ` +
        `${USERS} users × ${PHOTOS} photos, PUT/DELETE alternating, ${ROUNDS} interleaved rounds × ${fmt(DURATION_MS / 1000)} s)`,
    );
    for (const mix of ["plain", "idempotent"] as const) {
      const header = mix === "plain" ? "no Idempotency-Key (no inbox row)" : "with Idempotency-Key (inbox row + stored reply)";
      console.log(`# ${header}`);
      const s = rateLine("snapmesh social (PUT|DELETE /v1/photos/:id/like)", results[`snapmesh/${mix}`]!);
      const b = rateLine("baseline node:http + pg, same statements", results[`baseline/${mix}`]!);
      ratioLine("ratio of medians snapmesh / baseline", s / b, mix === "plain" ? "≥ 0.70" : "≥ 0.60");
    }
    console.log(
      "caveats: both verify the same ES256 session token; the baseline stores an unsigned fact and never publishes it, " +
        "social signs each fact and its relay publishes it to NATS between rounds (rounds start on a drained outbox).",
    );
  } finally {
    await socialPool.end();
    await Promise.all([stopped(service), stopped(baseline)]);
    await new Promise((r) => jwks.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
}
