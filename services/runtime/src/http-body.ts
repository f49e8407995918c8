import type { IncomingMessage, ServerResponse } from "node:http";
import { appError, tooLarge, unsupportedMediaType } from "./errors.js";

/** Whether the request carries a body at all (a length or chunked encoding), as HTTP defines it. */
export function hasBody(req: IncomingMessage): boolean {
  return req.headers["transfer-encoding"] !== undefined || (req.headers["content-length"] ?? "0") !== "0";
}

/**
 * The whole request body, up to `limit` bytes: 413 when it declares or sends more (what arrives after that is
 * read and dropped, so the connection stays usable), 400 when the client aborts, 415 for a compressed body.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const encoding = req.headers["content-encoding"];
  if (encoding !== undefined && encoding.toLowerCase() !== "identity") {
    return Promise.reject(unsupportedMediaType(`content-encoding '${encoding}' is not supported`));
  }
  if (Number(req.headers["content-length"]) > limit) {
    return Promise.reject(tooLarge(`the body exceeds the limit of ${limit} bytes`, "payload_too_large", { limit }));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | undefined, body?: Buffer) => {
      if (settled) return;
      settled = true;
      req.off("end", onEnd);
      req.off("aborted", onAborted);
      req.off("error", onError);
      if (err) reject(err);
      else resolve(body!);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (!settled) {
        chunks.length = 0;
        settle(tooLarge(`the body exceeds the limit of ${limit} bytes`, "payload_too_large", { limit }));
      }
    };
    const onEnd = () => settle(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onAborted = () => settle(appError("request_aborted", "the client aborted the request"));
    const onError = (err: Error) => settle(appError("request_aborted", "the request could not be read", { cause: err }));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("aborted", onAborted);
    req.on("error", onError);
  });
}

/** Writes a whole answer with node's own calls (no framework on the hot path); HEAD gets the headers only. */
export function writeBody(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string | Buffer,
  headers?: Readonly<Record<string, string>>,
): void {
  res.statusCode = status;
  if (headers) for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader("content-type", contentType);
  res.setHeader("content-length", typeof body === "string" ? Buffer.byteLength(body) : body.length);
  res.end(body);
}

const JSON_TYPE = "application/json; charset=utf-8";

export function writeJson(res: ServerResponse, status: number, value: unknown, headers?: Readonly<Record<string, string>>): void {
  writeBody(res, status, JSON_TYPE, JSON.stringify(value), headers);
}
