import { httpReply, type QueryContext, type RouteRequest } from "@snapmesh/runtime";
import type { AuthDeps } from "../deps.js";

/**
 * `GET /v1/sessions/providers`: the sign-in providers this auth accepts, with what a client needs to start each
 * (WeChat's app id, the OIDC issuer and audience; all public), so a client offers only those (the console's album
 * does). Nothing secret: the app secret never leaves auth.
 */
export const providers = async (_req: RouteRequest, _ctx: QueryContext, deps: Pick<AuthDeps, "config" | "oidc">) => {
  const { config } = deps;
  const list: Array<Record<string, string>> = [];
  if (config.SNAPMESH_DEV_AUTH === "1") list.push({ provider: "dev" });
  if (config.WECHAT_APP_ID && config.WECHAT_APP_SECRET) list.push({ provider: "wechat", appId: config.WECHAT_APP_ID });
  if (deps.oidc && config.OIDC_ISSUER && config.OIDC_AUDIENCE)
    list.push({ provider: "oidc", issuer: config.OIDC_ISSUER, audience: config.OIDC_AUDIENCE });
  return httpReply({ status: 200, headers: { "cache-control": "no-cache" }, json: { providers: list } });
};
