import { randomBytes } from "node:crypto";

/** A name no other test run uses: for streams, consumers, buckets. Letters, digits and `_` only. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}${randomBytes(3).toString("hex")}`.toUpperCase();
}
