import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database, Queryable } from "../../../runtime/src/internal.ts";
import { objectDelete } from "../../src/handlers/object-delete.ts";
import { objectPut } from "../../src/handlers/object-put.ts";
import { storage } from "../../src/service.ts";
import { png } from "../images.ts";
import { unitDeps, user } from "./support.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(storage);
});
afterAll(async () => {
  await db?.close();
});

const deletedAt = async (tx: Queryable, key: string) =>
  (await tx.query<{ deletedAt: Date | null }>('SELECT deleted_at AS "deletedAt" FROM storage.objects WHERE key = $1', [key]))
    .rows[0]?.deletedAt;

describe("object.delete", () => {
  it("put then delete emits StorageObjectCreated then StorageObjectDeleted and marks the row deleted", async () => {
    const deps = unitDeps();
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx, { user: user("alice") });
      await objectPut({ key: "d/p.png", data: png(400).toString("base64") }, ctx, deps);
      expect(await objectDelete({ key: "d/p.png" }, ctx, deps)).toEqual({ key: "d/p.png" });
      expect(ctx.emitted.map((e) => [e.type, e.subject])).toEqual([
        ["snapmesh.storage.object.created", "d/p.png"],
        ["snapmesh.storage.object.deleted", "d/p.png"],
      ]);
      expect(ctx.emitted[1]!.data).toEqual({ key: "d/p.png", owner: "alice" });
      expect(await deletedAt(tx, "d/p.png")).toBeInstanceOf(Date);
    });
  });

  it("lets only the owner delete: another user gets not_owner and the object stays", async () => {
    const deps = unitDeps();
    await inRolledBackTx(db, async (tx) => {
      await objectPut(
        { key: "d/mine.png", data: png(400).toString("base64") },
        handlerContext(tx, { user: user("alice") }),
        deps,
      );
      const bob = handlerContext(tx, { user: user("bob") });
      await expect(objectDelete({ key: "d/mine.png" }, bob, deps)).rejects.toMatchObject({ status: 403, code: "not_owner" });
      expect(bob.emitted).toEqual([]);
      expect(await deletedAt(tx, "d/mine.png")).toBeNull();
    });
  });

  it("answers object_not_found for a missing key and for one already deleted", async () => {
    const deps = unitDeps();
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx, { user: user("alice") });
      await expect(objectDelete({ key: "d/none.png" }, ctx, deps)).rejects.toMatchObject({
        status: 404,
        code: "object_not_found",
      });
      await objectPut({ key: "d/twice.png", data: png(400).toString("base64") }, ctx, deps);
      await objectDelete({ key: "d/twice.png" }, ctx, deps);
      await expect(objectDelete({ key: "d/twice.png" }, ctx, deps)).rejects.toMatchObject({ code: "object_not_found" });
      expect(ctx.emitted.filter((e) => e.type === "snapmesh.storage.object.deleted")).toHaveLength(1);
    });
  });
});
