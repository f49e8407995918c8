import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { renderCatalog } from "../src/docs.ts";
import {
  AuthSessionCreate,
  type CommandDef,
  catalog,
  findEvent,
  makeEvent,
  SERVICES,
  SharecodeCreate,
  SocialCommentCreate,
  StorageObjectPut,
  StorageUrlSign,
} from "../src/index.ts";

// Every type the public contract (README, docs/events.md) names.
const CONTRACT = [
  "snapmesh.auth.session.create",
  "snapmesh.auth.session.created",
  "snapmesh.auth.permission.check",
  "snapmesh.auth.permission.decided",
  "snapmesh.auth.user.signed-in",
  "snapmesh.storage.object.put",
  "snapmesh.storage.url.sign",
  "snapmesh.storage.url.signed",
  "snapmesh.storage.object.delete",
  "snapmesh.storage.object.created",
  "snapmesh.storage.object.deleted",
  "snapmesh.social.like.set",
  "snapmesh.social.like.unset",
  "snapmesh.social.comment.create",
  "snapmesh.social.comment.created",
  "snapmesh.social.comment.delete",
  "snapmesh.social.like.added",
  "snapmesh.social.like.removed",
  "snapmesh.social.comment.deleted",
  "snapmesh.sharecode.create",
  "snapmesh.sharecode.created",
  "snapmesh.sharecode.resolve",
  "snapmesh.sharecode.resolved",
  "snapmesh.sharecode.scanned",
];

const issuesOf = (schema: z.ZodType, value: unknown) => {
  const r = schema.safeParse(value);
  return r.success ? [] : r.error.issues.map((i) => i.path.join("."));
};

describe("event catalog", () => {
  it("lists every type of the public contract", () => {
    const types = catalog.map((d) => d.type);
    for (const t of CONTRACT) expect(types, t).toContain(t);
    expect(new Set(types).size).toBe(types.length);
  });

  it("gives every command a reply type from the catalog", () => {
    const commands = catalog.filter((d) => d.kind === "command") as CommandDef[];
    expect(commands.length).toBeGreaterThanOrEqual(10);
    for (const c of commands) {
      expect(c.reply, c.type).toBeDefined();
      expect(findEvent(c.reply!.type)).toBe(c.reply);
    }
  });

  it("names types snapmesh.<service>.<entity>.<verb>, the service being its owner in the manifest", () => {
    for (const d of catalog) {
      expect(d.type).toMatch(/^snapmesh\.[a-z]+\.[a-z-]+(\.[a-z-]+)?$/);
      expect(SERVICES).toContain(d.service);
      expect(d.type.split(".")[1], d.type).toBe(d.service.replace(/-/g, ""));
    }
  });

  it("makes events with source /snapmesh/<service>, unique ids and ISO times", () => {
    const a = makeEvent(StorageUrlSign, { keys: ["a.png"] });
    const b = makeEvent(StorageUrlSign, { keys: ["a.png"] });
    expect(a.source).toBe("/snapmesh/storage");
    expect(a.specversion).toBe("1.0");
    expect(a.id).not.toBe(b.id);
    expect(new Date(a.time).toISOString()).toBe(a.time);
    expect(makeEvent(SharecodeCreate, { page: "pages/a", params: {} }).source).toBe("/snapmesh/share-code");
  });

  it("accepts good data and rejects bad data at the right path", () => {
    expect(issuesOf(StorageObjectPut.data, { key: "a/b.png", data: "iVBORw0KGgo=" })).toEqual([]);
    expect(issuesOf(StorageObjectPut.data, { key: "../etc/passwd", data: "AAAA" })).toEqual(["key"]);
    expect(issuesOf(StorageObjectPut.data, { key: "/abs.png", data: "AAAA" })).toEqual(["key"]);
    expect(issuesOf(StorageObjectPut.data, { key: "a.png", data: "not base64!" })).toEqual(["data"]);
    expect(issuesOf(StorageUrlSign.data, { keys: [] })).toEqual(["keys"]);
    expect(issuesOf(StorageUrlSign.data, { keys: Array(51).fill("a") })).toEqual(["keys"]);
    expect(issuesOf(SocialCommentCreate.data, { photoId: "p1", text: "" })).toEqual(["text"]);
    expect(issuesOf(AuthSessionCreate.data, { provider: "dev", userId: "u1" })).toEqual([]);
    expect(issuesOf(AuthSessionCreate.data, { provider: "wechat" })).toEqual(["code"]);
    expect(issuesOf(AuthSessionCreate.data, { provider: "github", code: "x" })).toEqual(["provider"]);
    expect(issuesOf(SharecodeCreate.data, { page: "pages/a", params: [] })).toEqual(["params"]);
  });

  it("has a checked-in Markdown catalog that matches the definitions", () => {
    const file = fileURLToPath(new URL("../docs/events.md", import.meta.url));
    const checkedIn = readFileSync(file, "utf8");
    expect(checkedIn === renderCatalog(), "docs/events.md is stale: run `npm run events:docs`").toBe(true);
  });
});
