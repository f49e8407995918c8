import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  isolatedEnv,
  listenOnLoopback,
  natsConnect,
  signedAs,
  streamEvents,
  type TestIssuer,
  testIssuer,
} from "../../../test/support/index.ts";
import { social } from "../src/service.ts";

type SocialService = Awaited<ReturnType<typeof social.create>>;

let service: SocialService;
let base: string;
let issuer: TestIssuer;
let nc: NatsConnection;
let stream: string;
const tokens = new Map<string, string>();

beforeAll(async () => {
  issuer = await testIssuer();
  const env = await isolatedEnv({ SOCIAL_COMMENT_LIMIT_PER_MINUTE: "5000", SOCIAL_LIKE_LIMIT_PER_MINUTE: "5000" });
  stream = env.EVENTS_STREAM!;
  service = await social.create(env);
  service.authenticate = issuer.verifier;
  base = await listenOnLoopback(service);
  nc = await natsConnect();
});

afterAll(async () => {
  await nc?.close();
  await service?.stop();
});

async function as(user: string): Promise<Record<string, string>> {
  if (!tokens.has(user)) tokens.set(user, await issuer.bearer(user));
  return { authorization: tokens.get(user)!, "content-type": "application/json" };
}
const like = async (user: string, photo: string, on: boolean) =>
  fetch(`${base}/v1/photos/${encodeURIComponent(photo)}/like`, { method: on ? "PUT" : "DELETE", headers: await as(user) });
const comment = async (user: string, photo: string, body: Record<string, unknown>) =>
  fetch(`${base}/v1/photos/${encodeURIComponent(photo)}/comments`, {
    method: "POST",
    headers: await as(user),
    body: JSON.stringify(body),
  });
const summary = async (photo: string, user?: string) =>
  (await (
    await fetch(`${base}/v1/photos/${encodeURIComponent(photo)}/social`, user ? { headers: await as(user) } : {})
  ).json()) as {
    likes: number;
    comments: number;
    likedByMe: boolean;
  };
const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
const fact = (type: string, id: string, data: unknown) =>
  fetch(`${base}/`, {
    method: "POST",
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify(signedAs("storage", { id, type, data })),
  });

describe("likes", () => {
  it("50 concurrent users liking and unliking in random order end with an exact count and matching facts", async () => {
    const photo = "photos/owner/concurrent.jpg";
    const users = Array.from({ length: 50 }, (_, i) => `u${i}`);
    const last = new Map<string, boolean>();
    let changes = 0;
    await Promise.all(
      users.map(async (u) => {
        const steps = 1 + Math.floor(Math.random() * 5);
        for (let i = 0; i < steps; i++) {
          const on = Math.random() < 0.6;
          const res = await like(u, photo, on);
          expect(res.status).toBe(200);
          if (on !== (last.get(u) ?? false)) changes++;
          last.set(u, on);
        }
      }),
    );
    const expected = [...last.values()].filter(Boolean).length;
    expect((await summary(photo)).likes).toBe(expected);
    const rows = await service.db.query<{ n: string; d: string }>(
      "SELECT count(*) AS n, count(DISTINCT user_id) AS d FROM social.likes WHERE photo_id = $1",
      [photo],
    );
    expect(Number(rows.rows[0]!.n)).toBe(expected);
    expect(Number(rows.rows[0]!.d)).toBe(expected);
    const facts = await eventually(async () => {
      const all = (await streamEvents(nc, stream)).filter((e) => e.subject === photo);
      return all.length >= changes ? all : undefined;
    }, "one fact per state change");
    expect(facts).toHaveLength(changes);
    const added = facts.filter((e) => e.type === "snapmesh.social.like.added").length;
    expect(added - (facts.length - added)).toBe(expected);
    // Per user the facts alternate added/removed, starting with added: one fact per real state change.
    for (const u of users) {
      const mine = facts.filter((e) => (e.data as { userId: string }).userId === u).map((e) => e.type.endsWith("added"));
      for (const [i, added] of mine.entries()) expect(added).toBe(i % 2 === 0);
      expect(mine.length % 2 === 1).toBe(last.get(u) === true);
    }
  });

  it("a second like is a no-op that returns the same state", async () => {
    const first = await (await like("solo", "p-idem", true)).json();
    const second = await (await like("solo", "p-idem", true)).json();
    expect(second).toEqual(first);
    expect(first).toEqual({ photoId: "p-idem", likes: 1, likedByMe: true });
    expect(await summary("p-idem", "solo")).toEqual({ likes: 1, comments: 0, likedByMe: true });
    expect(await summary("p-idem", "other")).toEqual({ likes: 1, comments: 0, likedByMe: false });
  });
});

