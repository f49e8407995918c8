import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { isolatedEnv } from "../../../test/support/index.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

describe("auth's migration entry point", () => {
  it("`main.ts migrate` needs no signing keys and no dev mode (the Job gets no private key)", async () => {
    const env = await isolatedEnv({ SNAPMESH_DEV_AUTH: "0" });
    delete env.SNAPMESH_EVENT_SIGNING_KEYS;
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "migrate"], {
      env: { ...process.env, ...env, AUTH_SIGNING_KEYS: "", AUTH_SIGNING_KEYS_FILE: "" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += String(d);
    });
    const [code] = await once(child, "exit");
    expect(code, stderr).toBe(0);
    const client = new pg.Client({ connectionString: env.DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query("SELECT name FROM auth.schema_migrations WHERE name = '001_users'");
      expect(rows).toHaveLength(1);
    } finally {
      await client.end();
    }
  });
});
