import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database } from "../../../runtime/src/internal.ts";
import { imageKeyOf } from "../../src/codes.ts";
import { imageDeleted } from "../../src/handlers/image-deleted.ts";
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

const deleted = (key: string) => ({ key, owner: "creator" });

describe("storage.object.deleted", () => {
  it("marks the code whose image it names as imageStatus gone; the code keeps resolving", () =>
    inRolledBackTx(db, async (tx) => {
      const code = await givenCode(tx);
      const other = await givenCode(tx);
      await imageDeleted(deleted(imageKeyOf(code)), handlerContext(tx, { producer: "storage" }));
      expect(await resolve({ code }, handlerContext(tx))).toMatchObject({ code, imageStatus: "gone" });
      expect(await resolve({ code: other }, handlerContext(tx))).toMatchObject({ code: other, imageStatus: "ok" });
    }));
});
