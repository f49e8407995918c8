// Running images with buildah (chroot isolation, no daemon) for the image tests and benchmarks.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

export const STORAGE = ["--storage-driver", process.env.SNAPMESH_STORAGE_DRIVER ?? "vfs"];

export const buildah = (...args: string[]) => execFileSync("buildah", [...STORAGE, ...args], { encoding: "utf8" }).trim();

export interface Running {
  child: ChildProcess;
  exit: Promise<number | null>;
  stderr: () => string;
}

/** The image's entrypoint (plus `args`) inside a working container, as the image's user. */
export function runEntrypoint(ctr: string, entrypoint: string[], env: Record<string, string>, args: string[] = []): Running {
  const envFlags = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
  const child = spawn("buildah", [...STORAGE, "run", "--isolation", "chroot", ...envFlags, ctr, "--", ...entrypoint, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exit, stderr: () => err };
}

/** The processes below `pid` (the container's processes under buildah). */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of parents.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** SIGKILL, if it is still there. */
export const kill = (pid: number) => {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
};
export const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
export const cmdlineOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
};
