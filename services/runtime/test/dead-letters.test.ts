import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenOnLoopback, signedAs } from "../../../test/support/index.ts";
import { toBinary } from "../src/cloudevents-http.js";
import type { Service } from "../src/service.ts";
import { notesService, Tick } from "./fixture/notes.ts";
import { eventually, isolatedConfig, natsConnect, streamMessages } from "./helpers.ts";

let service: Service;
let base: string;
let nc: NatsConnection;

beforeAll(async () => {
  const config = await isolatedConfig({ EVENT_SINK: "none", EVENT_CONSUMERS: "off", DEAD_LETTERS: "nats" });
  service = await notesService(config);
  base = await listenOnLoopback(service);
  nc = await natsConnect();
  await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, "ready (NATS connected)");
});

afterAll(async () => {
  await nc?.close();
  await service?.stop();
});

const entries = async () =>
  (await streamMessages(nc, `${service.names.stream}_DLQ`)).map(
    (m) => JSON.parse(new TextDecoder().decode(m.data)) as { reason: string; consumer: string; event: { id: string } | null },
  );

describe("the Knative dead-letter sink (DEAD_LETTERS=nats)", () => {
  it("keeps a signed event Knative gave up on in the dead-letter stream, with Knative's reason", async () => {
    const failed = {
      ...signedAs("test", { id: "dl-1", type: Tick.type, data: { n: 1 } }),
      knativeerrorcode: "500",
      knativeerrordata: Buffer.from("database down").toString("base64"),
      knativeerrordest: "http://photos-snapmesh-social.photos.svc.cluster.local",
    };
    const { headers, body } = toBinary(failed);
    expect((await fetch(`${base}/dead-letters`, { method: "POST", headers, body })).status).toBe(202);
    const entry = await eventually(async () => (await entries()).find((e) => e.event?.id === "dl-1"), "the entry");
    expect(entry.consumer).toBe("notes");
    expect(entry.reason).toContain("500");
    expect(entry.reason).toContain("database down");
    expect(entry.event).not.toHaveProperty("knativeerrorcode");
  });

  it("refuses an unsigned event: nobody outside the mesh can fill the dead-letter stream", async () => {
    const res = await fetch(`${base}/dead-letters`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id: "dl-forged", source: "/snapmesh/test", type: Tick.type, data: { n: 2 } }),
    });
    expect(res.status).toBe(401);
    expect((await entries()).some((e) => e.event?.id === "dl-forged")).toBe(false);
  });
});
