import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database } from "../../../runtime/src/internal.ts";
import { RateLimiter } from "../../../runtime/src/internal.ts";
import type { SocialDeps } from "../../src/deps.ts";
import { likeSet, likeUnset } from "../../src/handlers/like.ts";
import { social } from "../../src/service.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(social);
});
afterAll(() => db?.close());

const deps = (likesPerMinute = 100): SocialDeps => ({
  config: { SOCIAL_MAX_COMMENT_CHARS: 100 },
  likeLimit: new RateLimiter(likesPerMinute, 60_000),
  commentLimit: new RateLimiter(100, 60_000),
  mayComment: async () => ({ allowed: true }),
});

describe("like.set and like.unset", () => {
  it("count each user once and emit a fact only when the state changes", () =>
    inRolledBackTx(db, async (tx) => {
      const d = deps();
      const ann = handlerContext(tx, { user: { id: "ann" } });
      const bob = handlerContext(tx, { user: { id: "bob" } });
      expect(await likeSet({ photoId: "p1" }, ann, d)).toEqual({ photoId: "p1", likes: 1, likedByMe: true });
      expect(await likeSet({ photoId: "p1" }, ann, d)).toEqual({ photoId: "p1", likes: 1, likedByMe: true });
      expect(await likeSet({ photoId: "p1" }, bob, d)).toEqual({ photoId: "p1", likes: 2, likedByMe: true });
      expect(await likeUnset({ photoId: "p1" }, ann, d)).toEqual({ photoId: "p1", likes: 1, likedByMe: false });
      expect(await likeUnset({ photoId: "p1" }, ann, d)).toEqual({ photoId: "p1", likes: 1, likedByMe: false });
      expect(ann.emitted.map((e) => [e.type, e.data])).toEqual([
        ["snapmesh.social.like.added", { photoId: "p1", userId: "ann", likes: 1 }],
        ["snapmesh.social.like.removed", { photoId: "p1", userId: "ann", likes: 1 }],
      ]);
      expect(bob.emitted).toHaveLength(1);
    }));

  it("needs a caller", () =>
    inRolledBackTx(db, async (tx) => {
      await expect(likeSet({ photoId: "p2" }, handlerContext(tx), deps())).rejects.toMatchObject({ code: "unauthorized" });
    }));

  it("rate-limits per user", () =>
    inRolledBackTx(db, async (tx) => {
      const d = deps(1);
      const ctx = handlerContext(tx, { user: { id: "fast" } });
      await likeSet({ photoId: "p3" }, ctx, d);
      await expect(likeUnset({ photoId: "p3" }, ctx, d)).rejects.toMatchObject({ status: 429 });
    }));
});
