import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database } from "../../../runtime/src/internal.ts";
import { resolve } from "../../src/handlers/resolve.ts";
import { shareCode } from "../../src/service.ts";
import { givenCode } from "./fixtures.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(shareCode);
});
afterAll(async () => {
  await db?.close();
});

describe("sharecode.resolve", () => {
  it("answers code_not_found (404) for an unknown code and for text that cannot be a code, and emits nothing", () =>
    inRolledBackTx(db, async (tx) => {
      for (const code of ["ZZZZZZZZZZ", "not-a-code!"]) {
        const ctx = handlerContext(tx);
        await expect(resolve({ code }, ctx)).rejects.toMatchObject({ status: 404, code: "code_not_found" });
        expect(ctx.emitted).toEqual([]);
      }
    }));

  it("answers code_expired (410) for an expired code and counts no scan", () =>
    inRolledBackTx(db, async (tx) => {
      const code = await givenCode(tx, { expiredSecondsAgo: 1 });
      const ctx = handlerContext(tx);
      await expect(resolve({ code }, ctx)).rejects.toMatchObject({ status: 410, code: "code_expired" });
      expect(ctx.emitted).toEqual([]);
      const { rows } = await tx.query<{ scans: number }>("SELECT scans::int AS scans FROM sharecode.codes WHERE code = $1", [
        code,
      ]);
      expect(rows[0]!.scans).toBe(0);
    }));

  it("returns the payload of a live code typed loosely, counts each scan and emits a scanned fact each", () =>
    inRolledBackTx(db, async (tx) => {
      const code = await givenCode(tx, { page: "pages/album/index", params: { albumId: "a1" } });
      const typed = ` ${code.slice(0, 5).toLowerCase()}-${code.slice(5)} `;
      const first = handlerContext(tx);
      expect(await resolve({ code: typed }, first)).toMatchObject({
        code,
        page: "pages/album/index",
        params: { albumId: "a1" },
        scans: 1,
        imageStatus: "ok",
      });
      expect(first.emitted).toEqual([{ type: "snapmesh.sharecode.scanned", data: { code, scans: 1 }, subject: code }]);
      const second = handlerContext(tx);
      expect((await resolve({ code }, second)).scans).toBe(2);
      expect(second.emitted).toEqual([{ type: "snapmesh.sharecode.scanned", data: { code, scans: 2 }, subject: code }]);
    }));
});
