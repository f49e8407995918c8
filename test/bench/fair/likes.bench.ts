// The fair likes benchmark: social, a bare node:http + pg baseline doing the same database work and publishing the
// same signed facts, and the load generator each run in a process of their own, in interleaved rounds with the same request mix.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fmt } from "../stats.ts";
import { DURATION_MS, loadgen, ROUNDS, rateLine, ratioLine } from "./harness.ts";
import type { LoadgenResult, RequestTemplate } from "./loadgen.ts";
import { socialFixture } from "./social-fixture.ts";

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
  const fx = await socialFixture(natsUrl, databaseUrl, { users: USERS, tag: "benchlikes", baselineFacts: true });
  const { tokens, drained } = fx;
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-bench-"));
  try {
    const targets = { snapmesh: fx.social, baseline: fx.baseline };
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
      "caveats: both verify the same ES256 session token (social answers a token it verified before from its cache; " +
        "the baseline verifies every time), sign each fact (Ed25519) and publish it to JetStream after commit " +
        "(rounds start on drained outboxes).",
    );
  } finally {
    await fx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
