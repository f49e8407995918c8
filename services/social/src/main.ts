import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  SocialCommentCreate,
  SocialCommentCreated,
  SocialCommentDelete,
  SocialCommentDeleted,
  SocialLikeAdded,
  SocialLikeRemoved,
  SocialLikeSet,
  SocialLikeUnset,
  StorageObjectCreated,
  StorageObjectDeleted,
} from "@snapmesh/events";
import {
  askPermission,
  badRequest,
  forbidden,
  type Handler,
  loadConfig,
  notFound,
  RateLimiter,
  runMigrations,
  runService,
  Service,
} from "@snapmesh/runtime";
import type { Request } from "express";
import { z } from "zod";
import { type SocialConfig, socialConfigSchema } from "./config.js";
import {
  addLike,
  type CommentRow,
  findComment,
  forgetPhoto,
  insertComment,
  pageComments,
  photoOwner,
  recordPhoto,
  removeLike,
  socialSummary,
  softDeleteComment,
} from "./store.js";
import { normaliseComment } from "./text.js";

export { type SocialConfig, socialConfigSchema };

const MIGRATIONS = fileURLToPath(new URL("../migrations", import.meta.url));
const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,24}$/)
    .optional(),
});
const encodeCursor = (seq: string) => Buffer.from(seq).toString("base64url");
const decodeCursor = (cursor: string) => {
  const seq = Buffer.from(cursor, "base64url").toString();
  if (!/^\d{1,19}$/.test(seq)) throw badRequest("invalid_cursor", "the cursor is not one this service issued");
  return seq;
};

export function createSocialService(config: SocialConfig): Service {
  const service = new Service({ name: "social", schema: "social", migrations: MIGRATIONS, config });
  const likeLimit = new RateLimiter(config.SOCIAL_LIKE_LIMIT_PER_MINUTE, 60_000);
  const commentLimit = new RateLimiter(config.SOCIAL_COMMENT_LIMIT_PER_MINUTE, 60_000);

  // like.set and like.unset: the row change, the exact counter and the fact only when the state changed.
  const likeCommand =
    (on: boolean): Handler<{ photoId: string }, { photoId: string; likes: number; likedByMe: boolean }> =>
    async ({ photoId }, ctx) => {
      const user = ctx.requireUser();
      likeLimit.hit(user.id);
      const changed = on ? await addLike(ctx.tx, photoId, user.id) : await removeLike(ctx.tx, photoId, user.id);
      const { likes, likedByMe } = await socialSummary(ctx.tx, photoId, user.id);
      if (changed)
        await ctx.emit(on ? SocialLikeAdded : SocialLikeRemoved, { photoId, userId: user.id, likes }, { subject: photoId });
      return { photoId, likes, likedByMe };
    };
  service.command(SocialLikeSet, likeCommand(true));
  service.command(SocialLikeUnset, likeCommand(false));

  service.command(SocialCommentCreate, async (data, ctx) => {
    const user = ctx.requireUser();
    const text = normaliseComment(data.text, config.SOCIAL_MAX_COMMENT_CHARS);
    commentLimit.hit(user.id);
    if (config.SOCIAL_PERMISSION_CHECK === "1" && config.SNAPMESH_AUTH_URL) {
      const resource = `photo:${data.photoId}`;
      const answer = await askPermission(
        config.SNAPMESH_AUTH_URL,
        `Bearer ${user.token}`,
        "comment",
        resource,
        config.SOCIAL_PERMISSION_TIMEOUT_MS,
      );
      if (!answer.allowed)
        throw forbidden(`not allowed to comment on ${resource}`, "permission_denied", { reason: answer.reason });
    }
    if (data.parentId) {
      const parent = await findComment(ctx.tx, data.parentId);
      if (!parent || parent.photoId !== data.photoId)
        throw badRequest("invalid_parent", "the parent comment is not on this photo");
      if (parent.parentId) throw badRequest("invalid_parent", "replies go one level deep: reply to the top comment");
    }
    const { row, created } = await insertComment(ctx.tx, {
      id: randomUUID(),
      photoId: data.photoId,
      authorId: user.id,
      parentId: data.parentId ?? null,
      text,
      idempotencyKey: data.idempotencyKey ?? null,
    });
    const comment = toComment(row);
    if (created) await ctx.emit(SocialCommentCreated, comment, { subject: data.photoId });
    return comment;
  });

  service.command(SocialCommentDelete, async ({ commentId }, ctx) => {
    const user = ctx.requireUser();
    const comment = await findComment(ctx.tx, commentId, true);
    if (!comment || comment.deleted) throw notFound(`no comment '${commentId}'`, "comment_not_found");
    const owner = await photoOwner(ctx.tx, comment.photoId);
    if (comment.authorId !== user.id && owner !== user.id) {
      throw forbidden("only the comment's author or the photo's owner may delete it", "not_allowed");
    }
    await softDeleteComment(ctx.tx, comment, user.id);
    const fact = { id: comment.id, photoId: comment.photoId, deletedBy: user.id };
    await ctx.emit(SocialCommentDeleted, fact, { subject: comment.photoId });
    return fact;
  });

  // Owners never change once recorded: a fact naming another owner for a known photo is logged, not applied.
  service.on(StorageObjectCreated, async (data, ctx) => {
    if (!(await recordPhoto(ctx.tx, data.key, data.owner)))
      ctx.log.warn({ photoId: data.key, claimed: data.owner }, "photo owner mismatch: fact ignored");
  });
  service.on(StorageObjectDeleted, async (data, ctx) => {
    if (!(await forgetPhoto(ctx.tx, data.key, data.owner)))
      ctx.log.warn({ photoId: data.key, claimed: data.owner }, "photo owner mismatch: fact ignored");
  });

  const photoParam = (req: Request) => String(req.params.photoId);
  service.rest("put", "/v1/photos/:photoId/like", SocialLikeSet, (req) => ({ photoId: photoParam(req) }));
  service.rest("delete", "/v1/photos/:photoId/like", SocialLikeUnset, (req) => ({ photoId: photoParam(req) }));
  service.rest(
    "post",
    "/v1/photos/:photoId/comments",
    SocialCommentCreate,
    (req) => ({ ...req.body, photoId: photoParam(req) }),
    {
      status: 201,
    },
  );
  service.rest("delete", "/v1/comments/:commentId", SocialCommentDelete, (req) => ({ commentId: req.params.commentId }));
  service.app.get("/v1/photos/:photoId/social", async (req, res) => {
    const user = await service.registry.userFrom(req.header("authorization"));
    res.json(await socialSummary(service.db, photoParam(req), user?.id));
  });
  service.app.get("/v1/photos/:photoId/comments", async (req, res) => {
    const q = pageQuery.safeParse(req.query);
    if (!q.success)
      throw badRequest("invalid_query", "limit is 1-100; cursor comes from a previous page", { issues: q.error.issues });
    const page = await pageComments(
      service.db,
      photoParam(req),
      q.data.limit,
      q.data.cursor ? decodeCursor(q.data.cursor) : undefined,
    );
    const last = page.items.at(-1);
    res.json({ items: page.items.map(toComment), nextCursor: page.more && last ? encodeCursor(last.seq) : null });
  });
  return service;
}

/** The public shape of a comment: the row without its internal keyset position. */
function toComment({ seq: _seq, ...comment }: CommentRow) {
  return comment;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === "migrate") await runMigrations({ name: "social", schema: "social", migrations: MIGRATIONS });
  else await runService(createSocialService(loadConfig(socialConfigSchema)));
}
