import { randomBytes } from "node:crypto";
import QRCode from "qrcode";
import { type FakeServer, fakeServer, json } from "./http-fake.ts";

export interface FakeWechat extends FakeServer {
  appId: string;
  appSecret: string;
  /** A fresh login code for `openid` (valid once, as with wx.login()). */
  loginCode(openid: string, unionid?: string): string;
  /** Scenes and pages asked for by getwxacodeunlimit. */
  codes: Array<{ scene: string; page: string }>;
}

/**
 * WeChat's API as far as snapmesh uses it: `GET /sns/jscode2session`, `GET /cgi-bin/token`,
 * `POST /wxa/getwxacodeunlimit` (a PNG whose QR content is the scene), with WeChat's error codes.
 */
export async function fakeWechat(opts: { allowFrom?: string[] } = {}): Promise<FakeWechat> {
  const appId = `wx${randomBytes(8).toString("hex")}`;
  const appSecret = randomBytes(16).toString("hex");
  const codes = new Map<string, { openid: string; unionid?: string; used: boolean }>();
  const tokens = new Set<string>();
  const made: FakeWechat["codes"] = [];
  const server = await fakeServer(async (req, body, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const q = url.searchParams;
    if (url.pathname === "/sns/jscode2session") {
      if (q.get("appid") !== appId || q.get("secret") !== appSecret)
        return json(res, 200, { errcode: 40013, errmsg: "invalid appid" });
      const entry = codes.get(q.get("js_code") ?? "");
      if (!entry) return json(res, 200, { errcode: 40029, errmsg: "invalid code" });
      if (entry.used) return json(res, 200, { errcode: 40163, errmsg: "code been used" });
      entry.used = true;
      return json(res, 200, {
        openid: entry.openid,
        session_key: randomBytes(16).toString("base64"),
        ...(entry.unionid ? { unionid: entry.unionid } : {}),
      });
    }
    if (url.pathname === "/cgi-bin/token") {
      if (q.get("appid") !== appId || q.get("secret") !== appSecret)
        return json(res, 200, { errcode: 40013, errmsg: "invalid appid" });
      const token = randomBytes(24).toString("hex");
      tokens.add(token);
      return json(res, 200, { access_token: token, expires_in: 7200 });
    }
    if (url.pathname === "/wxa/getwxacodeunlimit" && req.method === "POST") {
      if (!tokens.has(q.get("access_token") ?? "")) return json(res, 200, { errcode: 40001, errmsg: "invalid credential" });
      const { scene, page } = JSON.parse(body.toString()) as { scene?: string; page?: string };
      if (!scene || scene.length > 32) return json(res, 200, { errcode: 40169, errmsg: "invalid length for scene" });
      made.push({ scene, page: page ?? "" });
      const png = await QRCode.toBuffer(scene, { type: "png", margin: 2, scale: 6 });
      res.writeHead(200, { "content-type": "image/png" }).end(png);
      return;
    }
    json(res, 404, { errcode: 404, errmsg: "not found" });
  }, opts.allowFrom);
  return Object.assign(server, {
    appId,
    appSecret,
    codes: made,
    loginCode(openid: string, unionid?: string) {
      const code = randomBytes(12).toString("hex");
      codes.set(code, { openid, ...(unionid ? { unionid } : {}), used: false });
      return code;
    },
  });
}
