import { z } from "zod";

/**
 * The WeChat mini-program app's settings, read by every service that calls WeChat's API (auth signs in
 * with `code2Session`, share-code draws mini-program codes): spread into a service's config schema.
 */
export const wechatConfigShape = {
  WECHAT_API_BASE: z.url().default("https://api.weixin.qq.com"),
  WECHAT_APP_ID: z.string().optional(),
  WECHAT_APP_SECRET: z.string().optional(),
};

export interface WechatApp {
  apiBase: string;
  appId: string;
  appSecret: string;
}

/** The app's credentials when both are set; undefined means WeChat is not configured. */
export function wechatApp(config: {
  WECHAT_API_BASE: string;
  WECHAT_APP_ID?: string | undefined;
  WECHAT_APP_SECRET?: string | undefined;
}): WechatApp | undefined {
  if (!config.WECHAT_APP_ID || !config.WECHAT_APP_SECRET) return undefined;
  return { apiBase: config.WECHAT_API_BASE, appId: config.WECHAT_APP_ID, appSecret: config.WECHAT_APP_SECRET };
}
