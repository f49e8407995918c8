import type { SnapEvent } from "@snapmesh/events";
import { AppError, appError, badRequest, unsupportedMediaType, withContext } from "./errors.js";

export type ContentMode = "binary" | "structured" | "batch";

export interface ReceivedEvents {
  mode: ContentMode;
  events: SnapEvent[];
}

type Headers = Record<string, string | string[] | undefined>;

const REQUIRED = ["id", "source", "type"] as const;
const BINARY_RESERVED = new Set(["specversion", "id", "source", "type", "time", "subject", "dataschema"]);
const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;

/** Reads CloudEvents from an HTTP request in binary, structured or batch content mode (HTTP protocol binding 1.0). */
export function parseCloudEvents(headers: Headers, body: Buffer): ReceivedEvents {
  const contentType = header(headers, "content-type") ?? "";
  const mediaType = contentType.split(";")[0]!.trim().toLowerCase();
  if (mediaType === "application/cloudevents-batch+json") {
    const parsed = parseJson(body);
    if (!Array.isArray(parsed)) throw badRequest("invalid_batch", "a batch must be a JSON array of events");
    if (parsed.length === 0) throw badRequest("invalid_batch", "a batch must hold at least one event");
    return {
      mode: "batch",
      events: parsed.map((item, index) => withIndex(index, () => structuredEvent(item))),
    };
  }
  if (mediaType.startsWith("application/cloudevents")) {
    if (mediaType !== "application/cloudevents+json") {
      throw unsupportedMediaType(`event format '${mediaType}' is not supported; use application/cloudevents+json`);
    }
    return { mode: "structured", events: [structuredEvent(parseJson(body))] };
  }
  return { mode: "binary", events: [binaryEvent(headers, body, mediaType)] };
}

function binaryEvent(headers: Headers, body: Buffer, mediaType: string): SnapEvent {
  const attrs: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!lower.startsWith("ce-") || value === undefined) continue;
    attrs[lower.slice(3)] = decodeHeader(lower, Array.isArray(value) ? value.join(",") : value);
  }
  if (Object.keys(attrs).length === 0) {
    if (mediaType && mediaType !== "application/json") {
      throw unsupportedMediaType(`'${mediaType}' is not a CloudEvent: send ce-* headers or application/cloudevents+json`);
    }
    throw badRequest("not_a_cloudevent", "no ce-* headers and no structured content type: this is not a CloudEvent");
  }
  if (body.length > 0) {
    if (mediaType !== "application/json" && !mediaType.endsWith("+json")) {
      throw unsupportedMediaType(`event data must be JSON, got '${mediaType || "no content type"}'`);
    }
    attrs.data = parseJson(body);
    attrs.datacontenttype = mediaType;
  }
  return checkEvent(attrs);
}

/** Checks a structured-mode event (a JSON object); throws a 400 AppError naming what is wrong. */
export function structuredEvent(value: unknown): SnapEvent {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw badRequest("invalid_cloudevent", "a structured event must be a JSON object");
  }
  const attrs = { ...(value as Record<string, unknown>) };
  if ("data_base64" in attrs) {
    throw unsupportedMediaType("data_base64 is not accepted: event data must be JSON");
  }
  return checkEvent(attrs);
}

