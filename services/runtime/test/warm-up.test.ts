import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("warmUp", () => {
  // The image's build runs it before writing the code cache: it must start a service with nothing reachable, answer
  // its own requests, stop, and leave nothing open (the build's process then exits by itself).
  it("starts and stops a bare service against refused NATS and PostgreSQL, and the process exits by itself", async () => {
    const script = 'import { warmUp } from "./src/warm-up.ts"; await warmUp(); console.log("warmed up");';
    // execFile settles when the process has exited: a server, pool, reconnect or timer left behind keeps it alive
    // until the timeout, which fails the test.
    const { stdout } = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: new URL("..", import.meta.url).pathname,
      timeout: 30_000,
    });
    expect(stdout).toBe("warmed up\n");
  }, 40_000);
});
