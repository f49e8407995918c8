import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import type { Database, Queryable } from "../../../runtime/src/internal.ts";
import type { StorageDeps } from "../../src/deps.ts";
import { objectPut } from "../../src/handlers/object-put.ts";
import { urlSign } from "../../src/handlers/url-sign.ts";
import { storage } from "../../src/service.ts";
import { verify } from "../../src/signing.ts";
import { png } from "../images.ts";
import { PUBLIC_URL, unitDeps, user } from "./support.ts";

let db: Database;
beforeAll(async () => {
  db = await serviceDatabase(storage);
});
afterAll(async () => {
  await db?.close();
});

const store = (tx: Queryable, deps: StorageDeps, owner: string, key: string) =>
  objectPut({ key, data: png(300).toString("base64") }, handlerContext(tx, { user: user(owner) }), deps);
const notFound = (key: string) => ({ key, error: { code: "object_not_found", message: `no object '${key}'` } });

describe("url.sign", () => {
  it("signs the caller's own object: a URL under the public base that verifies for exactly its bytes", async () => {
    const deps = unitDeps({ STORAGE_URL_TTL_SECONDS: "600" });
    await inRolledBackTx(db, async (tx) => {
      const stored = await store(tx, deps, "alice", "u/own-photo.png");
      const before = Math.floor(Date.now() / 1000);
      const { items } = await urlSign({ keys: ["u/own-photo.png"] }, handlerContext(tx, { user: user("alice") }), deps);
      expect(items).toHaveLength(1);
      const url = new URL(items[0]!.url!);
      expect(`${url.origin}${url.pathname}`).toBe(`${PUBLIC_URL}/v1/objects/u/own-photo.png`);
      const q = Object.fromEntries(url.searchParams);
      expect(q.v).toBe(stored.sha256);
      expect(Number(q.expires) - before).toBeGreaterThanOrEqual(600);
      expect(Number(q.expires) - before).toBeLessThanOrEqual(601);
      expect(items[0]!.expiresAt).toBe(new Date(Number(q.expires) * 1000).toISOString());
      expect(verify(deps.keys, "GET", "u/own-photo.png", q, before)).toEqual({ ok: true, sha256: stored.sha256 });
    });
  });

  it("caps a requested lifetime at STORAGE_URL_TTL_MAX_SECONDS", async () => {
    const deps = unitDeps({ STORAGE_URL_TTL_MAX_SECONDS: "60" });
    await inRolledBackTx(db, async (tx) => {
      await store(tx, deps, "alice", "u/ttl.png");
      const before = Math.floor(Date.now() / 1000);
      const { items } = await urlSign(
        { keys: ["u/ttl.png"], ttlSeconds: 3600 },
        handlerContext(tx, { user: user("alice") }),
        deps,
      );
      expect(Number(new URL(items[0]!.url!).searchParams.get("expires")) - before).toBeLessThanOrEqual(61);
    });
  });

  it("answers another user's object exactly like a missing one", async () => {
    const deps = unitDeps();
    await inRolledBackTx(db, async (tx) => {
      await store(tx, deps, "alice", "u/alice.png");
      const { items } = await urlSign({ keys: ["u/alice.png", "u/nobody.png"] }, handlerContext(tx, { user: user("bob") }), deps);
      expect(items).toEqual([notFound("u/alice.png"), notFound("u/nobody.png")]);
    });
  });

  it("signs others' objects the permission check allows, and asks for missing keys too", async () => {
    const base = unitDeps();
    const asked: Array<[string, string]> = [];
    const deps: StorageDeps = {
      ...base,
      urlCaller: (caller) => ({
        id: caller.id,
        mayRead: async (key) => {
          asked.push([caller.id, key]);
          return key === "s/album.png";
        },
      }),
    };
    await inRolledBackTx(db, async (tx) => {
      await store(tx, deps, "alice", "s/album.png");
      await store(tx, deps, "alice", "s/private.png");
      await store(tx, deps, "bob", "s/bobs.png");
      const keys = ["s/album.png", "s/private.png", "s/missing.png", "s/bobs.png"];
      const { items } = await urlSign({ keys }, handlerContext(tx, { user: user("bob") }), deps);
      expect(items[0]!.url).toContain("/v1/objects/s/album.png?");
      expect(items[1]).toEqual(notFound("s/private.png"));
      expect(items[2]).toEqual(notFound("s/missing.png"));
      expect(items[3]!.url).toContain("/v1/objects/s/bobs.png?");
      expect(asked.map(([, key]) => key).sort()).toEqual(["s/album.png", "s/missing.png", "s/private.png"]);
      expect(asked.every(([who]) => who === "bob")).toBe(true);
    });
  });

  it("needs a caller", async () => {
    const deps = unitDeps();
    await inRolledBackTx(db, async (tx) => {
      await expect(urlSign({ keys: ["u/a.png"] }, handlerContext(tx), deps)).rejects.toMatchObject({ status: 401 });
    });
  });
});
