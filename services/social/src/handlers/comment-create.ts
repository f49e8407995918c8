import { randomUUID } from "node:crypto";
import { type DataOf, type SocialCommentCreate, SocialCommentCreated } from "@snapmesh/events";
import { badRequest, forbidden, type HandlerContext, type ReplyData } from "@snapmesh/runtime";
import type { SocialDeps } from "../deps.js";
import { findComment, insertComment, toComment } from "../store.js";
import { normaliseComment } from "../text.js";

export async function commentCreate(
  data: DataOf<typeof SocialCommentCreate>,
  ctx: HandlerContext,
  deps: SocialDeps,
): Promise<ReplyData<typeof SocialCommentCreate>> {
  const user = ctx.requireUser();
  const text = normaliseComment(data.text, deps.config.SOCIAL_MAX_COMMENT_CHARS);
  deps.commentLimit.hit(user.id);
  const resource = `photo:${data.photoId}`;
  const answer = await deps.mayComment(user.token, resource);
  if (!answer.allowed) throw forbidden(`not allowed to comment on ${resource}`, "permission_denied", { reason: answer.reason });
  if (data.parentId) {
    const parent = await findComment(ctx.tx, data.parentId);
    if (!parent || parent.photoId !== data.photoId) throw badRequest("invalid_parent", "the parent comment is not on this photo");
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
}
