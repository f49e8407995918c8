import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handlerContext, inRolledBackTx, serviceDatabase } from "../../../../test/support/handlers.ts";
import { createLogger, type Database, type User } from "../../../runtime/src/internal.ts";
import { permissionCheck } from "../../src/handlers/permission-check.ts";
import {
  localRules,
  MemoryDecisionCache,
  type PermissionBackend,
  type PermissionQuery,
  PermissionService,
} from "../../src/permissions.ts";
import { auth } from "../../src/service.ts";

let db: Database;

beforeAll(async () => {
  db = await serviceDatabase(auth);
});
afterAll(async () => {
  await db?.close();
});

/** Deps with "root" as admin and a backend that allows only "member" on "album:1", recording what it was asked. */
function deps() {
  const asked: PermissionQuery[] = [];
  const backend: PermissionBackend = {
    decide: async (q) => {
      asked.push(q);
      const allowed = q.userId === "member" && q.resource === "album:1";
      return { allowed, reason: allowed ? "album_member" : "not_album_member" };
    },
  };
  const cache = new MemoryDecisionCache(60_000);
  const permissions = new PermissionService(localRules(["root"]), backend, () => cache, false, createLogger("test", "silent"));
  return { asked, deps: { permissions } };
}

const check = (data: { action: string; resource: string; userId?: string }, opts: { user?: User; producer?: string }) =>
  inRolledBackTx(db, (tx) => permissionCheck(data, handlerContext(tx, opts), deps().deps));

describe("permissionCheck", () => {
  it("refuses a user asking about another user (403 not_self) without asking the backend", async () => {
    const { asked, deps: d } = deps();
    await inRolledBackTx(db, async (tx) => {
      const ctx = handlerContext(tx, { user: { id: "mallory" } });
      await expect(permissionCheck({ action: "delete", resource: "album:1", userId: "member" }, ctx, d)).rejects.toMatchObject({
        status: 403,
        code: "not_self",
      });
    });
    expect(asked).toEqual([]);
  });

  it("needs a caller: no user and no mesh producer is a 401", async () => {
    await expect(check({ action: "view", resource: "album:1", userId: "member" }, {})).rejects.toMatchObject({ status: 401 });
  });

  it("answers a user about themself from the backend, naming them", async () => {
    const { asked, deps: d } = deps();
    const answer = await inRolledBackTx(db, (tx) =>
      permissionCheck({ action: "comment", resource: "album:1" }, handlerContext(tx, { user: { id: "member" } }), d),
    );
    expect(answer).toEqual({ allowed: true, reason: "album_member", userId: "member", action: "comment", resource: "album:1" });
    expect(asked).toEqual([{ userId: "member", action: "comment", resource: "album:1" }]);
    const denied = await check({ action: "comment", resource: "album:2" }, { user: { id: "member" } });
    expect(denied).toMatchObject({ allowed: false, reason: "not_album_member" });
  });

  it("lets a mesh service ask about any user, and never tells it the user is an admin", async () => {
    const aboutRoot = await check({ action: "delete", resource: "album:1", userId: "root" }, { producer: "social" });
    expect(aboutRoot).toMatchObject({ allowed: true, reason: "allowed", userId: "root" });
    const onBehalf = await check(
      { action: "delete", resource: "album:1", userId: "root" },
      { producer: "social", user: { id: "alice" } },
    );
    expect(onBehalf).toMatchObject({ allowed: true, reason: "allowed", userId: "root" });
    // The admin asking about themself may learn why.
    expect(await check({ action: "delete", resource: "album:1" }, { user: { id: "root" } })).toMatchObject({ reason: "admin" });
  });

  it("refuses a mesh service that names no user (400 missing_user_id)", async () => {
    await expect(check({ action: "view", resource: "album:1" }, { producer: "social" })).rejects.toMatchObject({
      status: 400,
      code: "missing_user_id",
    });
  });
});
