import { baseConfigSchema, wechatConfigShape } from "@snapmesh/runtime";
import { z } from "zod";

export const shareCodeConfigSchema = baseConfigSchema.extend({
  /** The storage service (share-code stores QR images there and signs their URLs). */
  SNAPMESH_STORAGE_URL: z.url(),
  SHARECODE_STORAGE_TIMEOUT_MS: z.coerce.number().int().min(1).default(5000),
  /** What the QR code holds: `{code}` is replaced by the code; default the bare code. */
  SHARECODE_CONTENT_TEMPLATE: z.string().default("{code}"),
  SHARECODE_DEFAULT_TTL_SECONDS: z.coerce
    .number()
    .int()
    .min(60)
    .default(30 * 24 * 3600),
  SHARECODE_IMAGE_URL_TTL_SECONDS: z.coerce.number().int().min(60).default(7200),
  SHARECODE_MAX_PARAMS_BYTES: z.coerce.number().int().min(2).default(4096),
  /** Expired codes answer 410 for this long, then the purge removes them (and they answer 404). */
  SHARECODE_PURGE_GRACE_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .default(7 * 24 * 3600),
  /** Purge expired codes every N seconds while a replica runs (0: off; in a cluster the chart's CronJob runs `main purge`). */
  SHARECODE_PURGE_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(0),
  ...wechatConfigShape,
});
export type ShareCodeConfig = z.infer<typeof shareCodeConfigSchema>;
