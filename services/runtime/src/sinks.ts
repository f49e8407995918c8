import type { SnapEvent } from "@snapmesh/events";
import { type NatsConnection, headers as natsHeaders } from "nats";
import { toBinary } from "./cloudevents-http.js";
import { type StreamNames, subjectFor } from "./nats.js";

/** Where facts go: a Knative sink over HTTP, or the JetStream stream. */
export interface EventSink {
  readonly kind: string;
  publish(event: SnapEvent): Promise<void>;
}

/** Knative's contract: POST binary CloudEvents to K_SINK with K_CE_OVERRIDES' extensions applied. */
export class HttpSink implements EventSink {
  readonly kind = "http";
  private readonly overrides: Record<string, string>;

  constructor(
    private readonly url: string,
    overridesJson?: string,
    private readonly timeoutMs = 10_000,
  ) {
    this.overrides = parseOverrides(overridesJson);
  }

  async publish(event: SnapEvent): Promise<void> {
    const { headers, body } = toBinary({ ...event, ...this.overrides });
    const res = await fetch(this.url, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    await res.body?.cancel();
    if (!res.ok) throw new Error(`sink ${this.url} answered ${res.status}`);
  }
}

function parseOverrides(json: string | undefined): Record<string, string> {
  if (!json) return {};
  const parsed = JSON.parse(json) as { extensions?: Record<string, unknown> };
  return Object.fromEntries(Object.entries(parsed.extensions ?? {}).map(([k, v]) => [k, String(v)]));
}

/**
 * CloudEvents NATS protocol binding, binary mode: attributes as `ce-` headers, data as the payload.
 * `Nats-Msg-Id` = event id, so the stream drops a re-published duplicate within its window.
 */
export class NatsSink implements EventSink {
  readonly kind = "nats";
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: StreamNames,
  ) {}

  async publish(event: SnapEvent): Promise<void> {
    const { headers, body } = toBinary(event);
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    await this.nc.jetstream().publish(subjectFor(this.names, event.type), new TextEncoder().encode(body), {
      msgID: event.id,
      headers: h,
    });
  }
}

/** For runs that emit nothing (EVENT_SINK=none): the outbox keeps the rows unsent. */
export class NoSink implements EventSink {
  readonly kind = "none";
  async publish(): Promise<void> {
    throw new Error("no event sink configured (EVENT_SINK=none)");
  }
}
