import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterAll, describe, expect, it } from "vitest";
import { openDatabase } from "../src/internal.ts";
import { NoteCreate } from "./fixture/notes.ts";
import { FIXTURE_MAIN, startFixture as start } from "./fixture/spawn.ts";
import { eventually, isolatedConfig, natsConnect, publishedOk, streamEvents } from "./helpers.ts";

const MAIN = FIXTURE_MAIN;
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
});

const startFixture = (env: Record<string, string>) => start(env, children);

const create = (base: string, noteId: string, extra: Record<string, unknown> = {}) =>
  fetch(`${base}/`, {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify({
      specversion: "1.0",
      id: `cmd-${noteId}`,
      source: "/test/process",
      type: NoteCreate.type,
      data: { noteId, text: "x", ...extra },
    }),
  });

describe("process lifecycle", () => {
  it("a fact committed before a SIGKILL is published exactly once after restart", async () => {
    const config = await isolatedConfig({ EVENT_CONSUMERS: "off" });
    const nc = await natsConnect();
    try {
      // The relay is held, so the transaction commits and the process dies before anything is published.
      const first = await startFixture({ ...config.env, OUTBOX_PAUSED: "1" });
      expect((await create(first.base, "crash-1")).status).toBe(200);
      first.child.kill("SIGKILL");
      await once(first.child, "exit");
      const before = (await streamEvents(nc, config.EVENTS_STREAM)).filter((e) => e.type === "test.note.created");
      expect(before).toHaveLength(0);

      const second = await startFixture(config.env);
      const published = await eventually(async () => {
        const facts = (await streamEvents(nc, config.EVENTS_STREAM)).filter((e) => e.type === "test.note.created");
        return facts.length > 0 ? facts : undefined;
      }, "the fact after restart");
      // The relay marks the row sent after its one publish (the stream's duplicate window would hide a relay that does not).
      const db = await openDatabase(config.DATABASE_URL);
      try {
        const rows = await eventually(async () => {
          const { rows } = await db.query<{ sent: boolean; attempts: number }>(
            "SELECT sent_at IS NOT NULL AS sent, attempts FROM notes.outbox",
          );
          return rows.every((r) => r.sent) ? rows : undefined;
        }, "the outbox row marked sent");
        expect(rows).toEqual([{ sent: true, attempts: 1 }]);
      } finally {
        await db.close();
      }
      expect(publishedOk(await (await fetch(`${second.base}/metrics`)).text(), "test.note.created")).toBe(1);
      const after = (await streamEvents(nc, config.EVENTS_STREAM)).filter((e) => e.type === "test.note.created");
      expect(after).toHaveLength(1);
      expect(after[0]?.id).toBe(published[0]?.id);
      expect((after[0]!.data as { noteId: string }).noteId).toBe("crash-1");
      second.child.kill("SIGTERM");
      await once(second.child, "exit");
    } finally {
      await nc.close();
    }
  });

  it("SIGTERM lets in-flight requests complete, refuses new ones, and exits 0", async () => {
    const config = await isolatedConfig({ EVENT_CONSUMERS: "off", LOG_LEVEL: "warn" });
    const { child, base, line } = await startFixture(config.env);
    const exited = once(child, "exit");
    const inFlight = [create(base, "slow-1", { delayMs: 800 }), create(base, "slow-2", { delayMs: 800 })];
    await Promise.all([line(/^HANDLING slow-1$/), line(/^HANDLING slow-2$/)]);
    child.kill("SIGTERM");
    await line(/^DRAINING$/);
    const refused = await create(base, "late").then(
      (res) => res.status,
      () => "refused",
    );
    expect([503, "refused"]).toContain(refused);
    const done = await Promise.all(inFlight);
    expect(done.map((r) => r.status)).toEqual([200, 200]);
    const [code] = await exited;
    expect(code).toBe(0);
  });

  it("exits at once naming every bad or missing variable", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN], {
      env: { PATH: process.env.PATH, PORT: "http", EVENT_SINK: "kafka" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    const [code] = await once(child, "exit");
    expect(code).toBe(78);
    expect(stderr).toContain("DATABASE_URL: required but not set");
    expect(stderr).toContain("PORT:");
    expect(stderr).toContain("EVENT_SINK:");
    expect(stderr).not.toContain("    at ");
  });
});
