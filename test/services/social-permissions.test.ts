// Cross-service: social asks auth (and so the legacy backend, through the egress client) whether a user may comment.
import { afterAll, describe, expect, it } from "vitest";
import { generateSigningJwk } from "../../services/auth/src/keyring.ts";
import { auth } from "../../services/auth/src/service.ts";
import { social } from "../../services/social/src/service.ts";
import { type FakeLegacy, fakeLegacyBackend } from "../support/fakes/legacy.ts";
import { isolatedEnv, listenOnLoopback } from "../support/index.ts";

const running: Array<{ stop(): Promise<void> }> = [];
let legacy: FakeLegacy | undefined;
afterAll(async () => {
  for (const s of running) await s.stop();
  await legacy?.stop();
});

describe("social with auth's permission check", () => {
  it("lets a member comment and refuses an outsider with the legacy backend's reason", async () => {
    legacy = await fakeLegacyBackend();
    legacy.allow("member", "comment", "photo:album-photo");
    const authService = await auth.create(
      await isolatedEnv({
        AUTH_SIGNING_KEYS: JSON.stringify({ keys: [await generateSigningJwk()] }),
        SNAPMESH_DEV_AUTH: "1",
        EGRESS_ALLOW_HOSTS: "127.0.0.1",
        LEGACY_PERMISSION_URL: `${legacy.url}/api/permissions`,
      }),
    );
    running.push(authService);
    const authUrl = await listenOnLoopback(authService);
    const socialService = await social.create(
      await isolatedEnv({
        SOCIAL_PERMISSION_CHECK: "1",
        SNAPMESH_DEV_AUTH: "1",
        SNAPMESH_AUTH_URL: authUrl,
        SNAPMESH_JWKS_URL: `${authUrl}/.well-known/jwks.json`,
      }),
    );
    running.push(socialService);
    const socialUrl = await listenOnLoopback(socialService);
    const signIn = async (userId: string) =>
      (
        (await (
          await fetch(`${authUrl}/v1/sessions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ provider: "dev", userId }),
          })
        ).json()) as { token: string }
      ).token;
    const post = async (userId: string) =>
      fetch(`${socialUrl}/v1/photos/album-photo/comments`, {
        method: "POST",
        headers: { authorization: `Bearer ${await signIn(userId)}`, "content-type": "application/json" },
        body: JSON.stringify({ text: "hello" }),
      });
    expect((await post("member")).status).toBe(201);
    const denied = await post("outsider");
    expect(denied.status).toBe(403);
    const body = (await denied.json()) as { error: { code: string; details: { reason: string } } };
    expect(body.error).toMatchObject({ code: "permission_denied", details: { reason: "not_album_member" } });
  });
});
