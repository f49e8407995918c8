// The relay's first path: a transaction's facts are published from memory right after its commit, without
// waiting for the poller (which here runs only once, at start).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Service } from "../src/service.ts";
import { notesService } from "./fixture/notes.ts";
import { eventually, isolatedConfig, natsConnect, streamEvents } from "./helpers.ts";

let service: Service;
let base: string;

beforeAll(async () => {
  // An hour between polls: within this test only the path from memory can publish a fact.
  service = await notesService(await isolatedConfig({ OUTBOX_POLL_MS: "3600000" }));
  const server = await service.start({ host: "127.0.0.1" });
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

afterAll(async () => {
  await service?.stop();
});

describe("outbox relay", () => {
  it("publishes a committed fact from memory and marks its row sent, with no poll in between", async () => {
    const res = await fetch(`${base}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({
        specversion: "1.0",
        id: "memory-1",
        source: "/test/relay",
        type: "test.note.create",
        data: { noteId: "from-memory", text: "m" },
      }),
    });
    expect(res.status).toBe(200);
    const nc = await natsConnect();
    try {
      const facts = await eventually(async () => {
        const mine = (await streamEvents(nc, service.names.stream)).filter(
          (e) => e.type === "test.note.created" && (e.data as { noteId: string }).noteId === "from-memory",
        );
        return mine.length > 0 ? mine : undefined;
      }, "the fact on the stream");
      expect(facts).toHaveLength(1);
    } finally {
      await nc.close();
    }
    const rows = await eventually(async () => {
      const { rows } = await service.db.query<{ sent: boolean; attempts: number }>(
        "SELECT sent_at IS NOT NULL AS sent, attempts FROM notes.outbox WHERE event->'data'->>'noteId' = 'from-memory'",
      );
      return rows[0]?.sent ? rows : undefined;
    }, "the row marked sent");
    expect(rows).toEqual([{ sent: true, attempts: 1 }]);
  });
});
