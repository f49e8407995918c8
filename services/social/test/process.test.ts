// The process entry (`main.ts` -> defineService's main): configuration errors exit 78 with one line per variable,
// for the service and for `main migrate`; an unknown task exits 64.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runMainToExit } from "../../../test/support/index.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));
const problems = (stderr: string) => stderr.split("\n").filter((line) => line.startsWith("  - "));

describe("social's process entry", () => {
  it("exits 78 naming each bad variable, without a stack trace", async () => {
    const { code, stderr } = await runMainToExit(MAIN, { PORT: "http", SOCIAL_MAX_COMMENT_CHARS: "0" });
    expect(code).toBe(78);
    expect(problems(stderr).map((p) => p.split(":")[0])).toEqual(
      expect.arrayContaining(["  - PORT", "  - DATABASE_URL", "  - SOCIAL_MAX_COMMENT_CHARS"]),
    );
    expect(stderr).not.toContain("    at ");
  });

  it("`main migrate` needs only the base configuration, and exits 78 without it", async () => {
    const { code, stderr } = await runMainToExit(MAIN, { SOCIAL_MAX_COMMENT_CHARS: "0" }, ["migrate"]);
    expect(code).toBe(78);
    expect(problems(stderr)).toEqual(["  - DATABASE_URL: required but not set"]);
  });

  it("`main <unknown>` exits 64 naming the tasks there are", async () => {
    const { code, stderr } = await runMainToExit(MAIN, { DATABASE_URL: "pglite://memory" }, ["frobnicate"]);
    expect(code).toBe(64);
    expect(stderr).toContain("one of: migrate");
  });
});
