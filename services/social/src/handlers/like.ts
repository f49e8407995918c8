import { type DataOf, SocialLikeAdded, SocialLikeRemoved, type SocialLikeSet } from "@snapmesh/events";
import type { HandlerContext, ReplyData } from "@snapmesh/runtime";
import type { SocialDeps } from "../deps.js";
import { writeLike } from "../store.js";

type LikeData = DataOf<typeof SocialLikeSet>;
type LikeReply = ReplyData<typeof SocialLikeSet>;

/** like.set and like.unset: the row change, the exact counter, and a fact only when the state changed. */
async function setLike(on: boolean, { photoId }: LikeData, ctx: HandlerContext, deps: SocialDeps): Promise<LikeReply> {
  const user = ctx.requireUser();
  deps.likeLimit.hit(user.id);
  const { changed, likes } = await writeLike(ctx.tx, photoId, user.id, on);
  if (changed)
    await ctx.emit(on ? SocialLikeAdded : SocialLikeRemoved, { photoId, userId: user.id, likes }, { subject: photoId });
  return { photoId, likes, likedByMe: on };
}

export const likeSet = (data: LikeData, ctx: HandlerContext, deps: SocialDeps) => setLike(true, data, ctx, deps);
export const likeUnset = (data: LikeData, ctx: HandlerContext, deps: SocialDeps) => setLike(false, data, ctx, deps);
