import { z } from "zod";
import { isoTime, userId } from "./common.js";
import { command, fact, reply } from "./define.js";

export const shareCode = z
  .string()
  .regex(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{10}$/)
  .describe("a 10-character share code");
const page = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/, "a page path like pages/album/index")
  .describe("mini-program page path, e.g. pages/album/index");
const params = z.record(z.string().max(64), z.unknown()).describe("the payload: any JSON object (at most 4 KiB serialised)");

export const SharecodeCreated = fact(
  "share-code",
  "snapmesh.sharecode.created",
  "A share code was made (also the reply to sharecode.create).",
  () => z.object({ code: shareCode, imageUrl: z.url().nullable(), expiresAt: isoTime.nullable(), createdBy: userId, page }),
);

export const SharecodeCreate = command(
  "share-code",
  "snapmesh.sharecode.create",
  "Make a share code: payload stored, QR PNG stored in storage, temporary image URL returned.",
  () =>
    z.object({
      page,
      params,
      ttlSeconds: z
        .number()
        .int()
        .min(60)
        .max(365 * 24 * 3600)
        .optional(),
      provider: z.enum(["qrcode", "wechat"]).optional().describe("who renders the image; default qrcode (local)"),
    }),
  SharecodeCreated,
);

export const SharecodeResolved = reply(
  "share-code",
  "snapmesh.sharecode.resolved",
  "A share code's payload (reply to sharecode.resolve).",
  () =>
    z.object({
      code: shareCode,
      page,
      params,
      scans: z.number().int(),
      expiresAt: isoTime.nullable(),
      imageStatus: z.enum(["ok", "gone"]),
    }),
);

export const SharecodeResolve = command(
  "share-code",
  "snapmesh.sharecode.resolve",
  "Resolve a code to its payload; counts a scan.",
  () => z.object({ code: z.string().min(1).max(32) }),
  SharecodeResolved,
);

export const SharecodeScanned = fact("share-code", "snapmesh.sharecode.scanned", "A share code was resolved.", () =>
  z.object({ code: shareCode, scans: z.number().int() }),
);

export const SharecodeExpired = reply("share-code", "snapmesh.sharecode.expired", "How many expired codes were purged.", () =>
  z.object({ purged: z.number().int() }),
);

export const SharecodeExpire = command(
  "share-code",
  "snapmesh.sharecode.expire",
  "Purge expired codes. Internal: accepted only signed by a mesh service; the schedule runs in share-code or as the chart's CronJob (`main purge`).",
  () => z.object({}).loose(),
  SharecodeExpired,
);
