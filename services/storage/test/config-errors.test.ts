// Regression test for issue 13 §5: a bad STORAGE_SIGNING_KEYS is a config error like any other (exit 78, one line).
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runMainToExit } from "../../../test/support/index.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

const startMain = (env: Record<string, string>) => runMainToExit(MAIN, { DATABASE_URL: "pglite://memory", ...env });

describe("storage configuration errors", () => {
  it("a signing key shorter than 32 characters exits 78 with one line naming STORAGE_SIGNING_KEYS", async () => {
    const { code, stderr } = await startMain({ STORAGE_SIGNING_KEYS: "k:short" });
    expect(code).toBe(78);
    const problems = stderr.split("\n").filter((line) => line.startsWith("  - "));
    expect(problems).toEqual(["  - STORAGE_SIGNING_KEYS: signing key 'k' is shorter than 32 characters"]);
    expect(stderr).not.toContain("    at ");
  });

  it("a key without a kid is named the same way", async () => {
    const { code, stderr } = await startMain({ STORAGE_SIGNING_KEYS: "x".repeat(40), PORT: "http" });
    expect(code).toBe(78);
    expect(stderr).toContain("STORAGE_SIGNING_KEYS: each signing key must be 'kid:secret'");
    expect(stderr).toContain("PORT:");
    expect(stderr).not.toContain("    at ");
  });
});
