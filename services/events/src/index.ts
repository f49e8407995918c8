export * from "./define.ts";
import type { EventDef } from "./define.ts";
export const catalog: readonly EventDef[] = [];
