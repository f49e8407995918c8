import { baseConfigSchema, splitList, wechatConfigShape } from "@snapmesh/runtime";
import { z } from "zod";

export const authConfigSchema = baseConfigSchema.extend({
  /** Private signing keys as a JWK set JSON `{"keys":[…]}`: the first signs, all are published (rotation). */
  AUTH_SIGNING_KEYS: z.string().optional(),
  /** The same JSON in a file (a mounted Kubernetes Secret), re-read every AUTH_KEYS_RELOAD_SECONDS. */
  AUTH_SIGNING_KEYS_FILE: z.string().optional(),
  AUTH_KEYS_RELOAD_SECONDS: z.coerce.number().int().min(1).default(30),
  AUTH_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
  ...wechatConfigShape,
  OIDC_ISSUER: z.string().optional(),
  OIDC_AUDIENCE: z.string().optional(),
  OIDC_JWKS_URL: z.url().optional(),
  LEGACY_PERMISSION_URL: z.url().optional(),
  LEGACY_PERMISSION_METHOD: z.enum(["POST", "GET"]).default("POST"),
  /** A header sent to the legacy backend, `Name: value` (e.g. `Authorization: Bearer …`, from a Secret). */
  LEGACY_AUTH_HEADER: z.string().optional(),
  LEGACY_ALLOWED_FIELD: z.string().default("allowed"),
  LEGACY_TIMEOUT_MS: z.coerce.number().int().min(1).default(2000),
  LEGACY_FAIL_OPEN: z.enum(["0", "1"]).default("0"),
  PERMISSION_CACHE_TTL_SECONDS: z.coerce.number().int().min(1).default(30),
  PERMISSION_CACHE_BUCKET: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("snapmesh-permissions"),
  AUTH_ADMIN_USERS: z
    .string()
    .default("")
    .transform((v) => splitList(v)),
  SIGNIN_LIMIT_PER_IP: z.coerce.number().int().min(1).default(30),
  SIGNIN_LIMIT_PER_SUBJECT: z.coerce.number().int().min(1).default(10),
  SIGNIN_LIMIT_WINDOW_SECONDS: z.coerce.number().int().min(1).default(60),
});
export type AuthConfig = z.infer<typeof authConfigSchema>;
