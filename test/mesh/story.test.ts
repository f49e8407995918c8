// The whole user story against the mesh as separate processes: real NATS, real PostgreSQL, the real
// forward proxy as egress gateway, and honest fakes of the outside world that accept only the egress address.
import { CloudEvent, emitterFor, HTTP, Mode } from "cloudevents";
import jsQRModule from "jsqr";
import type { NatsConnection } from "nats";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeLegacy, fakeLegacyBackend } from "../support/fakes/legacy.ts";
import { type FakeWechat, fakeWechat } from "../support/fakes/wechat.ts";
import { eventually, natsConnect, streamEvents } from "../support/index.ts";
import { type Mesh, startMesh } from "../support/mesh.ts";

type Decode = (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;
const jsQR: Decode = (jsQRModule as unknown as { default?: Decode }).default ?? (jsQRModule as unknown as Decode);
const EGRESS_IP = "127.0.0.2";

let wechat: FakeWechat;
let legacy: FakeLegacy;
let mesh: Mesh;
let nc: NatsConnection;

beforeAll(async () => {
  wechat = await fakeWechat({ allowFrom: [EGRESS_IP] });
  legacy = await fakeLegacyBackend({ allowFrom: [EGRESS_IP] });
  mesh = await startMesh({
    SNAPMESH_EGRESS: "tinyproxy",
    SNAPMESH_EGRESS_ADDRESS: EGRESS_IP,
    EGRESS_REQUIRE_PROXY: "1",
    EGRESS_ALLOW_HOSTS: "127.0.0.1",
    WECHAT_API_BASE: wechat.url,
    WECHAT_APP_ID: wechat.appId,
    WECHAT_APP_SECRET: wechat.appSecret,
    SNAPMESH_LEGACY_URL: `${legacy.url}/api/permissions`,
  });
  nc = await natsConnect();
}, 120_000);

afterAll(async () => {
  await nc?.close();
  await mesh?.stop();
  await Promise.all([wechat?.stop(), legacy?.stop()]);
});

const json = (token: string | undefined, body?: unknown, method = body === undefined ? "GET" : "POST"): RequestInit => ({
  method,
  headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
  ...(body === undefined ? {} : { body: JSON.stringify(body) }),
});
const signIn = async (body: unknown) => {
  const res = await fetch(`${mesh.urls.auth}/v1/sessions`, json(undefined, body));
  expect(res.status).toBe(201);
  return (await res.json()) as { token: string; user: { id: string } };
};

describe("the user story across the mesh", () => {
  it("sign in, upload, share, like, comment, permission, share code, delete, with a service killed mid-way", async () => {
    const alice = await signIn({ provider: "dev", userId: "alice" });
    const bob = await signIn({ provider: "dev", userId: "bob" });
    const wx = await signIn({ provider: "wechat", code: wechat.loginCode("openid-carol") });
    expect(wx.user.id).toMatch(/^u_/);

    // Upload a photo and read it back through a temporary URL.
    const photo = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from("a photo of the lake".repeat(500))]);
    const key = "photos/alice/lake.jpg";
    const put = await fetch(`${mesh.urls.storage}/v1/objects/${key}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${alice.token}`, "content-type": "image/jpeg" },
      body: photo,
    });
    expect(put.status).toBe(201);
    const signed = (await (await fetch(`${mesh.urls.storage}/v1/temp-urls`, json(alice.token, { keys: [key] }))).json()) as {
      items: Array<{ url: string }>;
    };
    const downloaded = Buffer.from(await (await fetch(signed.items[0]!.url)).arrayBuffer());
    expect(downloaded.equals(photo)).toBe(true);

    // Like twice: one like. Social learns the photo's owner from storage's fact.
    const photoPath = `${mesh.urls.social}/v1/photos/${encodeURIComponent(key)}`;
    for (let i = 0; i < 2; i++) expect((await fetch(`${photoPath}/like`, json(bob.token, undefined, "PUT"))).status).toBe(200);
    expect(((await (await fetch(`${photoPath}/social`, json(bob.token))).json()) as { likes: number }).likes).toBe(1);

    // Kill -9 social in the middle of the story; the runner restarts it and nothing is lost or doubled.
    process.kill(mesh.pids.social!, "SIGKILL");
    await mesh.exited(mesh.pids.social!);
    await mesh.ready("social");
    expect((await fetch(`${photoPath}/like`, json(bob.token, undefined, "PUT"))).status).toBe(200);
    expect(((await (await fetch(`${photoPath}/social`, json(bob.token))).json()) as { likes: number }).likes).toBe(1);

    // Comment with permission from the legacy backend (asked by auth through the egress gateway).
    legacy.allow("bob", "comment", `photo:${key}`);
    const commented = await fetch(`${photoPath}/comments`, {
      ...json(bob.token, { text: "what a view" }),
      headers: { ...json(bob.token).headers, "idempotency-key": "c-1" } as Record<string, string>,
    });
    expect(commented.status).toBe(201);
    const retried = await fetch(`${photoPath}/comments`, {
      ...json(bob.token, { text: "what a view" }),
      headers: { ...json(bob.token).headers, "idempotency-key": "c-1" } as Record<string, string>,
    });
    expect(retried.status).toBe(201);
    const denied = await fetch(`${photoPath}/comments`, json(wx.token, { text: "let me in" }));
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: { details: { reason: string } } }).error.details.reason).toBe("not_album_member");
    const listed = (await (await fetch(`${photoPath}/comments?limit=10`)).json()) as {
      items: Array<{ text: string; authorId: string }>;
    };
    expect(listed.items.map((c) => [c.authorId, c.text])).toEqual([["bob", "what a view"]]);
    // A CloudEvent through the official SDK reaches the same handler.
    let replyText = "";
    await emitterFor(
      async (message: { headers: Record<string, unknown>; body: unknown }) => {
        const res = await fetch(`${mesh.urls.auth}/`, {
          method: "POST",
          headers: { ...(message.headers as Record<string, string>), authorization: `Bearer ${bob.token}` },
          body: message.body as string,
        });
        replyText = JSON.stringify(HTTP.toEvent({ headers: Object.fromEntries(res.headers), body: await res.text() }));
      },
      { mode: Mode.BINARY },
    )(
      new CloudEvent({
        type: "snapmesh.auth.permission.check",
        source: "/test/story",
        data: { action: "comment", resource: `photo:${key}` },
      }),
    );
    expect(JSON.parse(replyText)).toMatchObject({
      type: "snapmesh.auth.permission.decided",
      data: { allowed: true, reason: "album_member" },
    });

    // A share code for the album: its PNG decodes back to the code, which resolves to the payload.
    const share = (await (
      await fetch(
        `${mesh.urls["share-code"]}/v1/share-codes`,
        json(alice.token, { page: "pages/album/index", params: { albumId: "lake", owner: "alice" } }),
      )
    ).json()) as {
      code: string;
      imageUrl: string;
    };
    const png = PNG.sync.read(Buffer.from(await (await fetch(share.imageUrl)).arrayBuffer()));
    expect(jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data).toBe(share.code);
    const resolved = (await (await fetch(`${mesh.urls["share-code"]}/v1/share-codes/${share.code}`)).json()) as Record<
      string,
      unknown
    >;
    expect(resolved).toMatchObject({
      page: "pages/album/index",
      params: { albumId: "lake", owner: "alice" },
      scans: 1,
      imageStatus: "ok",
    });

    // A fact from anyone but storage itself is refused on social's public door: the likes stay.
    const forged = await fetch(`${mesh.urls.social}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({
        specversion: "1.0",
        id: "evil-1",
        source: "/snapmesh/storage",
        type: "snapmesh.storage.object.deleted",
        data: { key, owner: "alice" },
      }),
    });
    expect(forged.status).toBe(401);
    expect(((await (await fetch(`${photoPath}/social`, json(bob.token))).json()) as { likes: number }).likes).toBe(1);
    // Signed facts on the stream carry their producer's proof.
    expect((await streamEvents(nc, mesh.stream)).every((f) => typeof f.dssematerial === "string")).toBe(true);

    // Deleting the photo takes its likes and comments with it (through the JetStream consumer).
    expect((await fetch(`${mesh.urls.storage}/v1/objects/${key}`, json(alice.token, undefined, "DELETE"))).status).toBe(200);
    await eventually(
      async () => {
        const s = (await (await fetch(`${photoPath}/social`, json(bob.token))).json()) as { likes: number; comments: number };
        return s.likes === 0 && s.comments === 0;
      },
      "the photo's likes and comments to go",
      20_000,
    );
    expect(((await (await fetch(`${photoPath}/comments`)).json()) as { items: unknown[] }).items).toEqual([]);

    // The share code's image deleted: the code still resolves and says its image is gone.
    expect(
      (await fetch(`${mesh.urls.storage}/v1/objects/sharecodes/${share.code}.png`, json(alice.token, undefined, "DELETE")))
        .status,
    ).toBe(200);
    await eventually(
      async () => {
        const r = (await (await fetch(`${mesh.urls["share-code"]}/v1/share-codes/${share.code}`)).json()) as {
          imageStatus: string;
        };
        return r.imageStatus === "gone";
      },
      "the share code to report its image gone",
      20_000,
    );

    // Every fact once: one like.added for bob despite three likes and a crash; one comment.created.
    const facts = await streamEvents(nc, mesh.stream);
    expect(facts.filter((f) => f.type === "snapmesh.social.like.added")).toHaveLength(1);
    expect(facts.filter((f) => f.type === "snapmesh.social.comment.created")).toHaveLength(1);
    expect(new Set(facts.map((f) => f.id)).size).toBe(facts.length);
    // The outside world only ever saw the egress address.
    expect(wechat.refused).toEqual([]);
    expect(legacy.refused).toEqual([]);
    expect(legacy.calls.length).toBeGreaterThan(0);
  });
});

describe("the mesh without the egress gateway", () => {
  it("fails WeChat sign-in with a clear error and sends nothing around the proxy", async () => {
    const direct = await startMesh({
      SNAPMESH_EGRESS: "none",
      EGRESS_REQUIRE_PROXY: "1",
      EGRESS_ALLOW_HOSTS: "127.0.0.1",
      WECHAT_API_BASE: wechat.url,
      WECHAT_APP_ID: wechat.appId,
      WECHAT_APP_SECRET: wechat.appSecret,
    });
    try {
      const refusedBefore = wechat.refused.length;
      const res = await fetch(
        `${direct.urls.auth}/v1/sessions`,
        json(undefined, { provider: "wechat", code: wechat.loginCode("openid-dan") }),
      );
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("egress_proxy_required");
      expect(body.error.message).toContain("EGRESS_PROXY");
      expect(wechat.refused.length).toBe(refusedBefore);
    } finally {
      await direct.stop();
    }
  }, 120_000);
});
