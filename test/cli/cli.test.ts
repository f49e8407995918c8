import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { send } from "../../scripts/src/send.ts";
import { replayDeadLetters } from "../../scripts/src/stream.ts";
import { baseConfigSchema, dlqStream, parseConfig, type Service, subjectFor } from "../../services/runtime/src/internal.ts";
import { notesService } from "../../services/runtime/test/fixture/notes.ts";
import { eventually, isolatedEnv, listenOnLoopback, natsConnect, streamMessages, testNatsUrl } from "../support/index.ts";

let service: Service;
let base: string;
let nc: NatsConnection;

beforeAll(async () => {
  service = await notesService(parseConfig(baseConfigSchema, await isolatedEnv({ CONSUMER_MAX_ATTEMPTS: "2" })));
  base = await listenOnLoopback(service);
  nc = await natsConnect();
});

afterAll(async () => {
  await nc?.close();
  await service?.stop();
});

describe("snapmesh send", () => {
  it.each([false, true])("sends a CloudEvent with the SDK (structured: %s) and decodes the reply", async (structured) => {
    const result = await send({
      type: "test.note.create",
      data: JSON.stringify({ noteId: `cli-${structured}`, text: "from the CLI" }),
      to: `${base}/`,
      structured,
      source: "/snapmesh/cli",
    });
    expect(result.status).toBe(200);
    expect(result.reply).toMatchObject({
      type: "test.note.stored",
      source: "/snapmesh/notes",
      data: { noteId: `cli-${structured}` },
    });
  });

  it("returns the error body for a refused event and a clear message for bad --data", async () => {
    const refused = await send({ type: "test.unknown", data: "{}", to: `${base}/`, structured: false, source: "/cli" });
    expect(refused.status).toBe(400);
    expect(refused.error).toMatchObject({ error: { code: "unknown_event_type" } });
    await expect(
      send({ type: "test.note.create", data: "{oops", to: `${base}/`, structured: false, source: "/cli" }),
    ).rejects.toThrow("--data is not valid JSON");
  });
});

describe("snapmesh dlq replay", () => {
  it("re-publishes dead-lettered events to the facts stream and removes them from the dead-letter stream", async () => {
    const event = { specversion: "1.0", id: "boom-replay", source: "/test", type: "test.boom", data: { n: 1 } };
    await nc.jetstream().publish(subjectFor(service.names, "test.boom"), new TextEncoder().encode(JSON.stringify(event)));
    const [first] = await eventually(async () => {
      const dead = await streamMessages(nc, dlqStream(service.names));
      return dead.length === 1 ? dead : undefined;
    }, "the first dead letter");
    const dry = await replayDeadLetters({ natsUrl: testNatsUrl(), names: service.names, dryRun: true });
    expect(dry).toEqual([expect.objectContaining({ id: "boom-replay", type: "test.boom", replayed: false })]);
    const replayed = await replayDeadLetters({ natsUrl: testNatsUrl(), names: service.names, dryRun: false });
    expect(replayed).toEqual([expect.objectContaining({ id: "boom-replay", replayed: true })]);
    const copies = (await streamMessages(nc, service.names.stream)).filter((m) => m.subject.endsWith("test.boom"));
    expect(copies).toHaveLength(2);
    // The handler still fails, so the replayed event is dead-lettered again after its attempts.
    const [second] = await eventually(async () => {
      const dead = await streamMessages(nc, dlqStream(service.names));
      return dead.length === 1 && dead[0]!.seq !== first!.seq ? dead : undefined;
    }, "the second dead letter");
    expect(JSON.parse(new TextDecoder().decode(second!.data)).event.id).toBe("boom-replay");
  });
});
