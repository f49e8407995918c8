import { appError, type Database, forbidden, gone, notFound } from "@snapmesh/runtime";
import type { Request, Response } from "express";
import { type BlobBackend, BlobNotFound } from "./backends/backend.js";
import { type SigningKey, verify } from "./signing.js";
import { liveObject } from "./store.js";

type Range = { start: number; end: number };

/**
 * `GET|HEAD /v1/objects/{key}?v=&expires=&kid=&sig=`: the signature is checked in constant time, and the
 * object's bytes must still be the ones the URL was signed for (`v`, their sha256: 410 otherwise); then
 * CDN-friendly delivery (ETag, If-None-Match -> 304, one byte range -> 206 / 416, Cache-Control bounded
 * by the URL's remaining life).
 */
export function downloadHandler(deps: {
  db: () => Database;
  backend: BlobBackend;
  keys: SigningKey[];
  keyParam: (req: Request) => string;
}) {
  return async (req: Request, res: Response) => {
    const key = deps.keyParam(req);
    const now = Math.floor(Date.now() / 1000);
    const q = req.query as Record<string, string | undefined>;
    const verdict = verify(deps.keys, "GET", key, { expires: q.expires, kid: q.kid, sig: q.sig, v: q.v }, now);
    if (!verdict.ok) throw forbidden(reasonText[verdict.code], verdict.code);
    const obj = await liveObject(deps.db(), key);
    if (!obj) throw notFound(`no object '${key}'`, "object_not_found");
    if (obj.sha256 !== verdict.sha256) {
      throw gone(`object '${key}' was replaced since this URL was issued; ask for a new one`, "object_changed");
    }

    const maxAge = Math.max(0, Number(q.expires) - now);
    res.setHeader("etag", obj.etag);
    res.setHeader("cache-control", `private, max-age=${maxAge}`);
    res.setHeader("accept-ranges", "bytes");
    res.setHeader("last-modified", new Date(obj.createdAt).toUTCString());
    res.setHeader("x-content-type-options", "nosniff");
    if (matches(req.header("if-none-match"), obj.etag)) {
      res.status(304).end();
      return;
    }
    const range = parseRange(req.header("range"), obj.size, req.header("if-range"), obj.etag);
    if (range === "unsatisfiable") {
      res.setHeader("content-range", `bytes */${obj.size}`);
      throw appError("range_not_satisfiable", `the object has ${obj.size} bytes`);
    }
    res.type(obj.contentType);
    if (range) {
      res.status(206);
      res.setHeader("content-range", `bytes ${range.start}-${range.end}/${obj.size}`);
      res.setHeader("content-length", String(range.end - range.start + 1));
    } else {
      res.status(200);
      res.setHeader("content-length", String(obj.size));
    }
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    let stream: import("node:stream").Readable;
    try {
      stream = await deps.backend.get(obj.blob, range ?? undefined);
    } catch (err) {
      if (err instanceof BlobNotFound) throw appError("blob_unavailable", "the object's bytes are not available; retry");
      throw err;
    }
    stream.on("error", () => res.destroy());
    stream.pipe(res);
  };
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
