import { z } from "zod";
import { isoTime, userId } from "./common.js";
import { command, fact, reply } from "./define.js";

export const AuthSessionCreated = reply(
  "auth",
  "snapmesh.auth.session.created",
  "A session token (short-lived JWT, verifiable with the JWKS).",
  () =>
    z.object({
      token: z.string(),
      expiresAt: isoTime,
      user: z.object({ id: userId }),
    }),
);

export const AuthSessionCreate = command(
  "auth",
  "snapmesh.auth.session.create",
  "Sign in with a provider: `wechat` (mini-program login code), `oidc` (ID token), `dev` (any user id, only when SNAPMESH_DEV_AUTH=1).",
  () =>
    z.discriminatedUnion("provider", [
      z.object({ provider: z.literal("wechat"), code: z.string().min(1).max(128).describe("wx.login() code") }),
      z.object({ provider: z.literal("oidc"), idToken: z.string().min(1).max(8192).describe("the IdP's ID token (JWT)") }),
      z.object({ provider: z.literal("dev"), userId: userId }),
    ]),
  AuthSessionCreated,
);

const resource = z.string().min(1).max(256).describe("what the action is on, e.g. `album:42` or `photo:p1`");
const action = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-z][a-z0-9_.:-]*$/)
  .describe("what the user wants to do, e.g. `comment`");

export const AuthPermissionDecided = reply(
  "auth",
  "snapmesh.auth.permission.decided",
  "The decision of a permission check, with its reason.",
  () => z.object({ allowed: z.boolean(), reason: z.string(), action, resource, userId }),
);

export const AuthPermissionCheck = command(
  "auth",
  "snapmesh.auth.permission.check",
  "May this user do this? Local rules first, then the legacy backend (cached).",
  () => z.object({ action, resource, userId: userId.optional().describe("whom to ask about; default: the caller") }),
  AuthPermissionDecided,
);

export const AuthUserSignedIn = fact("auth", "snapmesh.auth.user.signed-in", "A user signed in.", () =>
  z.object({ userId, provider: z.enum(["wechat", "oidc", "dev"]), firstTime: z.boolean() }),
);
