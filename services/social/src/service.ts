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
import { defineService, onCommand, onFact, type RouteRequest, rest } from "@snapmesh/runtime";
import { socialConfigSchema } from "./config.js";
import { socialDeps } from "./deps.js";
import { commentCreate } from "./handlers/comment-create.js";
import { commentDelete } from "./handlers/comment-delete.js";
import { likeSet, likeUnset } from "./handlers/like.js";
import { photoCreated, photoDeleted } from "./handlers/photo-facts.js";
import { photoComments, photoSummary } from "./routes/queries.js";

const photo = (req: RouteRequest) => ({ photoId: req.params.photoId });

/** Likes and comments on photos. */
export const social = defineService({
  name: "social",
  config: socialConfigSchema,
  migrations: new URL("../migrations", import.meta.url),
  needs: ["db"],
  events: [SocialLikeAdded, SocialLikeRemoved, SocialCommentCreated, SocialCommentDeleted],
  deps: socialDeps,
  handlers: [
    onCommand(SocialLikeSet, likeSet),
    onCommand(SocialLikeUnset, likeUnset),
    onCommand(SocialCommentCreate, commentCreate),
    onCommand(SocialCommentDelete, commentDelete),
    onFact(StorageObjectCreated, photoCreated),
    onFact(StorageObjectDeleted, photoDeleted),
  ],
  routes: [
    rest.command("put", "/v1/photos/:photoId/like", SocialLikeSet, photo),
    rest.command("delete", "/v1/photos/:photoId/like", SocialLikeUnset, photo),
    rest.command(
      "post",
      "/v1/photos/:photoId/comments",
      SocialCommentCreate,
      (req) => ({ ...(req.body as object), ...photo(req) }),
      {
        status: 201,
      },
    ),
    rest.command("delete", "/v1/comments/:commentId", SocialCommentDelete, (req) => ({ commentId: req.params.commentId })),
    rest.query("/v1/photos/:photoId/social", photoSummary),
    rest.query("/v1/photos/:photoId/comments", photoComments),
  ],
});
