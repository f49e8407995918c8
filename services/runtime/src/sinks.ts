import type { SnapEvent } from "@snapmesh/events";
import type { JetStreamClient, NatsConnection } from "nats";
import { toBinary } from "./cloudevents-http.js";
import { type StreamNames, subjectFor } from "./nats.js";
import { toNatsMessage } from "./nats-binding.js";

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

/** Publishes to the JetStream stream (NATS binding); `Nats-Msg-Id` = event id, so the stream drops a re-published duplicate within its window. */
export class NatsSink implements EventSink {
  readonly kind = "nats";
  private readonly js: JetStreamClient;
  constructor(
    nc: NatsConnection,
    private readonly names: StreamNames,
  ) {
    this.js = nc.jetstream();
  }

  async publish(event: SnapEvent): Promise<void> {
    const { headers, payload } = toNatsMessage(event);
    await this.js.publish(subjectFor(this.names, event.type), payload, { msgID: event.id, headers });
  }
}

/** For runs that emit nothing (EVENT_SINK=none): the outbox keeps the rows unsent. */
export class NoSink implements EventSink {
  readonly kind = "none";
  async publish(): Promise<void> {
    throw new Error("no event sink configured (EVENT_SINK=none)");
  }
}
