import { type DataOf, type SocialCommentDelete, SocialCommentDeleted } from "@snapmesh/events";
import { forbidden, type HandlerContext, notFound, type ReplyData } from "@snapmesh/runtime";
import { findComment, photoOwner, softDeleteComment } from "../store.js";

/** The comment's author or the photo's owner may delete it; its text is gone, its place in the thread stays. */
export async function commentDelete(
  { commentId }: DataOf<typeof SocialCommentDelete>,
  ctx: HandlerContext,
): Promise<ReplyData<typeof SocialCommentDelete>> {
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
}
