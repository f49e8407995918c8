// A load generator in its own process, so that the server it measures does not share its event loop:
// node:http with a keep-alive Agent, `concurrency` workers cycling through request templates for a fixed
// time. Prints one JSON line: { requests, seconds, rps, errors, p50ms, p99ms } (plus `bytes`, the response
// body bytes received, with `countBytes`). Non-2xx answers are errors.
//   node --import tsx test/bench/fair/loadgen.ts '<json>'   or   … loadgen.ts @args.json
import { readFileSync } from "node:fs";
import http from "node:http";

export interface RequestTemplate {
  method: string;
  path: string;
  /** `{n}` in a value becomes a number unique within this run (Idempotency-Key, say). */
  headers?: Record<string, string>;
  /** A request body; `{n}` in it becomes the same number as in the headers (a structured event's id, say). */
  body?: string;
}

export interface LoadgenArgs {
  url: string;
  templates: RequestTemplate[];
  concurrency?: number;
  durationMs?: number;
  /** Count the response body bytes (for a rate in bytes/s); off by default. */
  countBytes?: boolean;
}

export interface LoadgenResult {
  requests: number;
  seconds: number;
  rps: number;
  errors: number;
  p50ms: number;
  p99ms: number;
  /** Response body bytes received over the run (only with `countBytes`). */
  bytes?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function loadgen(args: LoadgenArgs): Promise<LoadgenResult> {
  const concurrency = args.concurrency ?? 16;
  const durationMs = args.durationMs ?? Number(process.env.BENCH_DURATION_MS ?? 10_000);
  const base = new URL(args.url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  let next = 0;
  let errors = 0;
  let bytes = 0;
  const latencies: number[] = [];

  const send = (t: RequestTemplate, n: number) =>
    new Promise<number>((resolve) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(t.headers ?? {})) headers[k] = v.replaceAll("{n}", `${run}-${n}`);
      const body = t.body === undefined ? undefined : Buffer.from(t.body.replaceAll("{n}", `${run}-${n}`));
      if (body) headers["content-length"] = String(body.length);
      const req = http.request(
        { host: base.hostname, port: base.port, method: t.method, path: t.path, headers, agent },
        (res) => {
          if (args.countBytes) {
            res.on("data", (chunk: Buffer) => {
              bytes += chunk.length;
            });
          } else {
            res.resume();
          }
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", () => resolve(0));
        },
      );
      req.on("error", () => resolve(0));
      req.end(body);
    });

  const end = performance.now() + durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      const n = next++;
      const t0 = performance.now();
      const status = await send(args.templates[n % args.templates.length]!, n);
      latencies.push(performance.now() - t0);
      if (status < 200 || status > 299) errors++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    seconds,
    rps: latencies.length / seconds,
    errors,
    p50ms: percentile(sorted, 50),
    p99ms: percentile(sorted, 99),
    ...(args.countBytes ? { bytes } : {}),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const raw = process.argv[2] ?? "";
  const args = JSON.parse(raw.startsWith("@") ? readFileSync(raw.slice(1), "utf8") : raw) as LoadgenArgs;
  process.stdout.write(`${JSON.stringify(await loadgen(args))}\n`);
}
