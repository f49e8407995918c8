import { type AppError, appError, badRequest, type EgressClient, tooManyRequests, unavailable } from "@snapmesh/runtime";

export interface WechatIdentity {
  openid: string;
  unionid?: string;
}

interface Code2Session {
  openid?: string;
  unionid?: string;
  session_key?: string;
  errcode?: number;
  errmsg?: string;
}

/** Exchanges a mini-program login code for the user's openid (unionid when bound), through the egress client. */
export async function code2Session(
  egress: EgressClient,
  opts: { apiBase: string; appId: string; appSecret: string },
  code: string,
): Promise<WechatIdentity> {
  const url = new URL("/sns/jscode2session", opts.apiBase);
  url.search = new URLSearchParams({
    appid: opts.appId,
    secret: opts.appSecret,
    js_code: code,
    grant_type: "authorization_code",
  }).toString();
  const res = await egress.request(url.toString());
  if (res.status >= 500) throw unavailable("the WeChat API is unavailable; retry", "wechat_unavailable");
  const body = res.json<Code2Session>();
  if (body.errcode && body.errcode !== 0) throw wechatError(body.errcode, body.errmsg ?? "");
  if (!body.openid) throw appError("wechat_bad_response", "the WeChat API answered without an openid");
  return { openid: body.openid, ...(body.unionid ? { unionid: body.unionid } : {}) };
}

/** WeChat's error codes (code2Session) as snapmesh errors. */
export function wechatError(errcode: number, errmsg: string): AppError {
  switch (errcode) {
    case 40029:
      return badRequest("wechat_invalid_code", "the login code is not valid", { errcode });
    case 40163:
      return badRequest("wechat_code_used", "the login code was already used", { errcode });
    case 40226:
      return appError("wechat_user_blocked", "WeChat refuses this user (high-risk account)", { details: { errcode } });
    case 45011:
      return tooManyRequests(60, "WeChat rate-limits this app's sign-ins; retry later");
    case -1:
      return unavailable("the WeChat API is busy; retry", "wechat_unavailable");
    default:
      return appError("wechat_error", `the WeChat API refused the exchange: ${errmsg}`, { details: { errcode } });
  }
}
