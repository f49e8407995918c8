import { askPermission, RateLimiter, type Runtime } from "@snapmesh/runtime";
import type { SocialConfig } from "./config.js";

/** What social's handlers need besides their data and context; built once per process. */
export interface SocialDeps {
  config: Pick<SocialConfig, "SOCIAL_MAX_COMMENT_CHARS">;
  likeLimit: RateLimiter;
  commentLimit: RateLimiter;
  /** Whether the caller may comment on the resource (auth's permission check; always yes when it is off). */
  mayComment(token: string | undefined, resource: string): Promise<{ allowed: boolean; reason?: string | undefined }>;
}

export function socialDeps(rt: Runtime<SocialConfig>): SocialDeps {
  const { config } = rt;
  const authUrl = config.SOCIAL_PERMISSION_CHECK === "1" ? config.SNAPMESH_AUTH_URL : undefined;
  return {
    config,
    likeLimit: new RateLimiter(config.SOCIAL_LIKE_LIMIT_PER_MINUTE, 60_000),
    commentLimit: new RateLimiter(config.SOCIAL_COMMENT_LIMIT_PER_MINUTE, 60_000),
    mayComment: async (token, resource) =>
      authUrl
        ? askPermission(authUrl, `Bearer ${token ?? ""}`, "comment", resource, config.SOCIAL_PERMISSION_TIMEOUT_MS)
        : { allowed: true },
  };
}