describe("comments", () => {
  it("paginates 1,000 comments newest first with no duplicates and no gaps while new ones arrive", async () => {
    const photo = "p-pages";
    for (let batch = 0; batch < 10; batch++) {
      const events = Array.from({ length: 100 }, (_, i) => ({
        specversion: "1.0",
        id: `seed-${batch}-${i}`,
        source: "/test/seed",
        type: "snapmesh.social.comment.create",
        data: { photoId: photo, text: `comment ${batch * 100 + i}` },
      }));
      const res = await fetch(`${base}/`, {
        method: "POST",
        headers: { ...(await as("seeder")), "content-type": "application/cloudevents-batch+json" },
        body: JSON.stringify(events),
      });
      expect(res.status).toBe(200);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = (await (
        await fetch(`${base}/v1/photos/${photo}/comments?limit=37${cursor ? `&cursor=${cursor}` : ""}`)
      ).json()) as {
        items: Array<{ id: string; text: string }>;
        nextCursor: string | null;
      };
      seen.push(...page.items.map((c) => c.text));
      cursor = page.nextCursor;
      if (pages++ % 3 === 0) expect((await comment("late", photo, { text: `late ${pages}` })).status).toBe(201);
    } while (cursor);
    const seeded = seen.filter((t) => t.startsWith("comment "));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seeded).toHaveLength(1000);
    expect(seeded[0]).toBe("comment 999");
    expect(seeded.at(-1)).toBe("comment 0");
    expect((await summary(photo)).comments).toBe(1000 + Math.ceil(pages / 3));
  });

  it("normalises text, threads one level, and de-duplicates a retried post by its idempotency key", async () => {
    const res = await comment("ann", "p-text", { text: "  Cafe\u0301\u0000 \u202Eok\n\n\n\nbye  ", idempotencyKey: "k-1" });
    expect(res.status).toBe(201);
    const top = (await res.json()) as { id: string; text: string };
    expect(top.text).toBe("Café ok\n\nbye");
    const retry = (await (await comment("ann", "p-text", { text: "Cafe", idempotencyKey: "k-1" })).json()) as { id: string };
    expect(retry.id).toBe(top.id);
    const reply = await comment("bea", "p-text", { text: "a reply", parentId: top.id });
    expect(reply.status).toBe(201);
    const nested = await comment("ann", "p-text", { text: "too deep", parentId: ((await reply.json()) as { id: string }).id });
    expect(nested.status).toBe(400);
    expect(await code(nested)).toBe("invalid_parent");
    expect((await summary("p-text")).comments).toBe(2);
  });

  it("lets the author and the photo's owner delete, and nobody else", async () => {
    expect(
      (
        await fact("snapmesh.storage.object.created", "own-1", {
          key: "photos/olga/1.jpg",
          owner: "olga",
          size: 1,
          etag: '"e"',
          contentType: "image/jpeg",
          sha256: "a".repeat(64),
        })
      ).status,
    ).toBe(202);
    const photo = "photos/olga/1.jpg";
    const c1 = (await (await comment("pete", photo, { text: "first" })).json()) as { id: string };
    const c2 = (await (await comment("pete", photo, { text: "second" })).json()) as { id: string };
    const stranger = await fetch(`${base}/v1/comments/${c1.id}`, { method: "DELETE", headers: await as("zed") });
    expect(stranger.status).toBe(403);
    expect((await fetch(`${base}/v1/comments/${c1.id}`, { method: "DELETE", headers: await as("pete") })).status).toBe(200);
    expect((await fetch(`${base}/v1/comments/${c2.id}`, { method: "DELETE", headers: await as("olga") })).status).toBe(200);
    const again = await fetch(`${base}/v1/comments/${c2.id}`, { method: "DELETE", headers: await as("olga") });
    expect(again.status).toBe(404);
    const page = (await (await fetch(`${base}/v1/photos/${encodeURIComponent(photo)}/comments`)).json()) as {
      items: Array<{ deleted: boolean; text: string }>;
    };
    expect(page.items.map((c) => [c.deleted, c.text])).toEqual([
      [true, ""],
      [true, ""],
    ]);
    expect((await summary(photo)).comments).toBe(0);
  });

  it("answers a repeated event id with the stored reply for its caller, and 409 for anyone else", async () => {
    const event = {
      specversion: "1.0",
      id: "fixed-id-1",
      source: "/app/client",
      type: "snapmesh.social.comment.create",
      data: { photoId: "p-ids", text: "mine" },
    };
    const sendAs = async (user: string) =>
      fetch(`${base}/`, {
        method: "POST",
        headers: { ...(await as(user)), "content-type": "application/cloudevents+json" },
        body: JSON.stringify(event),
      });
    const first = await (await sendAs("ida")).json();
    expect(await (await sendAs("ida")).json()).toEqual(first);
    const other = await sendAs("eve");
    expect(other.status).toBe(409);
    expect(await code(other)).toBe("event_id_reused");
    expect((await summary("p-ids")).comments).toBe(1);
  });

  it("refuses bad input with codes", async () => {
    expect(await code(await comment("ann", "p-bad", { text: "" }))).toBe("invalid_event_data");
    expect(await code(await comment("ann", "p-bad", { text: "\u0000\u0001 " }))).toBe("invalid_text");
    expect(await code(await comment("ann", "p-bad", { text: "x".repeat(2001) }))).toBe("invalid_text");
    expect(await code(await comment("ann", "p-bad", { text: "hi", parentId: "nope" }))).toBe("invalid_parent");
    expect((await fetch(`${base}/v1/photos/p-bad/like`, { method: "PUT" })).status).toBe(401);
    expect(await code(await fetch(`${base}/v1/photos/p-bad/comments?limit=500`))).toBe("invalid_query");
    expect(await code(await fetch(`${base}/v1/photos/p-bad/comments?cursor=bm90LWEtbnVtYmVy`))).toBe("invalid_cursor");
    expect(
      (await fetch(`${base}/v1/photos/p-bad/like`, { method: "PUT", headers: { authorization: "Bearer forged" } })).status,
    ).toBe(401);
  });
});

