import { type ChildProcess, spawn } from "node:child_process";
import { findBinary, goBinDirs, waitForPort } from "../../scripts/src/processes.ts";
import { freePort } from "../../scripts/src/proxy.ts";
import type { RunningServer } from "./nats.ts";

export const S3_SERVER_INSTALL = "go install github.com/johannesboyne/gofakes3/cmd/gofakes3@v1.2.0";

/**
 * An S3-compatible server program on loopback (gofakes3, a Go S3 server, in memory): undefined when it
 * is not installed, so S3 tests can skip with a clear message. `bash .ci/run` installs it.
 */
export async function s3Server(): Promise<(RunningServer & { bucket: string }) | undefined> {
  const binary = findBinary("gofakes3", goBinDirs());
  if (!binary) return undefined;
  const port = await freePort();
  const child: ChildProcess = spawn(
    binary,
    ["-backend", "memory", "-host", `127.0.0.1:${port}`, "-initialbucket", "snapmesh-test", "-autobucket"],
    {
      stdio: "ignore",
    },
  );
  await waitForPort(port, "127.0.0.1", 10_000, child);
  return {
    url: `http://127.0.0.1:${port}`,
    bucket: "snapmesh-test",
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await new Promise((r) => child.once("exit", r));
      }
    },
  };
}
