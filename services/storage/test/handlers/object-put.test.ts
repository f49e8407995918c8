import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database, Queryable } from "../../../runtime/src/internal.ts";
import { objectPut } from "../../src/handlers/object-put.ts";
import { storage } from "../../src/service.ts";
import { png } from "../images.ts";
import { blobsIn, unitDeps, user } from "./support.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(storage);
});
afterAll(async () => {
  await db?.close();
});

const put = (key: string, bytes: Buffer, ctx: ReturnType<typeof handlerContext>, deps: ReturnType<typeof unitDeps>) =>
  objectPut({ key, contentType: "image/png", data: bytes.toString("base64") }, ctx, deps);
const row = async (tx: Queryable, key: string) =>
  (
    await tx.query<{ owner: string; sha256: string; blob: string; size: number }>(
      "SELECT owner, sha256, blob, size::float8 AS size FROM storage.objects WHERE key = $1",
      [key],
    )
  ).rows[0];

describe("object.put", () => {
  it("stores the bytes under a fresh blob, records the owner's row and emits StorageObjectCreated", async () => {
    const deps = unitDeps();
    const bytes = png(1200);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx, { user: user("alice") });
      const stored = await put("albums/a/p.png", bytes, ctx, deps);
      expect(stored).toEqual({
        key: "albums/a/p.png",
        size: 1200,
        contentType: "image/png",
        sha256,
        etag: `"${sha256.slice(0, 32)}"`,
      });
      const saved = await row(tx, "albums/a/p.png");
      expect(saved).toMatchObject({ owner: "alice", sha256, size: 1200 });
      const back = Buffer.concat(await (await deps.backend.get(saved!.blob)).toArray());
      expect(back.equals(bytes)).toBe(true);
      expect(ctx.emitted).toEqual([
        { type: "snapmesh.storage.object.created", data: { ...stored, owner: "alice" }, subject: "albums/a/p.png" },
      ]);
    });
  });

  it("refuses another user's put on the same key with not_owner and removes that user's blob", async () => {
    const deps = unitDeps();
    await inRolledBackTx(db, async (tx) => {
      const first = await put("shared/k.png", png(500), handlerContext(tx, { user: user("alice") }), deps);
      const bob = handlerContext(tx, { user: user("bob") });
      await expect(put("shared/k.png", png(700), bob, deps)).rejects.toMatchObject({ status: 403, code: "not_owner" });
      expect(bob.emitted).toEqual([]);
      expect(await row(tx, "shared/k.png")).toMatchObject({ owner: "alice", sha256: first.sha256 });
      expect(blobsIn(deps.dir)).toHaveLength(1);
    });
  });

  it("refuses an upload past the owner's quota with quota_exceeded; the object already stored is left alone", async () => {
    const deps = unitDeps({ STORAGE_USER_QUOTA_BYTES: "1500" });
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx, { user: user("carol") });
      await put("q/1.png", png(1000), ctx, deps);
      await expect(put("q/2.png", png(1000), ctx, deps)).rejects.toMatchObject({
        status: 413,
        code: "quota_exceeded",
        details: { quota: 1500, used: 1000 },
      });
      expect(await row(tx, "q/2.png")).toBeUndefined();
      expect(ctx.emitted.map((e) => e.subject)).toEqual(["q/1.png"]);
      expect(blobsIn(deps.dir)).toHaveLength(1);
      // Replacing one's own object counts only the new bytes.
      await expect(put("q/1.png", png(1400), ctx, deps)).resolves.toMatchObject({ size: 1400 });
    });
  });

  it("needs a caller", async () => {
    const deps = unitDeps();
    await inRolledBackTx(db, async (tx) => {
      await expect(put("anon.png", png(100), handlerContext(tx), deps)).rejects.toMatchObject({ status: 401 });
      expect(await row(tx, "anon.png")).toBeUndefined();
    });
  });
});