describe("photo deletion", () => {
  it("takes the photo's likes and comments with it, idempotently, even when the fact arrives twice", async () => {
    const photo = "photos/del/1.jpg";
    await like("a", photo, true);
    await like("b", photo, true);
    await comment("a", photo, { text: "nice" });
    expect(await summary(photo)).toMatchObject({ likes: 2, comments: 1 });
    const deleted = { key: photo, owner: "owner" };
    expect((await fact("snapmesh.storage.object.deleted", "del-1", deleted)).status).toBe(202);
    expect((await fact("snapmesh.storage.object.deleted", "del-1", deleted)).status).toBe(202);
    expect((await fact("snapmesh.storage.object.deleted", "del-2", deleted)).status).toBe(202);
    expect(await summary(photo, "a")).toEqual({ likes: 0, comments: 0, likedByMe: false });
    const left = await service.db.query("SELECT 1 FROM social.comments WHERE photo_id = $1", [photo]);
    expect(left.rowCount).toBe(0);
  });
});

describe("forged facts", () => {
  it("refuses storage facts nobody signed: alice's likes, comments and ownership survive", async () => {
    const photo = "photos/alice/p1.png";
    const created = { key: photo, owner: "alice", size: 1, etag: '"e"', contentType: "image/png", sha256: "b".repeat(64) };
    expect((await fact("snapmesh.storage.object.created", "alice-p1", created)).status).toBe(202);
    await like("carol", photo, true);
    await comment("carol", photo, { text: "lovely" });
    const forge = (id: string, type: string, data: unknown) =>
      fetch(`${base}/`, {
        method: "POST",
        headers: { "content-type": "application/cloudevents+json" },
        body: JSON.stringify({ specversion: "1.0", id, source: "/snapmesh/storage", type, data }),
      });
    const deleted = await forge("evil-1", "snapmesh.storage.object.deleted", { key: photo, owner: "alice" });
    expect(deleted.status).toBe(401);
    expect(await code(deleted)).toBe("event_unsigned");
    const takeover = await forge("evil-2", "snapmesh.storage.object.created", { ...created, owner: "bob" });
    expect(takeover.status).toBe(401);
    expect(await summary(photo)).toMatchObject({ likes: 1, comments: 1 });
    const owner = await service.db.query<{ owner: string }>("SELECT owner FROM social.photos WHERE photo_id = $1", [photo]);
    expect(owner.rows[0]?.owner).toBe("alice");
  });
});

