import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { homedir } from "node:os";
import { join } from "node:path";

/** Finds a program on PATH or in the usual install folders; undefined when absent. */
export function findBinary(name: string, extraDirs: string[] = []): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return extraDirs.map((d) => join(d, name)).find((p) => existsSync(p));
  }
}

export function goBinDirs(): string[] {
  const dirs = [join(homedir(), "go", "bin")];
  if (process.env.GOPATH) dirs.unshift(join(process.env.GOPATH, "bin"));
  if (process.env.GOBIN) dirs.unshift(process.env.GOBIN);
  return dirs;
}

export function waitForPort(port: number, host = "127.0.0.1", timeoutMs = 15_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child && child.exitCode !== null) return reject(new Error(`process exited with code ${child.exitCode}`));
      const sock = connect(port, host);
      sock.once("connect", () => {
        sock.destroy();
        resolve();
      });
      sock.once("error", () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

/**
 * Starts `nats-server` with JetStream, its store in `storeDir`, on loopback `port`, with `config` (a configuration
 * file: accounts, users) when given. Without a binary it is built with Go when `install` allows (the dev runner;
 * never in tests, which reach no network).
 */
export async function startNatsServer(
  port: number,
  storeDir: string,
  { install = true, config }: { install?: boolean; config?: string } = {},
): Promise<ChildProcess> {
  const binary = findBinary("nats-server", goBinDirs()) ?? (install ? installNatsServer() : undefined);
  if (!binary) {
    throw new UserError(
      "nats-server was not found. Install it with `go install github.com/nats-io/nats-server/v2@v2.10.22` " +
        "(then add $(go env GOPATH)/bin to PATH; `bash .ci/run` does it), or set NATS_URL to a running server.",
    );
  }
  const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir, ...(config ? ["-c", config] : [])];
  const child = spawn(binary, args, {
    stdio: ["ignore", "ignore", "pipe"],
  });
  await waitForPort(port, "127.0.0.1", 10_000, child);
  // Its log is not shown; drained so a full pipe never stalls the server.
  child.stderr?.resume();
  return child;
}

export const NATS_SERVER_MODULE = "github.com/nats-io/nats-server/v2@v2.10.22";

/** On a machine with Go and no nats-server, builds one (once, into $(go env GOPATH)/bin). */
function installNatsServer(): string | undefined {
  if (!findBinary("go")) return undefined;
  process.stdout.write(`nats-server not found: building it with \`go install ${NATS_SERVER_MODULE}\` (once, about a minute)…\n`);
  try {
    execFileSync("go", ["install", NATS_SERVER_MODULE], { stdio: ["ignore", "inherit", "inherit"] });
  } catch {
    return undefined;
  }
  return findBinary("nats-server", goBinDirs());
}

/** An error meant for a person: printed as one message, without a stack trace. */
export class UserError extends Error {}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 12_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
