import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
  await waitForPort(port, child, () => stderr);
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
  throw new Error("tinyproxy is not installed: run `apt-get install -y tinyproxy` (the local egress gateway)");
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

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`tinyproxy exited: ${stderr()}`);
    const open = await new Promise<boolean>((resolve) => {
      const sock = connect(port, "127.0.0.1");
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`tinyproxy did not listen on ${port}: ${stderr()}`);
}
