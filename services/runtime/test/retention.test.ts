import { describe, expect, it } from "vitest";
import { isolatedEnv, listenOnLoopback } from "../../../test/support/index.ts";
import { baseConfigSchema, openDatabase, parseConfig, RetentionSweeper } from "../src/internal.ts";
import { notesService } from "./fixture/notes.ts";
import { eventually } from "./helpers.ts";

const HOUR = 3600;

describe("inbox and outbox retention", () => {
  it("deletes sent outbox rows and inbox rows older than their retention, in batches, and keeps the rest", async () => {
    const env = await isolatedEnv({
      EVENT_CONSUMERS: "off",
      OUTBOX_PAUSED: "1",
      OUTBOX_RETENTION_SECONDS: String(HOUR),
      INBOX_RETENTION_SECONDS: String(2 * HOUR),
    });
    const first = await notesService(parseConfig(baseConfigSchema, env));
    await listenOnLoopback(first);
    await first.stop();

    const db = await openDatabase(env.DATABASE_URL!);
    try {
      const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();
      const outbox = [
        ["old-sent-1", ago(3 * HOUR), ago(3 * HOUR)],
        ["old-sent-2", ago(2 * HOUR), ago(2 * HOUR)],
        ["old-sent-3", ago(2 * HOUR), ago(2 * HOUR)],
        ["old-unsent", ago(3 * HOUR), null],
        ["new-sent", ago(60), ago(30)],
      ];
      for (const [id, created, sent] of outbox) {
        await db.query(
          "INSERT INTO notes.outbox (event_id, type, event, created_at, sent_at) VALUES ($1, 'test.note.created', '{}', $2, $3)",
          [id, created, sent],
        );
      }
      for (const [id, applied] of [
        ["old-in-1", ago(3 * HOUR)],
        ["old-in-2", ago(3 * HOUR)],
        ["old-in-3", ago(3 * HOUR)],
        ["mid-in", ago(1.5 * HOUR)],
        ["new-in", ago(60)],
      ]) {
        await db.query("INSERT INTO notes.inbox (source, id, type, applied_at) VALUES ('/test/r', $1, 'test.tick', $2)", [
          id,
          applied,
        ]);
      }
      const outboxIds = async () =>
        (await db.query<{ event_id: string }>("SELECT event_id FROM notes.outbox ORDER BY event_id")).rows.map((r) => r.event_id);
      const inboxIds = async () =>
        (await db.query<{ id: string }>("SELECT id FROM notes.inbox ORDER BY id")).rows.map((r) => r.id);

      // The sweeper itself, with batches smaller than the backlog.
      const sweeper = new RetentionSweeper(db, "notes", first.log, {
        outboxSeconds: HOUR,
        inboxSeconds: 2 * HOUR,
        intervalMs: 60_000,
        batchSize: 2,
      });
      expect(await sweeper.sweep()).toEqual({ outbox: 3, inbox: 3 });
      expect(await outboxIds()).toEqual(["new-sent", "old-unsent"]);
      expect(await inboxIds()).toEqual(["mid-in", "new-in"]);

      // A service sweeps by itself, by its configured bounds.
      await db.query(
        "INSERT INTO notes.outbox (event_id, type, event, created_at, sent_at) VALUES ('old-again', 't', '{}', $1, $1)",
        [ago(5 * HOUR)],
      );
      await db.query("INSERT INTO notes.inbox (source, id, type, applied_at) VALUES ('/test/r', 'old-again', 't', $1)", [
        ago(5 * HOUR),
      ]);
      const second = await notesService(parseConfig(baseConfigSchema, env));
      await listenOnLoopback(second);
      try {
        await eventually(async () => !(await outboxIds()).includes("old-again"), "the service's own sweep");
        await eventually(async () => !(await inboxIds()).includes("old-again"), "the service's own sweep of the inbox");
        expect(await outboxIds()).toEqual(["new-sent", "old-unsent"]);
        expect(await inboxIds()).toEqual(["mid-in", "new-in"]);
      } finally {
        await second.stop();
      }
    } finally {
      await db.close();
    }
  });
});
