// The HTTP and NATS bindings decode what they encode, and refuse the same malformed events with the same code.
import { headers as natsHeaders } from "nats";
import { describe, expect, it } from "vitest";
import { parseCloudEvents, toBinary } from "../src/cloudevents-http.ts";
import { AppError } from "../src/errors.ts";
import { fromNatsMessage, toNatsMessage } from "../src/nats-binding.ts";

const event = {
  specversion: "1.0" as const,
  id: "e-1",
  source: "/snapmesh/test",
  type: "test.tick",
  time: "2026-11-25T10:00:00.000Z",
  datacontenttype: "application/json",
  subject: "café ☕ 100%",
  data: { n: 1, text: "naïve" },
};

/** Both doors' verdict on the same binary-mode headers and body: the event or the error code. */
function viaBoth(headers: Record<string, string>, body: string | Uint8Array) {
  const bytes = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
  const verdict = (fn: () => unknown) => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof AppError) return err.code;
      throw err;
    }
  };
  const h = natsHeaders();
  for (const [k, v] of Object.entries(headers)) h.set(k, v);
  return {
    http: verdict(() => parseCloudEvents(headers, bytes).events[0]),
    nats: verdict(() => fromNatsMessage(bytes, h)),
  };
}

describe("CloudEvents bindings", () => {
  it("decode what they encode, non-ASCII attributes included", () => {
    const { headers, payload } = toNatsMessage(event);
    expect(fromNatsMessage(payload, headers)).toEqual(event);
    const http = toBinary(event);
    expect(parseCloudEvents(http.headers, Buffer.from(http.body)).events[0]).toEqual(event);
  });

  it.each([
    ["a raw non-ASCII header value", { "ce-subject": "caf\u00e9" }, undefined],
    ["a broken percent-encoding", { "ce-subject": "100%" }, undefined],
    ["a missing id", { "ce-id": undefined }, undefined],
    ["a wrong specversion", { "ce-specversion": "0.3" }, undefined],
    ["an invalid extension name", { "ce-Bad_Name": "x" }, undefined],
    ["a body that is not JSON", {}, "{nope"],
    ["a body that is not UTF-8", {}, new Uint8Array([0x22, 0xff, 0x22])],
  ])("refuse %s with the same code on both doors", (_name, change, body) => {
    const { headers, body: good } = toBinary(event);
    const changed: Record<string, string> = { ...headers };
    for (const [k, v] of Object.entries(change)) {
      if (v === undefined) delete changed[k];
      else changed[k] = v;
    }
    const { http, nats } = viaBoth(changed, body ?? good);
    expect(typeof http, `HTTP accepted it: ${JSON.stringify(http)}`).toBe("string");
    expect(nats).toBe(http);
  });
});
