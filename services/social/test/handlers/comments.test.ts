import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database } from "../../../runtime/src/internal.ts";
import { RateLimiter } from "../../../runtime/src/internal.ts";
import type { SocialDeps } from "../../src/deps.ts";
import { commentCreate } from "../../src/handlers/comment-create.ts";
import { commentDelete } from "../../src/handlers/comment-delete.ts";
import { photoCreated, photoDeleted } from "../../src/handlers/photo-facts.ts";
import { social } from "../../src/service.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(social);
});
afterAll(() => db?.close());

const deps = (allowed = true): SocialDeps & { asked: string[] } => {
  const asked: string[] = [];
  return {
    asked,
    config: { SOCIAL_MAX_COMMENT_CHARS: 20 },
    likeLimit: new RateLimiter(100, 60_000),
    commentLimit: new RateLimiter(100, 60_000),
    mayComment: async (_token, resource) => {
      asked.push(resource);
      return allowed ? { allowed } : { allowed, reason: "not_album_member" };
    },
  };
};
const as = (tx: Parameters<typeof handlerContext>[0], id: string) => handlerContext(tx, { user: { id, token: `t-${id}` } });

describe("comment.create", () => {
  it("stores a comment, emits it, and a reply goes one level deep only", () =>
    inRolledBackTx(db, async (tx) => {
      const ctx = as(tx, "ann");
      const top = await commentCreate({ photoId: "p", text: "  hello  " }, ctx, deps());
      expect(top).toMatchObject({ photoId: "p", authorId: "ann", text: "hello", parentId: null });
      expect(ctx.emitted).toEqual([{ type: "snapmesh.social.comment.created", data: top, subject: "p" }]);
      const reply = await commentCreate({ photoId: "p", text: "re", parentId: top.id }, ctx, deps());
      expect(reply.parentId).toBe(top.id);
      await expect(commentCreate({ photoId: "p", text: "re-re", parentId: reply.id }, ctx, deps())).rejects.toMatchObject({
        code: "invalid_parent",
      });
      await expect(commentCreate({ photoId: "other", text: "x", parentId: top.id }, ctx, deps())).rejects.toMatchObject({
        code: "invalid_parent",
      });
    }));

  it("asks whether the caller may comment, and a refusal stores nothing", () =>
    inRolledBackTx(db, async (tx) => {
      const ctx = as(tx, "outsider");
      const d = deps(false);
      await expect(commentCreate({ photoId: "album-photo", text: "hi" }, ctx, d)).rejects.toMatchObject({
        code: "permission_denied",
        details: { reason: "not_album_member" },
      });
      expect(d.asked).toEqual(["photo:album-photo"]);
      expect(ctx.emitted).toEqual([]);
      const { rows } = await tx.query("SELECT 1 FROM social.comments WHERE author_id = 'outsider'");
      expect(rows).toEqual([]);
    }));

  it("refuses a comment over the length limit", () =>
    inRolledBackTx(db, async (tx) => {
      await expect(commentCreate({ photoId: "p", text: "x".repeat(21) }, as(tx, "ann"), deps())).rejects.toMatchObject({
        status: 400,
      });
    }));
});

describe("comment.delete", () => {
  it("lets the author or the photo's owner delete, nobody else", () =>
    inRolledBackTx(db, async (tx) => {
      await photoCreated({ key: "photos/olga/1.jpg", owner: "olga", size: 1, contentType: "image/jpeg" } as never, as(tx, "x"));
      const a = await commentCreate({ photoId: "photos/olga/1.jpg", text: "one" }, as(tx, "ann"), deps());
      const b = await commentCreate({ photoId: "photos/olga/1.jpg", text: "two" }, as(tx, "ann"), deps());
      await expect(commentDelete({ commentId: a.id }, as(tx, "eve"))).rejects.toMatchObject({ code: "not_allowed" });
      const byAuthor = as(tx, "ann");
      expect(await commentDelete({ commentId: a.id }, byAuthor)).toEqual({ id: a.id, photoId: a.photoId, deletedBy: "ann" });
      expect(byAuthor.emitted.map((e) => e.type)).toEqual(["snapmesh.social.comment.deleted"]);
      expect(await commentDelete({ commentId: b.id }, as(tx, "olga"))).toMatchObject({ deletedBy: "olga" });
      await expect(commentDelete({ commentId: a.id }, byAuthor)).rejects.toMatchObject({ code: "comment_not_found" });
    }));
});

describe("photo facts", () => {
  it("keep the first owner: a fact naming another owner changes nothing", () =>
    inRolledBackTx(db, async (tx) => {
      const fact = (owner: string) => ({ key: "photos/k.jpg", owner, size: 1, contentType: "image/jpeg" }) as never;
      await photoCreated(fact("kim"), as(tx, "x"));
      await photoCreated(fact("mallory"), as(tx, "x"));
      await photoDeleted(fact("mallory"), as(tx, "x"));
      const { rows } = await tx.query<{ owner: string }>("SELECT owner FROM social.photos WHERE photo_id = 'photos/k.jpg'");
      expect(rows).toEqual([{ owner: "kim" }]);
    }));
});
