// The NATS permissions the chart README tells operators to give the console's user (consoleNatsPermissions), on a
// real nats-server that enforces them: the console works with them, and cannot change what the services rely on.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AckPolicy, connect, headers, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consoleNatsPermissions } from "../../scripts/src/console/nats-permissions.ts";
import { type RunningConsole, startConsole } from "../../scripts/src/console/server.ts";
import { startNatsServer, stopChild } from "../../scripts/src/processes.ts";
import { publishDeadLetter } from "../../services/runtime/src/dead-letters.ts";
import { ensureStreams, natsServerOptions, subjectFor } from "../../services/runtime/src/nats.ts";
import { signedAs } from "../support/event-keys.ts";
import { freePort, scratchDir, uniqueName } from "../support/index.ts";

const names = { stream: "PHOTOS_FACTS", subjectPrefix: "photos" };
// Each starts with a digit: nats.js reads such a password in a URL as a port unless the runtime lifts it out.
const password = () => `7${randomBytes(12).toString("hex")}`;
const users = { mesh: password(), console: password(), viewer: password() };

let server: ChildProcess;
let port = 0;
let mesh: NatsConnection;
let web: RunningConsole;
let readOnly: RunningConsole;
const url = (user: keyof typeof users) => `nats://${user}:${users[user]}@127.0.0.1:${port}`;

beforeAll(async () => {
  const dir = scratchDir("nats-permissions");
  mkdirSync(join(dir, "js"), { recursive: true });
  const config = join(dir, "nats.conf");
  // JSON is valid nats-server configuration.
  writeFileSync(
    config,
    JSON.stringify({
      accounts: {
        PHOTOS: {
          jetstream: "enabled",
          users: [
            { user: "mesh", password: users.mesh },
            { user: "console", password: users.console, permissions: consoleNatsPermissions(names, { replay: true }) },
            { user: "viewer", password: users.viewer, permissions: consoleNatsPermissions(names, { replay: false }) },
          ],
        },
      },
    }),
  );
  port = await freePort("127.0.0.1");
  server = await startNatsServer(port, join(dir, "js"), { install: false, config });
  mesh = await connect(natsServerOptions(url("mesh")));
  const jsm = await ensureStreams(mesh, names);
  await jsm.consumers.add(names.stream, {
    durable_name: "social",
    filter_subject: `${names.subjectPrefix}.>`,
    ack_policy: AckPolicy.Explicit,
  });
  const page = join(dir, "page");
  mkdirSync(page);
  writeFileSync(join(page, "index.html"), "<!doctype html><title>snapmesh</title>");
  const common = { port: 0, names, services: {}, publicDir: page, operatorToken: "operator-token-0123456789" };
  web = await startConsole({ ...common, natsUrl: url("console") });
  readOnly = await startConsole({ ...common, natsUrl: url("viewer") });
}, 60_000);

afterAll(async () => {
  await Promise.all([web?.close(), readOnly?.close(), mesh?.close()]);
  if (server) await stopChild(server);
});

const like = () =>
  signedAs("social", {
    id: uniqueName("like"),
    type: "snapmesh.social.like.added",
    subject: "photo/p-1",
    data: { photoId: "p-1", userId: "u-1", likes: 1 },
  });

async function publishFact(event: ReturnType<typeof like>) {
  const h = headers();
  h.set("content-type", "application/cloudevents+json");
  await mesh.jetstream().publish(subjectFor(names, event.type), new TextEncoder().encode(JSON.stringify(event)), { headers: h });
}

describe("the console's NATS user", () => {
  it("is enough for facts, consumer lag, dead letters and replay", async () => {
    const fact = like();
    await publishFact(fact);
    const facts = new AbortController();
    const reader = (await fetch(`${web.url}/api/facts`, { signal: facts.signal })).body!.getReader();
    let text = "";
    while (!text.includes(fact.id)) text += new TextDecoder().decode((await reader.read()).value);
    facts.abort();

    const consumers = (await (await fetch(`${web.url}/api/consumers`)).json()) as {
      consumers: Array<{ name: string; pending: number }>;
    };
    expect(consumers.consumers).toEqual([expect.objectContaining({ name: "social", pending: 1 })]);

    const dead = like();
    await publishDeadLetter(mesh, names, { reason: "answered 500", consumer: "social", attempts: 5, subject: "s", event: dead });
    const list = (await (await fetch(`${web.url}/api/dead-letters`)).json()) as {
      deadLetters: Array<{ seq: number; id: string }>;
    };
    const entry = list.deadLetters.find((d) => d.id === dead.id)!;
    expect(entry).toBeDefined();

    // The viewer (no replay permissions) reads the same, and its replay is refused by NATS: the entry stays.
    const viewed = (await (await fetch(`${readOnly.url}/api/dead-letters`)).json()) as { deadLetters: Array<{ id: string }> };
    expect(viewed.deadLetters.map((d) => d.id)).toContain(dead.id);
    const replay = (base: string) =>
      fetch(`${base}/api/dead-letters/${entry.seq}/replay`, {
        method: "POST",
        headers: { authorization: "Bearer operator-token-0123456789" },
      });
    expect((await replay(readOnly.url)).status).toBeGreaterThanOrEqual(500);
    const jsm = await mesh.jetstreamManager();
    expect((await jsm.streams.info(names.stream)).state.messages).toBe(1);

    expect((await replay(web.url)).status).toBe(200);
    expect((await jsm.streams.info(names.stream)).state.messages).toBe(2);
    expect((await jsm.streams.info(`${names.stream}_DLQ`)).state.messages).toBe(0);
  });

  it("cannot remove or purge the streams, add, change or remove consumers, or publish elsewhere", async () => {
    const nc = await connect(natsServerOptions(url("console")));
    try {
      const jsm = await nc.jetstreamManager();
      await expect(jsm.streams.delete(names.stream)).rejects.toThrow(/permission|timeout/i);
      await expect(jsm.streams.purge(`${names.stream}_DLQ`)).rejects.toThrow(/permission|timeout/i);
      await expect(jsm.consumers.delete(names.stream, "social")).rejects.toThrow(/permission|timeout/i);
      await expect(
        jsm.consumers.update(names.stream, "social", { filter_subject: `${names.subjectPrefix}.nothing` }),
      ).rejects.toThrow(/permission|timeout/i);
      await expect(jsm.consumers.add(names.stream, { durable_name: "intruder", ack_policy: AckPolicy.Explicit })).rejects.toThrow(
        /permission|timeout/i,
      );
      await expect(nc.jetstream().publish("other.subject", new Uint8Array())).rejects.toThrow(
        /permission|timeout|no responders/i,
      );
    } finally {
      await nc.close();
    }
    const social = await (await mesh.jetstreamManager()).consumers.info(names.stream, "social");
    expect(social.config.filter_subject).toBe(`${names.subjectPrefix}.>`);
  });
});