describe("photo ownership", () => {
  const created = (id: string, key: string, owner: string) =>
    fact("snapmesh.storage.object.created", id, {
      key,
      owner,
      size: 1,
      etag: '"e"',
      contentType: "image/jpeg",
      sha256: "b".repeat(64),
    });
  const deleteComment = async (user: string, id: string) =>
    fetch(`${base}/v1/comments/${id}`, { method: "DELETE", headers: await as(user) });

  it("never changes a recorded owner: a fact naming someone else for a known photo is ignored", async () => {
    const photo = "album42-photo7";
    expect((await created("own-vera-1", photo, "vera")).status).toBe(202);
    const c1 = (await (await comment("pete", photo, { text: "lovely" })).json()) as { id: string };
    expect((await created("own-mallory-1", photo, "mallory")).status).toBe(202);
    expect((await deleteComment("mallory", c1.id)).status).toBe(403);
    // Also after the photo was deleted: a later upload fact by someone else does not make them the owner.
    expect((await fact("snapmesh.storage.object.deleted", "own-vera-del", { key: photo, owner: "vera" })).status).toBe(202);
    expect((await created("own-mallory-2", photo, "mallory")).status).toBe(202);
    const c2 = (await (await comment("pete", photo, { text: "again" })).json()) as { id: string };
    expect((await deleteComment("mallory", c2.id)).status).toBe(403);
    const owner = await service.db.query<{ owner: string }>("SELECT owner FROM social.photos WHERE photo_id = $1", [photo]);
    expect(owner.rows[0]!.owner).toBe("vera");
    expect((await created("own-vera-2", photo, "vera")).status).toBe(202);
    expect((await deleteComment("vera", c2.id)).status).toBe(200);
  });

  it("keeps a photo's likes and comments when a delete fact names someone other than its owner", async () => {
    const photo = "photos/wendy/1.jpg";
    expect((await created("own-wendy-1", photo, "wendy")).status).toBe(202);
    await like("fan", photo, true);
    await comment("fan", photo, { text: "wow" });
    expect((await fact("snapmesh.storage.object.deleted", "own-wendy-x", { key: photo, owner: "mallory" })).status).toBe(202);
    expect(await summary(photo)).toMatchObject({ likes: 1, comments: 1 });
    expect((await fact("snapmesh.storage.object.deleted", "own-wendy-del", { key: photo, owner: "wendy" })).status).toBe(202);
    expect(await summary(photo)).toMatchObject({ likes: 0, comments: 0 });
  });
});

describe("limits and permissions", () => {
  const extra: SocialService[] = [];
  afterAll(async () => {
    for (const s of extra) await s.stop();
  });

  it("rate-limits comments per user with 429 and Retry-After", async () => {
    const limited = await social.create(await isolatedEnv({ SOCIAL_COMMENT_LIMIT_PER_MINUTE: "2" }));
    extra.push(limited);
    limited.authenticate = issuer.verifier;
    const url = await listenOnLoopback(limited);
    const post = async () =>
      fetch(`${url}/v1/photos/p/comments`, {
        method: "POST",
        headers: await as("spammer"),
        body: JSON.stringify({ text: "buy" }),
      });
    expect((await post()).status).toBe(201);
    expect((await post()).status).toBe(201);
    const third = await post();
    expect(third.status).toBe(429);
    expect(Number(third.headers.get("retry-after"))).toBeGreaterThan(0);
  });
});
