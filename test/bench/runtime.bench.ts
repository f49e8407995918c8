// Runtime benchmarks: CloudEvents HTTP receive throughput (binary vs structured) against a bare node:http
// handler, and fact latency through JetStream -> consumer -> handler -> outbox -> publish against a bare
// NATS publish/subscribe. Prints figures; asserts nothing.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "nats";
import { Agent, request } from "undici";
import { z } from "zod";
import { fact } from "../../services/events/src/define.ts";
import { baseConfigSchema, fromNatsMessage, parseConfig, Service, subjectFor } from "../../services/runtime/src/internal.ts";
import { NoteCreate, notesService } from "../../services/runtime/test/fixture/notes.ts";
import { signedAs, testEventKeysEnv } from "../support/event-keys.ts";
import { uniqueName } from "../support/names.ts";
import { freshDatabase } from "../support/postgres.ts";
import { fmt, row, summary, throughput } from "./stats.ts";

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 3000);
const CONCURRENCY = 16;

export async function runtimeBench(natsUrl: string, databaseUrl: string): Promise<void> {
  console.log("\n## runtime: CloudEvents HTTP receive (single process, keep-alive, concurrency 16)");
  const env = {
    PORT: "0",
    LOG_LEVEL: "silent",
    DATABASE_URL: await freshDatabase(databaseUrl, "bench"),
    NATS_URL: natsUrl,
    EVENTS_STREAM: uniqueName("BENCH"),
    EVENTS_SUBJECT_PREFIX: uniqueName("bench").toLowerCase(),
    OUTBOX_POLL_MS: "50",
    ...testEventKeysEnv(),
  };
  const service = await notesService(parseConfig(baseConfigSchema, env));
  const server = await service.start({ host: "127.0.0.1" });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const dispatcher = new Agent({ connections: CONCURRENCY, pipelining: 1 });

  const bare = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      JSON.parse(Buffer.concat(chunks).toString());
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => bare.listen(0, "127.0.0.1", r));
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/`;

  let n = 0;
  const data = () => JSON.stringify({ noteId: `n${n++}`, text: "benchmark note" });
  const post = async (target: string, headers: Record<string, string>, body: string) => {
    const res = await request(target, { method: "POST", headers, body, dispatcher });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`status ${res.statusCode}`);
  };
  const baseline = await throughput(
    () => post(bareUrl, { "content-type": "application/json" }, data()),
    CONCURRENCY,
    DURATION_MS,
  );
  const binary = await throughput(
    () =>
      post(
        url,
        {
          "content-type": "application/json",
          "ce-specversion": "1.0",
          "ce-id": crypto.randomUUID(),
          "ce-source": "/bench",
          "ce-type": NoteCreate.type,
        },
        data(),
      ),
    CONCURRENCY,
    DURATION_MS,
  );
  const structured = await throughput(
    () =>
      post(
        url,
        { "content-type": "application/cloudevents+json" },
        `{"specversion":"1.0","id":"${crypto.randomUUID()}","source":"/bench","type":"${NoteCreate.type}","data":${data()}}`,
      ),
    CONCURRENCY,
    DURATION_MS,
  );
  row("bare node:http JSON handler", `${fmt(baseline)} req/s`);
  row("CloudEvents binary -> handler -> PostgreSQL tx", `${fmt(binary)} events/s`, `${fmt(baseline)} req/s`, binary / baseline);
  row(
    "CloudEvents structured -> handler -> PostgreSQL tx",
    `${fmt(structured)} events/s`,
    `${fmt(baseline)} req/s`,
    structured / baseline,
  );
  row("structured vs binary", "", undefined, structured / binary);
  await service.stop();
  bare.close();
  await dispatcher.close();

  await factLatency(natsUrl, databaseUrl);
}

async function factLatency(natsUrl: string, databaseUrl: string): Promise<void> {
  console.log("\n## runtime: fact latency, JetStream publish -> consume -> handler -> outbox -> publish (sequential)");
  const Ping = fact("social", "bench.ping", "a fact the bench sends", z.object({ n: z.number() }));
  const Pong = fact("social", "bench.pong", "the fact the handler emits", z.object({ n: z.number() }));
  const env = {
    PORT: "0",
    LOG_LEVEL: "silent",
    DATABASE_URL: await freshDatabase(databaseUrl, "bench"),
    NATS_URL: natsUrl,
    EVENTS_STREAM: uniqueName("BENCHL"),
    EVENTS_SUBJECT_PREFIX: uniqueName("benchl").toLowerCase(),
    OUTBOX_POLL_MS: "1000",
    ...testEventKeysEnv(),
  };
  const service = new Service({ name: "bench", schema: "bench", config: parseConfig(baseConfigSchema, env) });
  service.on(Ping, async (d, ctx) => {
    await ctx.emit(Pong, { n: d.n });
  });
  await service.start({ host: "127.0.0.1" });
  const nc = await connect({ servers: natsUrl });
  const js = nc.jetstream();
  const pending = new Map<number, () => void>();
  const sub = nc.subscribe(subjectFor(service.names, Pong.type), {
    callback: (_e, msg) => pending.get((fromNatsMessage(msg.data, msg.headers).data as { n: number }).n)?.(),
  });
  const samples: number[] = [];
  const rounds = Number(process.env.BENCH_ROUNDS ?? 300);
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const done = new Promise<void>((r) => pending.set(i, r));
    const ev = signedAs("test", { id: `ping-${i}`, type: Ping.type, data: { n: i } });
    await js.publish(subjectFor(service.names, Ping.type), new TextEncoder().encode(JSON.stringify(ev)), { msgID: ev.id });
    await done;
    samples.push(performance.now() - t0);
  }
  sub.unsubscribe();

  const bareSamples: number[] = [];
  const bareSubject = uniqueName("bare");
  const echo = nc.subscribe(`${bareSubject}.in`, { callback: (_e, msg) => nc.publish(`${bareSubject}.out`, msg.data) });
  let resolveBare: (() => void) | undefined;
  const out = nc.subscribe(`${bareSubject}.out`, { callback: () => resolveBare?.() });
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const done = new Promise<void>((r) => {
      resolveBare = r;
    });
    nc.publish(`${bareSubject}.in`, new TextEncoder().encode(String(i)));
    await done;
    bareSamples.push(performance.now() - t0);
  }
  echo.unsubscribe();
  out.unsubscribe();
  const s = summary(samples);
  const b = summary(bareSamples);
  row("bare NATS publish -> subscriber -> publish p50", `${fmt(b.p50, 3)} ms`);
  row("bare NATS publish -> subscriber -> publish p99", `${fmt(b.p99, 3)} ms`);
  row("snapmesh fact round trip p50", `${fmt(s.p50, 3)} ms`, `${fmt(b.p50, 3)} ms`, s.p50 / b.p50);
  row("snapmesh fact round trip p99", `${fmt(s.p99, 3)} ms`, `${fmt(b.p99, 3)} ms`, s.p99 / b.p99);
  await nc.close();
  await service.stop();
}
