import { type AuthSessionCreate, AuthUserSignedIn, type DataOf } from "@snapmesh/events";
import { forbidden, type HandlerContext, type ReplyData, wechatApp } from "@snapmesh/runtime";
import type { AuthDeps } from "../deps.js";
import { upsertUser } from "../users.js";
import { code2Session } from "../wechat.js";

export type SessionDeps = Pick<AuthDeps, "config" | "keys" | "egress" | "oidc" | "signInsBySubject" | "signInsByIp">;

/**
 * `snapmesh.auth.session.create`: proves the caller's identity with a provider, finds or creates the user,
 * and signs a session token. It runs again for a repeated event (the binding has `{ dedupe: false }`), so it
 * must stay safe to repeat: the upsert only counts one more sign-in.
 */
export async function sessionCreate(
  data: DataOf<typeof AuthSessionCreate>,
  ctx: HandlerContext,
  deps: SessionDeps,
): Promise<ReplyData<typeof AuthSessionCreate>> {
  const { config } = deps;
  // Here, not in a REST middleware, so every door (REST, CloudEvents, each entry of a batch) counts.
  deps.signInsByIp.hit(ctx.clientIp ?? "unknown");
  let subject: string;
  switch (data.provider) {
    case "dev":
      if (config.SNAPMESH_DEV_AUTH !== "1") throw forbidden("the dev provider is disabled", "provider_disabled");
      subject = data.userId;
      break;
    case "wechat": {
      const app = wechatApp(config);
      if (!app) throw forbidden("WeChat sign-in is not configured", "provider_disabled");
      deps.signInsBySubject.hit(`wechat-code:${data.code}`);
      const id = await code2Session(deps.egress, app, data.code);
      subject = id.unionid ?? id.openid;
      break;
    }
    case "oidc": {
      if (!deps.oidc) throw forbidden("OIDC sign-in is not configured", "provider_disabled");
      subject = (await deps.oidc.verify(data.idToken)).subject;
      break;
    }
  }
  deps.signInsBySubject.hit(`${data.provider}:${subject}`);
  const user = await upsertUser(ctx.tx, data.provider, subject);
  await ctx.emit(AuthUserSignedIn, { userId: user.id, provider: data.provider, firstTime: user.firstTime });
  const session = await deps.keys.sign(user.id, config.SNAPMESH_JWT_ISSUER, config.AUTH_TOKEN_TTL_SECONDS, {
    prv: data.provider,
  });
  return { ...session, user: { id: user.id } };
}
