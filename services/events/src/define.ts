import { randomUUID } from "node:crypto";
import type { z } from "zod";

import type { ServiceName } from "./manifest.js";

export type EventKind = "command" | "reply" | "fact";

export interface EventDef<T extends string = string, S extends z.ZodType = z.ZodType> {
  readonly type: T;
  readonly kind: EventKind;
  /** The service that owns the type: it handles the command, or it emits the fact / reply. */
  readonly service: ServiceName;
  readonly description: string;
  readonly data: S;
}

export interface CommandDef<T extends string = string, S extends z.ZodType = z.ZodType, R extends EventDef = EventDef>
  extends EventDef<T, S> {
  readonly kind: "command";
  /** The event type answered in the HTTP response; absent for commands answered with 202 and no body. */
  readonly reply?: R;
}

export type DataOf<D extends EventDef> = z.infer<D["data"]>;

/**
 * Gives a definition its data schema, built on first use: building every schema of the catalog takes ~35 ms of a
 * service's cold start, and a service uses a few of them.
 */
function withData<D extends Omit<EventDef, "data">, S extends z.ZodType>(def: D, build: () => S): D & { readonly data: S } {
  let data: S | undefined;
  return Object.defineProperty(def, "data", { get: () => (data ??= build()), enumerable: true }) as D & { readonly data: S };
}

export function fact<T extends string, S extends z.ZodType>(
  service: ServiceName,
  type: T,
  description: string,
  data: () => S,
): EventDef<T, S> {
  return withData({ type, kind: "fact" as const, service, description }, data);
}

export function reply<T extends string, S extends z.ZodType>(
  service: ServiceName,
  type: T,
  description: string,
  data: () => S,
): EventDef<T, S> {
  return withData({ type, kind: "reply" as const, service, description }, data);
}

export function command<T extends string, S extends z.ZodType, R extends EventDef | undefined = undefined>(
  service: ServiceName,
  type: T,
  description: string,
  data: () => S,
  replyDef?: R,
): CommandDef<T, S, R extends EventDef ? R : EventDef> {
  const def = { type, kind: "command" as const, service, description, ...(replyDef ? { reply: replyDef } : {}) };
  return withData(def, data) as CommandDef<T, S, R extends EventDef ? R : EventDef>;
}

/** A plain CloudEvents 1.0 event as snapmesh produces and stores it (structured JSON form). */
export interface SnapEvent<D = unknown> {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  time: string;
  datacontenttype?: string;
  dataschema?: string;
  subject?: string;
  data?: D;
  [extension: string]: unknown;
}

export function sourceOf(service: ServiceName | string): string {
  return `/snapmesh/${service}`;
}

/** Makes an event of a catalog type: `source` = `/snapmesh/<service>`, a fresh UUID `id`, the current `time`. */
export function makeEvent<D extends EventDef>(
  def: D,
  data: DataOf<D>,
  extras: Partial<Omit<SnapEvent, "data">> & { service?: string } = {},
): SnapEvent<DataOf<D>> {
  const { service, ...rest } = extras;
  return {
    specversion: "1.0",
    id: randomUUID(),
    source: sourceOf(service ?? def.service),
    type: def.type,
    time: new Date().toISOString(),
    datacontenttype: "application/json",
    ...rest,
    data,
  };
}
