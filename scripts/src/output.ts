import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/** How the CLI talks: colours and short lines for a person at a terminal, JSON lines with --json. */
export interface Output {
  json: boolean;
  step(message: string): void;
  info(message: string): void;
  error(message: string): void;
  ready(message: string, detail: Record<string, unknown>): void;
  result(value: unknown): void;
  pipeLogs(name: string, child: ChildProcess): void;
}

const COLOURS = ["\x1b[36m", "\x1b[35m", "\x1b[33m", "\x1b[32m", "\x1b[34m"];

export function createOutput(json: boolean, stream: NodeJS.WriteStream = process.stdout): Output {
  const tty = stream.isTTY && !process.env.NO_COLOR;
  const paint = (code: string, text: string) => (tty ? `${code}${text}\x1b[0m` : text);
  let colour = 0;
  const line = (obj: Record<string, unknown>) => stream.write(`${JSON.stringify(obj)}\n`);
  return {
    json,
    step: (m) => (json ? line({ level: "info", msg: m }) : stream.write(`${paint("\x1b[32m", "✔")} ${m}\n`)),
    info: (m) => (json ? line({ level: "info", msg: m }) : stream.write(`${paint("\x1b[2m", m)}\n`)),
    error: (m) => (json ? line({ level: "error", msg: m }) : process.stderr.write(`${paint("\x1b[31m", "✖")} ${m}\n`)),
    ready: (m, detail) =>
      json ? line({ level: "info", msg: m, ready: true, ...detail }) : stream.write(`${paint("\x1b[1m", m)}\n`),
    result: (v) => stream.write(`${JSON.stringify(v, null, json ? undefined : 2)}\n`),
    pipeLogs(name, child) {
      const tag = paint(COLOURS[colour++ % COLOURS.length]!, name.padEnd(10));
      for (const input of [child.stdout, child.stderr]) {
        if (!input) continue;
        createInterface({ input }).on("line", (l) => {
          if (json) stream.write(`${l}\n`);
          else stream.write(`${tag} ${humanLog(l)}\n`);
        });
      }
    },
  };
}

/**
 * A pino JSON line as `level msg key=value…` (`time level msg key=value…` with `time`); anything that is not a
 * JSON object, as it is.
 */
export function humanLog(raw: string, opts: { time?: boolean } = {}): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return raw;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return raw;
  const { level, msg, time, service: _s, name: _n, pid: _p, hostname: _h, ...rest } = parsed as Record<string, unknown>;
  const extra = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(" ");
  const line = `${String(level).padEnd(5)} ${msg ?? ""}${extra ? ` ${extra}` : ""}`;
  if (!opts.time || time === undefined) return line;
  // pino writes epoch milliseconds unless the logger (as snapmesh's does) asks for ISO time
  return `${typeof time === "number" ? new Date(time).toISOString() : String(time)} ${line}`;
}
