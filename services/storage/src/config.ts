import { baseConfigSchema, splitList } from "@snapmesh/runtime";
import { z } from "zod";
import { parseSigningKeys } from "./signing.js";

export const storageConfigSchema = baseConfigSchema.extend({
  STORAGE_BACKEND: z.enum(["fs", "s3", "nats"]).default("fs"),
  STORAGE_DIR: z.string().default(".data/objects"),
  STORAGE_S3_BUCKET: z.string().optional(),
  STORAGE_S3_ENDPOINT: z.url().optional(),
  STORAGE_S3_REGION: z.string().default("us-east-1"),
  STORAGE_S3_FORCE_PATH_STYLE: z.enum(["0", "1"]).default("0"),
  STORAGE_NATS_BUCKET: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default("snapmesh-objects"),
  STORAGE_MAX_OBJECT_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(25 * 1024 * 1024),
  STORAGE_USER_QUOTA_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(1024 * 1024 * 1024),
  STORAGE_ALLOWED_TYPES: z
    .string()
    .default("image/jpeg,image/png,image/gif,image/webp,image/heic")
    .transform((v) => splitList(v)),
  /** `kid:secret[,kid:secret…]`; the first signs, all verify (rotation). */
  STORAGE_SIGNING_KEYS: z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      // Checked here, not where the service is built, so a bad key is a config error like any other (exit 78).
      try {
        parseSigningKeys(value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    }),
  STORAGE_URL_TTL_SECONDS: z.coerce.number().int().min(1).default(7200),
  STORAGE_URL_TTL_MAX_SECONDS: z.coerce
    .number()
    .int()
    .min(1)
    .default(7 * 24 * 3600),
  /** Base of temporary URLs (a CDN or ingress host); default: this service's own address. */
  STORAGE_PUBLIC_URL: z.url().optional(),
  /** `1`: sign URLs for others' objects when auth allows `read` on `object:<key>` (else only one's own objects). */
  STORAGE_PERMISSION_CHECK: z.enum(["0", "1"]).default("0"),
  SNAPMESH_AUTH_URL: z.url().optional(),
  STORAGE_PERMISSION_TIMEOUT_MS: z.coerce.number().int().min(1).default(3000),
  /** Streamed uploads in progress at once, per user (429) and in all (503): each holds a socket and a blob. */
  STORAGE_MAX_CONCURRENT_UPLOADS_PER_USER: z.coerce.number().int().min(1).default(4),
  STORAGE_MAX_CONCURRENT_UPLOADS: z.coerce.number().int().min(1).default(128),
  /** A streamed upload whose body sends nothing for this long is aborted (408) and its partial blob removed. */
  STORAGE_UPLOAD_IDLE_TIMEOUT_MS: z.coerce.number().int().min(1).default(30_000),
});
export type StorageConfig = z.infer<typeof storageConfigSchema>;
