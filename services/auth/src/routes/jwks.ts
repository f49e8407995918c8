import { httpReply, type QueryContext, type RouteRequest } from "@snapmesh/runtime";
import type { AuthDeps } from "../deps.js";

/** `GET /.well-known/jwks.json`: the public half of every key in the ring, so tokens of a previous key keep verifying. */
export const jwks = async (_req: RouteRequest, _ctx: QueryContext, deps: Pick<AuthDeps, "keys">) =>
  httpReply({ status: 200, headers: { "cache-control": "public, max-age=300" }, json: deps.keys.jwks() });
