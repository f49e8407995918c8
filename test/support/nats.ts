import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer, stopChild } from "../../scripts/src/processes.ts";
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
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "snapmesh-nats-"));
  const child = await startNatsServer(port, dir, { install: false });
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
