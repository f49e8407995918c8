// `main purge` is what the chart's CronJob runs: one purge, then exit 0 (a CronJob counts any other code as failed).
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { isolatedEnv, runMainToExit } from "../../../test/support/index.ts";
import { openDatabase } from "../../runtime/src/internal.ts";
import { givenCode } from "./handlers/fixtures.ts";

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url));

it("`main purge` removes the expired codes and exits 0", async () => {
  const env = await isolatedEnv({ SNAPMESH_STORAGE_URL: "http://127.0.0.1:9", SHARECODE_PURGE_GRACE_SECONDS: "0" });
  expect(await runMainToExit(MAIN, env, ["migrate"])).toMatchObject({ code: 0 });
  const db = await openDatabase(env.DATABASE_URL!);
  try {
    const [live, expired] = await db.transaction(async (tx) => [
      await givenCode(tx),
      await givenCode(tx, { expiredSecondsAgo: 1 }),
    ]);
    const run = await runMainToExit(MAIN, env, ["purge"]);
    expect(run, run.stderr).toMatchObject({ code: 0 });
    const { rows } = await db.query<{ code: string }>("SELECT code FROM sharecode.codes WHERE code = ANY($1)", [[live, expired]]);
    expect(rows.map((r) => r.code)).toEqual([live]);
  } finally {
    await db.close();
  }
});
