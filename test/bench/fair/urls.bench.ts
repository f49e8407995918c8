// The fair urls benchmark: POST /v1/temp-urls with one key, answered by storage (a process of its own) and by a
// bare node:http + pg baseline doing the same token check, SELECT and HMAC (urls-baseline.ts); the load
// generator runs in a third process. Each of USERS users asks for their own object, with their own token.

import { freshDatabase } from "../../support/postgres.ts";
import { fmt } from "../stats.ts";
import { DURATION_MS, FAIR, listeningPort, loadgen, ROUNDS, rateLine, ratioLine, stopped, tsxProcess } from "./harness.ts";
import type { LoadgenResult, RequestTemplate } from "./loadgen.ts";
import { png, startStorage } from "./storage-fixture.ts";

const USERS = 20;
const keyOf = (i: number) => `bench/user${i}/photo.png`;

export async function urlsFairBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const storage = await startStorage(natsUrl, databaseUrl, "benchurl");
  let baseline: ReturnType<typeof tsxProcess> | undefined;
  try {
    const templates: RequestTemplate[] = [];
    for (let i = 0; i < USERS; i++) {
      await storage.upload(`user${i}`, keyOf(i), png(4096));
      templates.push({
        method: "POST",
        path: "/v1/temp-urls",
        headers: {
          authorization: `Bearer ${await storage.issuer.token(`user${i}`, { expiresIn: "2h" })}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ keys: [keyOf(i)] }),
      });
    }
    baseline = tsxProcess(`${FAIR}urls-baseline.ts`, [], {
      DATABASE_URL: await freshDatabase(databaseUrl, "benchurlb"),
      BENCH_OBJECTS: JSON.stringify(await storage.rows()),
      BENCH_JWKS: JSON.stringify(storage.issuer.jwks),
      BENCH_SIGNING_KEY: storage.signingKey,
      BENCH_PUBLIC_BASE: storage.base,
    });
    const targets = { storage: storage.base, baseline: `http://127.0.0.1:${await listeningPort(baseline)}` };
    // Both sign the same URL: storage serves the object by the baseline's URL, and storage's by its own.
    for (const [name, base] of Object.entries(targets)) {
      const t = templates[0]!;
      const res = await fetch(base + t.path, { method: "POST", headers: t.headers ?? {}, body: t.body ?? "" });
      const item = ((await res.json()) as { items?: Array<{ url?: string }> }).items?.[0];
      const download = item?.url ? await fetch(item.url) : undefined;
      if (download?.status !== 200) throw new Error(`${name}'s signed URL did not download (${res.status}, ${download?.status})`);
      await download.arrayBuffer();
    }

    const series = ["storage", "baseline"] as const;
    const results: Record<string, LoadgenResult[]> = { storage: [], baseline: [] };
    for (const s of series) {
      const warm = await loadgen(storage.scratch, { url: targets[s], templates, durationMs: Math.min(1000, DURATION_MS) });
      if (warm.errors) throw new Error(`${s}: ${warm.errors} of ${warm.requests} warm-up requests failed`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of series) results[s]!.push(await loadgen(storage.scratch, { url: targets[s], templates }));
    }

    console.log(
      `\n## urls, fair: POST /v1/temp-urls with 1 key, storage vs bare node:http + pg (c=16, keep-alive, ${USERS} users ` +
        `each signing their own object, ${ROUNDS} interleaved rounds × ${fmt(DURATION_MS / 1000)} s)`,
    );
    const s = rateLine("snapmesh storage (POST /v1/temp-urls, 1 key)", results.storage!, "URLs/s");
    const b = rateLine("baseline node:http + pg: token, same SELECT, HMAC", results.baseline!, "URLs/s");
    ratioLine("ratio of medians storage / baseline", s / b, "≥ 0.60");
    console.log(
      "caveats: both verify the same ES256 token (storage answers a token it verified before from its cache) and run " +
        "the same SELECT outside a transaction on a pool of 10; storage adds " +
        "its router, the CloudEvent the request becomes, zod checks of it and of its reply, and metrics; 1 URL per request.",
    );
  } finally {
    if (baseline) await stopped(baseline);
    await storage.stop();
  }
}
