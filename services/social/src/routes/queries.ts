import { badRequest, type QueryContext, type RouteRequest } from "@snapmesh/runtime";
import { z } from "zod";
import { pageComments, socialSummary, toComment } from "../store.js";

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

/** `GET /v1/photos/{photoId}/social`: counts, and whether the caller (if any) likes it. */
export async function photoSummary(req: RouteRequest, ctx: QueryContext) {
  const user = await ctx.user();
  return ctx.read((db) => socialSummary(db, req.params.photoId!, user?.id));
}

/** `GET /v1/photos/{photoId}/comments?limit=&cursor=`: oldest first, keyset-paginated. */
export async function photoComments(req: RouteRequest, ctx: QueryContext) {
  const q = pageQuery.safeParse(req.query);
  if (!q.success)
    throw badRequest("invalid_query", "limit is 1-100; cursor comes from a previous page", { issues: q.error.issues });
  const after = q.data.cursor ? decodeCursor(q.data.cursor) : undefined;
  const page = await ctx.read((db) => pageComments(db, req.params.photoId!, q.data.limit, after));
  const last = page.items.at(-1);
  return { items: page.items.map(toComment), nextCursor: page.more && last ? encodeCursor(last.seq) : null };
}
