import { existsSync } from "node:fs";
import { request } from "node:http";

let cached: Promise<boolean> | undefined;

/** True when a Docker engine answers (testcontainers can run); asked once, quickly. */
export function dockerAvailable(): Promise<boolean> {
  cached ??= probe();
  return cached;
}

async function probe(): Promise<boolean> {
  if (process.env.SNAPMESH_TEST_DOCKER === "0") return false;
  if (process.env.DOCKER_HOST) return true;
  const socket = "/var/run/docker.sock";
  if (!existsSync(socket)) return false;
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: "/_ping", timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
