import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import { appError, type Database } from "../../../runtime/src/internal.ts";
import { imageKeyOf } from "../../src/codes.ts";
import { create } from "../../src/handlers/create.ts";
import { shareCode } from "../../src/service.ts";
import { decodeQr } from "../qr.ts";
import { recordingStorage, testDeps } from "./fixtures.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(shareCode);
});
afterAll(async () => {
  await db?.close();
});

const creator = { id: "creator", token: "creator-token" };

describe("sharecode.create", () => {
  it("stores the row, puts the QR image in storage as the caller, signs its URL and emits created", () =>
    inRolledBackTx(db, async (tx) => {
      const storage = recordingStorage();
      const deps = testDeps({ storage, config: { SHARECODE_CONTENT_TEMPLATE: "https://app.example/s/{code}" } });
      const ctx = handlerContext(tx, { user: creator });
      const made = await create({ page: "pages/album/index", params: { albumId: "a1" }, ttlSeconds: 3600 }, ctx, deps);

      expect(made.code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}$/);
      const key = imageKeyOf(made.code);
      expect(made).toMatchObject({
        imageUrl: `https://storage.test/v1/objects/${key}?sig=x`,
        createdBy: "creator",
        page: "pages/album/index",
      });
      expect(Math.abs(Date.parse(made.expiresAt!) - (Date.now() + 3600_000))).toBeLessThan(60_000);
      const { rows } = await tx.query(
        "SELECT page, params, created_by, provider, image_key FROM sharecode.codes WHERE code = $1",
        [made.code],
      );
      expect(rows).toEqual([
        { page: "pages/album/index", params: { albumId: "a1" }, created_by: "creator", provider: "qrcode", image_key: key },
      ]);
      const [put, sign, ...rest] = storage.calls;
      expect(put).toMatchObject({
        op: "put",
        authorization: "Bearer creator-token",
        key,
        idempotencyId: `sharecode-image-${made.code}`,
      });
      expect(decodeQr((put as { png: Buffer }).png)).toBe(`https://app.example/s/${made.code}`);
      // The image URL lives no longer than the code, and no longer than the configured bound.
      expect(sign).toEqual({ op: "signUrl", authorization: "Bearer creator-token", key, ttlSeconds: 3600 });
      expect(rest).toEqual([]);
      expect(ctx.emitted).toEqual([{ type: "snapmesh.sharecode.created", data: made, subject: made.code }]);
    }));

  it("on rollback deletes the image it stored, as the caller (the compensation)", () =>
    inRolledBackTx(db, async (tx) => {
      const storage = recordingStorage();
      const ctx = handlerContext(tx, { user: creator });
      const made = await create({ page: "pages/p", params: {} }, ctx, testDeps({ storage }));
      expect(storage.calls.filter((c) => c.op === "delete")).toEqual([]);
      await ctx.rollback();
      expect(storage.calls.at(-1)).toEqual({ op: "delete", authorization: "Bearer creator-token", key: imageKeyOf(made.code) });
    }));

  it("fails when storage cannot sign the URL after storing the image, and the rollback deletes that image", () =>
    inRolledBackTx(db, async (tx) => {
      const down = appError("storage_unavailable", "storage could not sign");
      const storage = recordingStorage({ failSign: down });
      const ctx = handlerContext(tx, { user: creator });
      await expect(create({ page: "pages/p", params: {} }, ctx, testDeps({ storage }))).rejects.toBe(down);
      expect(ctx.emitted).toEqual([]);
      const put = storage.calls.find((c) => c.op === "put")!;
      await ctx.rollback();
      expect(storage.calls.at(-1)).toEqual({ op: "delete", authorization: "Bearer creator-token", key: put.key });
    }));

  it("renders with WeChat when asked and configured, storing what WeChat drew", () =>
    inRolledBackTx(db, async (tx) => {
      const drawn: Array<{ scene: string; page: string }> = [];
      const png = Buffer.from("wechat-png");
      const wechat = {
        render: async (scene: string, page: string) => {
          drawn.push({ scene, page });
          return png;
        },
      };
      const storage = recordingStorage();
      const ctx = handlerContext(tx, { user: creator });
      const made = await create(
        { page: "pages/album/index", params: {}, provider: "wechat" },
        ctx,
        testDeps({ storage, wechat }),
      );
      expect(drawn).toEqual([{ scene: made.code, page: "pages/album/index" }]);
      expect(storage.calls[0]).toMatchObject({ op: "put", png });
      const { rows } = await tx.query("SELECT provider FROM sharecode.codes WHERE code = $1", [made.code]);
      expect(rows).toEqual([{ provider: "wechat" }]);
    }));

  it("refuses before storing anything: no caller (401), params too large (413), WeChat not configured (403)", () =>
    inRolledBackTx(db, async (tx) => {
      const storage = recordingStorage();
      const deps = testDeps({ storage, config: { SHARECODE_MAX_PARAMS_BYTES: 100 } });
      const refusals = [
        [handlerContext(tx), { page: "pages/p", params: {} }, { status: 401 }],
        [
          handlerContext(tx, { user: creator }),
          { page: "pages/p", params: { blob: "x".repeat(100) } },
          { status: 413, code: "params_too_large" },
        ],
        [
          handlerContext(tx, { user: creator }),
          { page: "pages/p", params: {}, provider: "wechat" as const },
          { status: 403, code: "provider_disabled" },
        ],
      ] as const;
      for (const [ctx, data, error] of refusals) {
        await expect(create(data, ctx, deps)).rejects.toMatchObject(error);
        expect(ctx.emitted).toEqual([]);
      }
      expect(storage.calls).toEqual([]);
      expect((await tx.query("SELECT 1 FROM sharecode.codes")).rowCount).toBe(0);
    }));
});
