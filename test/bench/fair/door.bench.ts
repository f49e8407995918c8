// The fair CloudEvents door benchmark: social's `POST /` taking like.set / like.unset commands in binary and in
// structured content mode, beside likes-baseline.ts receiving the same events, doing the same transaction and
// publishing the same signed facts; service, baseline and load generator each in a process of their own, in
// interleaved rounds.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fmt } from "../stats.ts";
import { DURATION_MS, loadgen, ROUNDS, rateLine, ratioLine } from "./harness.ts";
import type { LoadgenResult, RequestTemplate } from "./loadgen.ts";
import { socialFixture } from "./social-fixture.ts";

const USERS = 200;
const PHOTOS = 20;
const MODES = ["binary", "structured"] as const;
type Mode = (typeof MODES)[number];

/**
 * 200 users × 20 photos, each pair liked then unliked, so (nearly) every event changes state and emits a fact.
 * Every event has an id of its own (`{n}`), so each claims its inbox row; the caller's token is in `Authorization`.
 */
function eventTemplates(tokens: string[], mode: Mode): RequestTemplate[] {
  const out: RequestTemplate[] = [];
  for (let k = 0; k < USERS * PHOTOS; k++) {
    const authorization = tokens[Math.floor(k / PHOTOS)]!;
    const data = { photoId: `p${k % PHOTOS}` };
    for (const type of ["snapmesh.social.like.set", "snapmesh.social.like.unset"]) {
      const attrs = { specversion: "1.0", id: "{n}", source: "/bench/app", type };
      out.push(
        mode === "binary"
          ? {
              method: "POST",
              path: "/",
              headers: {
                authorization,
                "content-type": "application/json",
                ...Object.fromEntries(Object.entries(attrs).map(([name, v]) => [`ce-${name}`, v])),
              },
              body: JSON.stringify(data),
            }
          : {
              method: "POST",
              path: "/",
              headers: { authorization, "content-type": "application/cloudevents+json" },
              body: JSON.stringify({ ...attrs, data }),
            },
      );
    }
  }
  return out;
}

export async function doorFairBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const fx = await socialFixture(natsUrl, databaseUrl, { users: USERS, tag: "benchdoor", baselineFacts: true });
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-bench-"));
  try {
    const targets = { snapmesh: fx.social, baseline: fx.baseline };
    const mixes = { binary: eventTemplates(fx.tokens, "binary"), structured: eventTemplates(fx.tokens, "structured") };
    const series = MODES.flatMap((mode) =>
      (["snapmesh", "baseline"] as const).map((target) => ({ mode, target, key: `${target}/${mode}` })),
    );
    const results: Record<string, LoadgenResult[]> = Object.fromEntries(series.map((s) => [s.key, []]));
    for (const s of series) {
      await fx.drained();
      const warm = await loadgen(dir, {
        url: targets[s.target],
        templates: mixes[s.mode],
        durationMs: Math.min(1000, DURATION_MS),
      });
      if (warm.errors) throw new Error(`${s.key}: ${warm.errors} of ${warm.requests} warm-up requests failed`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of series) {
        // social's relay publishes what a round wrote; the next round starts once it is done.
        await fx.drained();
        results[s.key]!.push(await loadgen(dir, { url: targets[s.target], templates: mixes[s.mode] }));
      }
    }

    console.log(
      `\n## door, fair: CloudEvents on POST / (like.set/unset), social vs a node:http + pg baseline receiving the same events ` +
        `(c=16, keep-alive, ${USERS} users × ${PHOTOS} photos, ${ROUNDS} interleaved rounds × ${fmt(DURATION_MS / 1000)} s)`,
    );
    for (const mode of MODES) {
      const header =
        mode === "binary"
          ? "binary content mode (ce-* headers, JSON data; binary reply)"
          : "structured content mode (application/cloudevents+json; structured reply)";
      console.log(`# ${header}`);
      const s = rateLine(`snapmesh social (POST /, ${mode})`, results[`snapmesh/${mode}`]!);
      const b = rateLine("baseline node:http + pg, same statements", results[`baseline/${mode}`]!);
      ratioLine("ratio of medians snapmesh / baseline", s / b, "≥ 0.70");
    }
    console.log(
      "caveats: every event claims its inbox row and stores its reply in both; both verify the same ES256 session token " +
        "(Authorization header; social answers a token it verified before from its cache) and sign each fact (Ed25519); the baseline checks the required attributes by hand (no " +
        "CloudEvents SDK schema validation, no zod) and both publish each fact to JetStream right after its commit and " +
        "then mark it sent (rounds start on drained outboxes).",
    );
  } finally {
    await fx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