export function checkEvent(attrs: Record<string, unknown>): SnapEvent {
  if (attrs.specversion === undefined) throw badRequest("missing_specversion", "the event has no specversion");
  if (attrs.specversion !== "1.0") {
    throw badRequest("unsupported_specversion", `specversion '${String(attrs.specversion)}' is not supported; use 1.0`);
  }
  for (const name of REQUIRED) {
    const value = attrs[name];
    if (value === undefined || value === null || value === "") {
      throw badRequest(`missing_${name}`, `the event has no ${name}`);
    }
    if (typeof value !== "string") throw badRequest(`invalid_${name}`, `${name} must be a string`);
  }
  for (const name of Object.keys(attrs)) {
    if (name === "data" || name === "datacontenttype" || BINARY_RESERVED.has(name)) continue;
    if (!EXTENSION_NAME.test(name)) {
      throw badRequest("invalid_attribute_name", `attribute name '${name}' must be 1-20 lowercase letters or digits`);
    }
  }
  const problems = attributeProblems(attrs);
  if (problems.length > 0) {
    throw appError("invalid_cloudevent", `the event is not valid CloudEvents 1.0: ${problems.join("; ")}`, {
      details: { errors: problems },
    });
  }
  return attrs as SnapEvent;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
/** A URI never holds spaces or control characters (WHATWG URL parsing would quietly drop or encode them). */
function notUriText(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * The types CloudEvents 1.0 gives the optional attributes (spec §3.1.1, §2.3): `time` an RFC 3339 timestamp,
 * `source` a URI-reference, `dataschema` an absolute URI, `subject` and `datacontenttype` non-empty strings,
 * extension values a string, boolean or integer. The required ones were checked before.
 */
function attributeProblems(attrs: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const { time, source, dataschema, subject, datacontenttype } = attrs;
  if (time !== undefined && (typeof time !== "string" || !RFC3339.test(time) || Number.isNaN(Date.parse(time)))) {
    problems.push("time must be an RFC 3339 timestamp");
  }
  if (typeof source === "string" && (notUriText(source) || !URL.canParse(source, "http://reference.invalid/"))) {
    problems.push("source must be a URI-reference");
  }
  if (dataschema !== undefined && (typeof dataschema !== "string" || notUriText(dataschema) || !URL.canParse(dataschema))) {
    problems.push("dataschema must be an absolute URI");
  }
  for (const [name, value] of [
    ["subject", subject],
    ["datacontenttype", datacontenttype],
  ] as const) {
    if (value !== undefined && (typeof value !== "string" || value === "")) problems.push(`${name} must be a non-empty string`);
  }
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "data" || name === "datacontenttype" || BINARY_RESERVED.has(name)) continue;
    const ok =
      typeof value === "string" ||
      typeof value === "boolean" ||
      (typeof value === "number" && Number.isInteger(value) && Math.abs(value) <= 2 ** 31);
    if (!ok) problems.push(`extension ${name} must be a string, boolean or integer`);
  }
  return problems;
}

/**
 * Header values are percent-encoded UTF-8 (HTTP binding 3.1.3.2; the NATS binding uses the same form): raw
 * bytes beyond printable ASCII are not allowed.
 */
export function decodeHeader(name: string, value: string): string {
  if (/[^\t\x20-\x7e]/.test(value)) {
    throw badRequest("invalid_header", `header ${name} holds raw non-ASCII bytes; percent-encode them`);
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) {
    throw badRequest("invalid_header", `header ${name} is not validly percent-encoded`);
  }
  const bytes = Buffer.from(
    value.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
    "latin1",
  );
  try {
    return UTF8.decode(bytes);
  } catch {
    throw badRequest("invalid_utf8", `header ${name} does not percent-decode to valid UTF-8`);
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** JSON travels as UTF-8 (RFC 8259): bytes that are not valid UTF-8 are refused, never replaced with U+FFFD. */
export function requireUtf8(body: Buffer | Uint8Array): string {
  try {
    return UTF8.decode(body);
  } catch {
    throw badRequest("invalid_utf8", "the body is not valid UTF-8");
  }
}

/** A JSON value from a UTF-8 body: 400 `malformed_json` (or `invalid_utf8`) otherwise. */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) throw badRequest("malformed_json", "the body is empty");
  const text = requireUtf8(body);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw appError("malformed_json", `the body is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function withIndex<T>(index: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof AppError) {
      throw withContext(err, `batch entry ${index}: `, { index });
    }
    throw err;
  }
}

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Binary-mode HTTP form of an event (headers + JSON body), as sent by sinks and replies. */
export function toBinary(event: SnapEvent): { headers: Record<string, string>; body: string } {
  const headers: Record<string, string> = { "content-type": event.datacontenttype ?? "application/json" };
  for (const [name, value] of Object.entries(event)) {
    if (name === "data" || name === "datacontenttype" || value === undefined) continue;
    headers[`ce-${name}`] = encodeHeader(String(value));
  }
  return { headers, body: event.data === undefined ? "" : JSON.stringify(event.data) };
}

/** Percent-encodes what header values cannot carry (CloudEvents HTTP binding 3.1.3.2; NATS headers alike). */
export function encodeHeader(value: string): string {
  return value.replace(/[^\x21-\x24\x26-\x7e ]/g, (c) => encodeURIComponent(c)).replace(/^ | $/g, "%20");
}
