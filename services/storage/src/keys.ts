import { badRequest } from "@snapmesh/runtime";

const KEY = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;

/** Object keys: 1-512 characters of [A-Za-z0-9._-] in `/`-separated segments; no `.`/`..` segments, no leading `/`. */
export function checkKey(key: string): string {
  if (key.length === 0 || key.length > 512) throw badRequest("invalid_key", "an object key has 1 to 512 characters");
  if (!KEY.test(key)) {
    throw badRequest("invalid_key", "an object key is '/'-separated segments of letters, digits, '.', '_' and '-'");
  }
  if (key.split("/").some((seg) => seg === "." || seg === "..")) {
    throw badRequest("invalid_key", "an object key may not contain '.' or '..' segments");
  }
  return key;
}
