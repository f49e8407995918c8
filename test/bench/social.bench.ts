// The comment page benchmark: the latency of one page of comments on a photo with 100,000 comments, beside the
// raw keyset query in the same run (likes are measured by the fair `likes` row).
import type { AddressInfo } from "node:net";
import pg from "pg";
import { Agent, request } from "undici";
import { social } from "../../services/social/src/service.ts";
import { testEventKeysEnv } from "../support/event-keys.ts";
import { uniqueName } from "../support/names.ts";
import { freshDatabase } from "../support/postgres.ts";
import { testIssuer } from "../support/tokens.ts";
import { fmt, row, summary } from "./stats.ts";

const COMMENTS = Number(process.env.BENCH_COMMENTS ?? 100_000);

export async function commentsBench(natsUrl: string, databaseUrl: string): Promise<void> {
  const dbUrl = await freshDatabase(databaseUrl, "bench");
  const issuer = await testIssuer();
  const service = await social.create({
    PORT: "0",
    LOG_LEVEL: "silent",
    DATABASE_URL: dbUrl,
    NATS_URL: natsUrl,
    EVENTS_STREAM: uniqueName("BENCHSO"),
    EVENTS_SUBJECT_PREFIX: uniqueName("benchso").toLowerCase(),
    ...testEventKeysEnv(),
    SOCIAL_LIKE_LIMIT_PER_MINUTE: "100000000",
  });
  service.authenticate = issuer.verifier;
  const server = await service.start({ host: "127.0.0.1" });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dispatcher = new Agent({ connections: 16 });
  const pool = new pg.Pool({ connectionString: dbUrl, max: 16 });

  console.log(`\n## social: comment page latency on a photo with ${fmt(COMMENTS, 0)} comments (limit 20, sequential)`);
  await pool.query(
    `INSERT INTO social.comments (id, photo_id, author_id, text, created_at)
     SELECT 'c' || g, 'big', 'user' || (g % 200), 'comment number ' || g, now() - make_interval(secs => $1 - g)
     FROM generate_series(1, $1::int) AS g`,
    [COMMENTS],
  );
  await pool.query("INSERT INTO social.counters (photo_id, comments) VALUES ('big', $1)", [COMMENTS]);
  await pool.query("ANALYZE social.comments");
  const cursors: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 50; i++) {
    const res: Awaited<ReturnType<typeof request>> = await request(
      `${base}/v1/photos/big/comments?limit=20${cursor ? `&cursor=${cursor}` : ""}`,
      {
        dispatcher,
      },
    );
    cursor = ((await res.body.json()) as { nextCursor: string | null }).nextCursor;
    if (cursor) cursors.push(cursor);
  }
  const deep = Buffer.from("60000").toString("base64url");
  const pages = [...cursors, deep];
  const viaService: number[] = [];
  const viaSql: number[] = [];
  for (let round = 0; round < 10; round++) {
    for (const c of pages) {
      let t0 = performance.now();
      const res = await request(`${base}/v1/photos/big/comments?limit=20&cursor=${c}`, { dispatcher });
      await res.body.json();
      viaService.push(performance.now() - t0);
      t0 = performance.now();
      await pool.query(
        "SELECT id, author_id, text, created_at FROM social.comments WHERE photo_id = 'big' AND seq < $1 ORDER BY seq DESC LIMIT 21",
        [Buffer.from(c, "base64url").toString()],
      );
      viaSql.push(performance.now() - t0);
    }
  }
  const s = summary(viaService);
  const r = summary(viaSql);
  row("raw SQL keyset page p50", `${fmt(r.p50, 3)} ms`);
  row("raw SQL keyset page p99", `${fmt(r.p99, 3)} ms`);
  row("GET …/comments page p50", `${fmt(s.p50, 3)} ms`, `${fmt(r.p50, 3)} ms`, s.p50 / r.p50);
  row("GET …/comments page p99", `${fmt(s.p99, 3)} ms`, `${fmt(r.p99, 3)} ms`, s.p99 / r.p99);
  await pool.end();
  await dispatcher.close();
  await service.stop();
}
