import { AuthPermissionCheck, AuthSessionCreate, AuthUserSignedIn } from "@snapmesh/events";
import { defineService, onCommand, rest, sessionVerifier } from "@snapmesh/runtime";
import { authConfigSchema } from "./config.js";
import { authDeps } from "./deps.js";
import { permissionCheck } from "./handlers/permission-check.js";
import { sessionCreate } from "./handlers/session-create.js";
import { jwks } from "./routes/jwks.js";
import { providers } from "./routes/providers.js";

export { type AuthConfig, authConfigSchema } from "./config.js";
export type { AuthDeps, AuthOptions } from "./deps.js";
export { generateSigningJwk, KeyRing } from "./keyring.js";
export type { PermissionBackend } from "./permissions.js";

/** Sign-in (WeChat, OIDC, dev), session tokens and their JWKS, and permission decisions. */
export const auth = defineService({
  name: "auth",
  config: authConfigSchema,
  migrations: new URL("../migrations", import.meta.url),
  // Permission decisions are cached in NATS KV shared by all replicas; only a run without NATS (EVENT_SINK=none) caches per replica.
  needs: (config) => (config.EVENT_SINK !== "none" ? ["db", "nats"] : ["db"]),
  events: [AuthUserSignedIn],
  deps: authDeps,
  // auth verifies its own tokens against the current key ring (rotation included), like every other service does via the JWKS.
  authenticate: (deps, config) => (token) =>
    sessionVerifier({
      jwks: deps.keys.jwks(),
      issuer: config.SNAPMESH_JWT_ISSUER,
      allowDevTokens: config.SNAPMESH_DEV_AUTH === "1",
    })(token),
  handlers: [
    // Replies carry session tokens: never stored for de-duplication; a repeated sign-in signs in again.
    onCommand(AuthSessionCreate, sessionCreate, { dedupe: false }),
    onCommand(AuthPermissionCheck, permissionCheck),
  ],
  routes: [
    rest.query("/.well-known/jwks.json", jwks),
    rest.query("/v1/sessions/providers", providers),
    rest.command("post", "/v1/sessions", AuthSessionCreate, (req) => req.body, { status: 201 }),
    rest.command("post", "/v1/permissions/check", AuthPermissionCheck, (req) => req.body),
  ],
});
