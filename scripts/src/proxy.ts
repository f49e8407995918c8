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

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
