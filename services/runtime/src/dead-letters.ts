import type { SnapEvent } from "@snapmesh/events";
import { type NatsConnection, headers as natsHeaders } from "nats";
import { dlqPrefix, type StreamNames } from "./nats.js";

/** One entry of the dead-letter stream: what failed, where, why, and the event itself (for `dlq replay`). */
export interface DeadLetter {
  reason: string;
  /** The consumer (durable) or service that gave up on the event. */
  consumer: string;
  attempts: number;
  /** The subject (JetStream) or the delivery target (Knative) the event was on its way to. */
  subject: string;
  streamSequence?: number | undefined;
  event: SnapEvent | null;
  /** What an undecodable message held, when there is no event. */
  raw?: Record<string, unknown>;
}

/**
 * Writes an entry to the dead-letter stream on `<prefix>-dlq.<consumer>.<type>`, with the reason in headers
 * too (for `nats stream view`). `msgID` de-duplicates a repeated attempt to dead-letter the same message.
 */
export async function publishDeadLetter(nc: NatsConnection, names: StreamNames, dl: DeadLetter, msgID?: string): Promise<void> {
  const type = dl.event?.type ?? "undecodable";
  const h = natsHeaders();
  h.set("snapmesh-dlq-reason", dl.reason.slice(0, 1000).replace(/[^\x20-\x7e]/g, " "));
  h.set("snapmesh-dlq-consumer", dl.consumer);
  h.set("snapmesh-dlq-attempts", String(dl.attempts));
  const { raw, event, ...rest } = dl;
  const body = JSON.stringify({ ...rest, failedAt: new Date().toISOString(), event, ...(raw ?? {}) });
  // The subject carries the type only as a safe token: an arbitrary string must not make the publish fail.
  const token = type.replace(/[^A-Za-z0-9_.-]/g, "_").replace(/^\.+|\.+$|\.{2,}/g, "_") || "_";
  await nc.jetstream().publish(`${dlqPrefix(names)}.${dl.consumer}.${token}`, new TextEncoder().encode(body), {
    headers: h,
    ...(msgID ? { msgID } : {}),
  });
}
