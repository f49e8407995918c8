import {
  appError,
  forbidden,
  gone,
  type HttpReply,
  httpReply,
  notFound,
  type QueryContext,
  type RouteRequest,
} from "@snapmesh/runtime";
import { BlobNotFound } from "../backends/backend.js";
import type { StorageDeps } from "../deps.js";
import { checkKey } from "../keys.js";
import { verify } from "../signing.js";
import { liveObject } from "../store.js";

type Range = { start: number; end: number };

/**
 * `GET|HEAD /v1/objects/{key}?v=&expires=&kid=&sig=`: the signature is checked in constant time, and the
 * object's bytes must still be the ones the URL was signed for (`v`, their sha256: 410 otherwise); then
 * CDN-friendly delivery (ETag, If-None-Match -> 304, one byte range -> 206 / 416, Cache-Control bounded
 * by the URL's remaining life). The bytes are opened after the metadata read has ended (never for HEAD).
 */
export async function objectDownload(req: RouteRequest, ctx: QueryContext, deps: StorageDeps): Promise<HttpReply> {
  const key = checkKey(req.params.key!);
  const now = Math.floor(Date.now() / 1000);
  const q = req.query;
  const verdict = verify(deps.keys, "GET", key, { expires: q.expires, kid: q.kid, sig: q.sig, v: q.v }, now);
  if (!verdict.ok) throw forbidden(reasonText[verdict.code], verdict.code);
  const obj = await ctx.read((db) => liveObject(db, key));
  if (!obj) throw notFound(`no object '${key}'`, "object_not_found");
  if (obj.sha256 !== verdict.sha256) {
    throw gone(`object '${key}' was replaced since this URL was issued; ask for a new one`, "object_changed");
  }

  const maxAge = Math.max(0, Number(q.expires) - now);
  const headers: Record<string, string> = {
    etag: obj.etag,
    "cache-control": `private, max-age=${maxAge}`,
    "accept-ranges": "bytes",
    "last-modified": new Date(obj.createdAt).toUTCString(),
    "x-content-type-options": "nosniff",
  };
  if (matches(req.header("if-none-match"), obj.etag)) return httpReply({ status: 304, headers });
  const range = parseRange(req.header("range"), obj.size, req.header("if-range"), obj.etag);
  if (range === "unsatisfiable") {
    throw appError("range_not_satisfiable", `the object has ${obj.size} bytes`, {
      headers: { ...headers, "content-range": `bytes */${obj.size}` },
    });
  }
  headers["content-type"] = obj.contentType;
  if (range) {
    headers["content-range"] = `bytes ${range.start}-${range.end}/${obj.size}`;
    headers["content-length"] = String(range.end - range.start + 1);
  } else {
    headers["content-length"] = String(obj.size);
  }
  const stream = async () => {
    try {
      return await deps.backend.get(obj.blob, range ?? undefined);
    } catch (err) {
      if (err instanceof BlobNotFound) throw appError("blob_unavailable", "the object's bytes are not available; retry");
      throw err;
    }
  };
  return httpReply({ status: range ? 206 : 200, headers, stream });
}

const reasonText = {
  url_expired: "the temporary URL has expired",
  signature_invalid: "the temporary URL's signature is not valid",
  unknown_key: "the temporary URL was signed with an unknown key",
  url_incomplete: "the temporary URL needs v, expires and sig parameters",
} as const;

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.trim() === "*" || ifNoneMatch.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}

/** One `bytes=` range (first-last, first-, -suffix); null for none or one we ignore; multi-range is served whole. */
export function parseRange(
  header: string | undefined,
  size: number,
  ifRange?: string,
  etag?: string,
): Range | null | "unsatisfiable" {
  if (!header) return null;
  if (ifRange && ifRange !== etag) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null;
  const [, a, b] = m;
  if (a === "" && b === "") return null;
  let start: number;
  let end: number;
  if (a === "") {
    const suffix = Number(b);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === "" ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== "" && Number(b) < start) return null;
  }
  if (start >= size || size === 0) return "unsatisfiable";
  return { start, end };
}
