// What every fair benchmark shares: processes of their own (the service, its baseline, the load generator),
// waiting on conditions rather than sleeps, and the median/min/max line each row prints.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { fmt } from "../stats.ts";
import type { LoadgenArgs, LoadgenResult } from "./loadgen.ts";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const FAIR = fileURLToPath(new URL(".", import.meta.url));
export const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 10_000);
export const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const run = promisify(execFile);

/** A TypeScript script (through tsx) in a process of its own; its stderr tail is printed if it dies. */
export function tsxProcess(script: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  child.on("exit", (code) => {
    if (code && code !== 0 && !child.killed) console.error(`${script} exited with ${code}\n${stderr}`);
  });
  return child;
}

/** Resolves with the port a baseline prints as `listening <port>` on stdout. */
export function listeningPort(child: ChildProcess, name = "the baseline"): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export const stopped = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });

/** Runs test/bench/fair/loadgen.ts in a process of its own with these arguments (written to a file in `dir`). */
export async function loadgen(dir: string, args: LoadgenArgs): Promise<LoadgenResult> {
  const file = join(dir, `args-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ concurrency: 16, durationMs: DURATION_MS, ...args }));
  const { stdout } = await run(process.execPath, ["--import", "tsx", join(FAIR, "loadgen.ts"), `@${file}`], {
    cwd: ROOT,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as LoadgenResult;
}

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** One printed row: the median of the rounds with their min–max, and the median round's latencies. */
export function rateLine(label: string, rs: LoadgenResult[], unit = "req/s"): number {
  const rps = rs.map((r) => r.rps);
  const mid = rs.find((r) => r.rps === median(rps))!;
  const errors = rs.reduce((n, r) => n + r.errors, 0);
  console.log(
    `${label.padEnd(52)} ${fmt(median(rps), 0).padStart(7)} ${unit} (${fmt(Math.min(...rps), 0)}–${fmt(Math.max(...rps), 0)})` +
      `  p50 ${fmt(mid.p50ms, 2)} ms  p99 ${fmt(mid.p99ms, 2)} ms  errors ${errors}`,
  );
  return median(rps);
}

export function ratioLine(label: string, ratio: number, target?: string): void {
  console.log(`${label.padEnd(52)} ${ratio.toFixed(2).padStart(7)}${target ? `   (target ${target})` : ""}`);
}
