import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBinary, goBinDirs, waitForPort } from "../../scripts/src/processes.ts";
import { freePort } from "../../scripts/src/proxy.ts";
import { dockerAvailable } from "./docker.ts";

export interface RunningServer {
  url: string;
  stop(): Promise<void>;
}

/** A NATS server with JetStream: NATS_URL; else a container (Docker engine); else a local nats-server. */
export async function nats(): Promise<RunningServer> {
  if (process.env.NATS_URL) return { url: process.env.NATS_URL, stop: async () => {} };
  if (await dockerAvailable()) {
    const { NatsContainer } = await import("@testcontainers/nats");
    const container = await new NatsContainer("nats:2.10").withJetStream().start();
    return {
      url: `nats://${container.getHost()}:${container.getMappedPort(4222)}`,
      stop: async () => void (await container.stop()),
    };
  }
  return localNatsServer();
}

async function localNatsServer(): Promise<RunningServer> {
  const binary = findBinary("nats-server", goBinDirs());
  if (!binary) {
    throw new Error(
      "no NATS for the tests: set NATS_URL, run a Docker engine, or install nats-server " +
        "(`go install github.com/nats-io/nats-server/v2@v2.10.22`; `bash .ci/run` does it)",
    );
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-nats-"));
  const child: ChildProcess = spawn(binary, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], {
    stdio: "ignore",
  });
  await waitForPort(port, "127.0.0.1", 15_000, child);
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
