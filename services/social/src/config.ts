import { baseConfigSchema } from "@snapmesh/runtime";
import { z } from "zod";

export const socialConfigSchema = baseConfigSchema.extend({
  SOCIAL_MAX_COMMENT_CHARS: z.coerce.number().int().min(1).max(4000).default(2000),
  SOCIAL_COMMENT_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  SOCIAL_LIKE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
  /** Ask auth (and so the legacy backend) whether a user may comment: `POST <SNAPMESH_AUTH_URL>/v1/permissions/check`. */
  SOCIAL_PERMISSION_CHECK: z.enum(["0", "1"]).default("0"),
  SNAPMESH_AUTH_URL: z.url().optional(),
  SOCIAL_PERMISSION_TIMEOUT_MS: z.coerce.number().int().min(1).default(3000),
});
export type SocialConfig = z.infer<typeof socialConfigSchema>;
