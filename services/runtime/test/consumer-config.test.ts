import { AckPolicy } from "nats";
import { describe, expect, it } from "vitest";
import { ensureStreams, JetStreamConsumers, subjectFor } from "../src/internal.ts";
import { Boom, notesService, Tick } from "./fixture/notes.ts";
import { isolatedConfig, natsConnect } from "./helpers.ts";

describe("the service's durable consumer", () => {
  it("is made on the first start and brought to the current subscriptions on a later one", async () => {
    const config = await isolatedConfig();
    const names = { stream: config.EVENTS_STREAM, subjectPrefix: config.EVENTS_SUBJECT_PREFIX };
    const nc = await natsConnect();
    try {
      const jsm = await ensureStreams(nc, names);
      const durable = JetStreamConsumers.durableName("notes");
      // An earlier release subscribed to one type only, with another ack wait.
      await jsm.consumers.add(names.stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        filter_subjects: [subjectFor(names, Tick.type)],
        ack_wait: 5_000_000_000,
      });
      const service = await notesService(config);
      await service.start({ host: "127.0.0.1", port: 0 });
      try {
        const { config: now } = await jsm.consumers.info(names.stream, durable);
        expect([...(now.filter_subjects ?? [])].sort()).toEqual(
          [subjectFor(names, Boom.type), subjectFor(names, Tick.type)].sort(),
        );
        expect(now.ack_wait).toBe(30_000_000_000);
      } finally {
        await service.stop();
      }
    } finally {
      await nc.close();
    }
  });
});
