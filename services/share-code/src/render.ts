import { appError, badRequest, type EgressClient, unavailable } from "@snapmesh/runtime";
/** A PNG QR code holding `content`, rendered here (the renderer loads on the first code, off the cold start). */
export async function renderQr(content: string): Promise<Buffer> {
  const { default: QRCode } = await import("qrcode");
  return QRCode.toBuffer(content, { type: "png", errorCorrectionLevel: "M", margin: 2, scale: 8 });
}

/**
 * WeChat's "unlimited mini-program code" (getwxacodeunlimit): the code as `scene`, opening `page`.
 * The access token is cached until shortly before it expires. All calls go through the egress client.
 */
export class WechatCodeRenderer {
  private token: { value: string; until: number } | undefined;

  constructor(
    private readonly egress: EgressClient,
    private readonly opts: { apiBase: string; appId: string; appSecret: string },
  ) {}

  async render(scene: string, page: string): Promise<Buffer> {
    const url = new URL("/wxa/getwxacodeunlimit", this.opts.apiBase);
    url.searchParams.set("access_token", await this.accessToken());
    const res = await this.egress.request(url.toString(), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ scene, page, check_path: false }),
      idempotent: true,
    });
    const type = String(res.headers["content-type"] ?? "");
    if (res.status === 200 && type.startsWith("image/")) return res.body;
    const err = res.json<{ errcode?: number; errmsg?: string }>();
    if (err.errcode === 40001 || err.errcode === 42001) this.token = undefined;
    if (err.errcode === 41030) throw badRequest("wechat_invalid_page", `WeChat does not know page '${page}'`);
    throw unavailable(`WeChat could not render the code: ${err.errmsg ?? res.status}`, "wechat_unavailable");
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.until > Date.now()) return this.token.value;
    const url = new URL("/cgi-bin/token", this.opts.apiBase);
    url.search = new URLSearchParams({
      grant_type: "client_credential",
      appid: this.opts.appId,
      secret: this.opts.appSecret,
    }).toString();
    const body = (await this.egress.request(url.toString())).json<{
      access_token?: string;
      expires_in?: number;
      errmsg?: string;
    }>();
    if (!body.access_token) throw appError("wechat_unavailable", `WeChat refused an access token: ${body.errmsg ?? "no token"}`);
    this.token = { value: body.access_token, until: Date.now() + Math.max(60, (body.expires_in ?? 7200) - 300) * 1000 };
    return this.token.value;
  }
}
