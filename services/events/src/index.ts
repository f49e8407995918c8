import * as auth from "./auth.js";
import type { EventDef } from "./define.js";
import * as sharecode from "./sharecode.js";
import * as social from "./social.js";
import * as storage from "./storage.js";

export * from "./auth.js";
export * from "./common.js";
export * from "./define.js";
export * from "./manifest.js";
export * from "./sharecode.js";
export * from "./social.js";
export * from "./storage.js";

const isDef = (v: unknown): v is EventDef => typeof v === "object" && v !== null && "type" in v && "kind" in v && "data" in v;

/** Every event type snapmesh knows, sorted by type (code points: `localeCompare` would load ICU's collator, ~15 ms of a cold start). */
export const catalog: readonly EventDef[] = [auth, storage, social, sharecode]
  .flatMap((m) => Object.values(m).filter(isDef))
  .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));

export function findEvent(type: string): EventDef | undefined {
  return catalog.find((d) => d.type === type);
}
