// Regression test for issue 13 §5: auth's signing keys fail as config errors, through runService (no own try/catch).
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runMainToExit, scratchDir } from "../../../test/support/index.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

const startMain = (env: Record<string, string>) =>
  runMainToExit(MAIN, { DATABASE_URL: "pglite://memory", EVENT_SINK: "none", ...env });

const problems = (stderr: string) => stderr.split("\n").filter((line) => line.startsWith("  - "));

describe("auth configuration errors", () => {
  it("AUTH_SIGNING_KEYS that is not a key set exits 78 with one line naming it", async () => {
    const { code, stderr } = await startMain({ AUTH_SIGNING_KEYS: '{"keys":[]}' });
    expect(code).toBe(78);
    expect(problems(stderr)).toEqual(["  - AUTH_SIGNING_KEYS: the signing key set has no keys"]);
    expect(stderr).not.toContain("    at ");
  });

  it("an unreadable AUTH_SIGNING_KEYS_FILE exits 78 naming it", async () => {
    const { code, stderr } = await startMain({ AUTH_SIGNING_KEYS_FILE: `${scratchDir("auth-keys")}/missing.json` });
    expect(code).toBe(78);
    expect(problems(stderr)).toHaveLength(1);
    expect(problems(stderr)[0]).toMatch(/^ {2}- AUTH_SIGNING_KEYS_FILE: ENOENT/);
  });

  it("no signing keys at all exits 78 naming AUTH_SIGNING_KEYS", async () => {
    const { code, stderr } = await startMain({});
    expect(code).toBe(78);
    expect(problems(stderr)).toHaveLength(1);
    expect(problems(stderr)[0]).toMatch(/^ {2}- AUTH_SIGNING_KEYS: /);
  });
});
