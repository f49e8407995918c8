import type { SnapEvent } from "@snapmesh/events";
import { type MsgHdrs, headers as natsHeaders } from "nats";
import { checkEvent, decodeHeader, requireUtf8, structuredEvent, toBinary } from "./cloudevents-http.js";
import { appError } from "./errors.js";

/**
 * The CloudEvents NATS protocol binding, both directions. Binary mode: attributes as `ce-` headers
 * (percent-encoded as on HTTP), data as the payload. Decoding applies every check the HTTP door makes, so an
 * event is valid or refused the same way whichever transport brought it.
 */
export function toNatsMessage(event: SnapEvent): { headers: MsgHdrs; payload: Uint8Array } {
  const { headers, body } = toBinary(event);
  const h = natsHeaders();
  for (const [k, v] of Object.entries(headers)) h.set(k, v);
  return { headers: h, payload: new TextEncoder().encode(body) };
}

/** A message of the stream as an event: binary mode (`ce-` headers) or structured (the whole event as JSON); 400 AppErrors name the problem. */
export function fromNatsMessage(data: Uint8Array, hdrs: MsgHdrs | undefined): SnapEvent {
  const text = requireUtf8(data);
  const attrs: Record<string, unknown> = {};
  let binary = false;
  for (const key of hdrs?.keys() ?? []) {
    const lower = key.toLowerCase();
    if (lower.startsWith("ce-")) {
      binary = true;
      attrs[lower.slice(3)] = decodeHeader(lower, hdrs!.get(key));
    }
    if (lower === "content-type") attrs.datacontenttype = hdrs!.get(key);
  }
  const json = (): unknown => {
    try {
      return JSON.parse(text);
    } catch (err) {
      throw appError("malformed_json", `the payload is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  };
  if (!binary) return structuredEvent(json());
  if (text.length > 0) attrs.data = json();
  return checkEvent(attrs);
}
