import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError, waitForPort } from "./processes.js";

export interface ForwardProxy {
  /** `http://127.0.0.1:<port>`: give it to EGRESS_PROXY. */
  url: string;
  /** The source address upstream servers see for proxied calls. */
  egressAddress: string;
  stop(): Promise<void>;
}

/**
 * Starts a real forward proxy (tinyproxy, from Debian's packages) listening on 127.0.0.1 whose outgoing
 * connections leave from `egressAddress` (a second loopback address): the local stand-in for the
 * egress gateway's fixed IP.
 */
export async function forwardProxy(egressAddress = "127.0.0.2"): Promise<ForwardProxy> {
  const binary = findTinyproxy();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-proxy-"));
  const conf = join(dir, "tinyproxy.conf");
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      "Listen 127.0.0.1",
      `Bind ${egressAddress}`,
      "Timeout 30",
      "MaxClients 200",
      "Allow 127.0.0.1",
      "DisableViaHeader No",
      "LogLevel Warning",
      ...(asRoot ? ["User nobody", "Group nogroup"] : []),
    ].join("\n"),
  );
  const child: ChildProcess = spawn(binary, ["-d", "-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  try {
    await waitForPort(port, "127.0.0.1", 10_000, child);
  } catch (err) {
    throw new Error(`tinyproxy did not start: ${(err as Error).message} ${stderr}`);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    egressAddress,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function findTinyproxy(): string {
  for (const candidate of ["tinyproxy", "/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]) {
    try {
      execFileSync(candidate, ["-v"], { stdio: "ignore" });
      return candidate;
    } catch {
      /* try the next */
    }
  }
  throw new UserError(
    "tinyproxy is not installed: run `apt-get install -y tinyproxy` (the local egress gateway), or set SNAPMESH_EGRESS=none",
  );
}

/**
 * A free port for a server started later by another process. Drawn below the kernel's ephemeral range
 * (32768+), where processes binding port 0 never land, so the gap between this check and the real bind
 * is not raced by them.
 */
export async function freePort(host = "0.0.0.0"): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await canBind(port, host)) return port;
  }
  throw new Error("no free port found between 20000 and 32000");
}

function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
