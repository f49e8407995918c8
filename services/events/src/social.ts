import { z } from "zod";
import { isoTime, photoId, userId } from "./common.js";
import { command, fact, reply } from "./define.js";

export const SocialLikeState = reply(
  "social",
  "snapmesh.social.like.state",
  "A photo's like state for the caller after like.set / like.unset.",
  () => z.object({ photoId, likes: z.number().int().nonnegative(), likedByMe: z.boolean() }),
);

export const SocialLikeSet = command(
  "social",
  "snapmesh.social.like.set",
  "Like a photo (idempotent).",
  () => z.object({ photoId }),
  SocialLikeState,
);
export const SocialLikeUnset = command(
  "social",
  "snapmesh.social.like.unset",
  "Take a like back (idempotent).",
  () => z.object({ photoId }),
  SocialLikeState,
);

export const comment = z.object({
  id: z.string(),
  photoId,
  authorId: userId,
  parentId: z.string().nullable().describe("the comment this one replies to (one level)"),
  text: z.string(),
  createdAt: isoTime,
  deleted: z.boolean(),
});

export const SocialCommentCreated = fact(
  "social",
  "snapmesh.social.comment.created",
  "A comment was posted (also the reply to comment.create).",
  () => comment,
);

export const SocialCommentCreate = command(
  "social",
  "snapmesh.social.comment.create",
  "Comment on a photo, or reply to a comment (one level).",
  () =>
    z.object({
      photoId,
      text: z.string().min(1).max(4000).describe("1 to 2000 characters after normalisation"),
      parentId: z.string().min(1).max(64).optional(),
      idempotencyKey: z.string().min(1).max(128).optional().describe("a retried post with the same key creates one comment"),
    }),
  SocialCommentCreated,
);

export const SocialCommentDeleted = fact(
  "social",
  "snapmesh.social.comment.deleted",
  "A comment was deleted (also the reply to comment.delete).",
  () => z.object({ id: z.string(), photoId, deletedBy: userId }),
);

export const SocialCommentDelete = command(
  "social",
  "snapmesh.social.comment.delete",
  "Delete a comment: by its author or the photo's owner.",
  () => z.object({ commentId: z.string().min(1).max(64) }),
  SocialCommentDeleted,
);

export const SocialLikeAdded = fact("social", "snapmesh.social.like.added", "A user liked a photo.", () =>
  z.object({ photoId, userId, likes: z.number().int() }),
);
export const SocialLikeRemoved = fact("social", "snapmesh.social.like.removed", "A user took a like back.", () =>
  z.object({ photoId, userId, likes: z.number().int() }),
);
