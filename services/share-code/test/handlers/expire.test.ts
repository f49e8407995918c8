import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database, Queryable } from "../../../runtime/src/internal.ts";
import { expire, purge } from "../../src/handlers/expire.ts";
import { shareCode } from "../../src/service.ts";
import { givenCode, testDeps } from "./fixtures.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(shareCode);
});
afterAll(async () => {
  await db?.close();
});

const remaining = async (tx: Queryable, codes: string[]) =>
  (await tx.query<{ code: string }>("SELECT code FROM sharecode.codes WHERE code = ANY($1) ORDER BY code", [codes])).rows.map(
    (r) => r.code,
  );

describe("the purge (task and sharecode.expire)", () => {
  it("removes codes expired for longer than the grace period and keeps the rest", () =>
    inRolledBackTx(db, async (tx) => {
      const live = await givenCode(tx);
      const inGrace = await givenCode(tx, { expiredSecondsAgo: 10 });
      const pastGrace = await givenCode(tx, { expiredSecondsAgo: 120 });
      const deps = testDeps({ config: { SHARECODE_PURGE_GRACE_SECONDS: 60 } });
      expect(await purge({ tx }, deps)).toEqual({ purged: 1 });
      expect(await remaining(tx, [live, inGrace, pastGrace])).toEqual([live, inGrace].sort());
    }));

  it("the expire command is the same purge and replies with its count", () =>
    inRolledBackTx(db, async (tx) => {
      const live = await givenCode(tx);
      const expired = [await givenCode(tx, { expiredSecondsAgo: 1 }), await givenCode(tx, { expiredSecondsAgo: 1 })];
      const ctx = handlerContext(tx, { producer: "test" });
      expect(await expire({}, ctx, testDeps())).toEqual({ purged: 2 });
      expect(await remaining(tx, [live, ...expired])).toEqual([live]);
      expect(ctx.emitted).toEqual([]);
    }));
});
