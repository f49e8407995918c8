import { z } from "zod";

export const id = (what: string) =>
  z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:@-]+$/)
    .describe(what);
export const userId = id("a user id (the subject of a session token)");
export const photoId = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9._:@/-]+$/)
  .describe("a photo id: the storage key of the photo (URL-encode its slashes in REST paths), or an app-chosen id");
export const isoTime = z.iso.datetime({ offset: true }).describe("RFC 3339 time");

/** Storage keys: `/`-separated segments of [A-Za-z0-9._-], no `.`/`..` segment, no leading `/`, at most 512 characters. */
export const objectKey = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, "segments of letters, digits, '.', '_' and '-', separated by '/'")
  .refine((k) => !k.split("/").some((s) => s === "." || s === ".."), "no '.' or '..' segments")
  .describe("object key");
