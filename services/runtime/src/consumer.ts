import type { SnapEvent } from "@snapmesh/events";
import {
  AckPolicy,
  type ConsumerMessages,
  DeliverPolicy,
  type JsMsg,
  type MsgHdrs,
  type NatsConnection,
  nanos,
  headers as natsHeaders,
} from "nats";
import { AppError } from "./errors.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { dlqPrefix, type StreamNames, subjectFor } from "./nats.js";

export interface ConsumerOptions {
  service: string;
  names: StreamNames;
  maxAttempts: number;
  backoffMs: number;
  backoffMaxMs: number;
  ackWaitMs?: number;
}

export type ApplyEvent = (event: SnapEvent) => Promise<unknown>;

/** The service's durable JetStream consumer of its subscribed facts; failures are retried with backoff, then dead-lettered. */
export class JetStreamConsumers {
  private readonly running: ConsumerMessages[] = [];
  private readonly loops: Promise<void>[] = [];
  private inFlight = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: ConsumerOptions,
    private readonly apply: ApplyEvent,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  static durableName(service: string): string {
    return service.replace(/[^A-Za-z0-9_-]/g, "_");
  }

  /**
   * One durable consumer per service whose filter subjects are its subscribed types (NATS 2.10+), so the
   * service sees its facts in stream order (an object's `created` before its `deleted`).
   */
  async start(types: string[]): Promise<void> {
    if (types.length === 0) return;
    const jsm = await this.nc.jetstreamManager();
    const { stream } = this.opts.names;
    const durable = JetStreamConsumers.durableName(this.opts.service);
    const settings = {
      filter_subjects: types.map((t) => subjectFor(this.opts.names, t)).sort(),
      ack_wait: nanos(this.opts.ackWaitMs ?? 30_000),
      max_deliver: this.opts.maxAttempts + 1,
    };
    try {
      await jsm.consumers.info(stream, durable);
      await jsm.consumers.update(stream, durable, settings);
    } catch {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ...settings,
      });
    }
    const consumer = await this.nc.jetstream().consumers.get(stream, durable);
    const messages = await consumer.consume({ max_messages: 16 });
    this.running.push(messages);
    this.loops.push(this.loop(messages, durable));
  }

  private async loop(messages: ConsumerMessages, durable: string): Promise<void> {
    for await (const msg of messages) {
      this.inFlight++;
      try {
        await this.handle(msg, durable);
      } finally {
        this.inFlight--;
      }
    }
  }

  private async handle(msg: JsMsg, durable: string): Promise<void> {
    const attempt = msg.info.redeliveryCount;
    let event: SnapEvent;
    try {
      event = fromNatsMessage(msg.data, msg.headers);
    } catch (err) {
      await this.deadLetter(msg, durable, undefined, `undecodable message: ${(err as Error).message}`, attempt);
      return;
    }
    const log = this.log.child({ eventId: event.id, eventType: event.type, consumer: durable, attempt });
    try {
      await this.apply(event);
      msg.ack();
      this.metrics.eventsHandled.inc({ type: event.type, door: "jetstream", outcome: "ok" });
    } catch (err) {
      const poison = err instanceof AppError && err.terminal;
      const reason = err instanceof AppError ? `${err.code}: ${err.message}` : (err as Error).message;
      if (poison || attempt >= this.opts.maxAttempts) {
        log.error({ reason }, poison ? "poison event: dead-lettered" : "retries exhausted: dead-lettered");
        await this.deadLetter(msg, durable, event, reason, attempt);
        return;
      }
      const delay = backoff(attempt, this.opts.backoffMs, this.opts.backoffMaxMs);
      log.warn({ reason, retryInMs: delay }, "event handler failed; will retry");
      this.metrics.eventsHandled.inc({ type: event.type, door: "jetstream", outcome: "failed" });
      msg.nak(delay);
    }
  }

  private async deadLetter(
    msg: JsMsg,
    durable: string,
    event: SnapEvent | undefined,
    reason: string,
    attempts: number,
  ): Promise<void> {
    const type = event?.type ?? "undecodable";
    const h = natsHeaders();
    h.set("snapmesh-dlq-reason", reason.slice(0, 1000).replace(/[\r\n]/g, " "));
    h.set("snapmesh-dlq-consumer", durable);
    h.set("snapmesh-dlq-attempts", String(attempts));
    const body = {
      reason,
      consumer: durable,
      attempts,
      failedAt: new Date().toISOString(),
      subject: msg.subject,
      event: event ?? null,
      raw: event ? undefined : new TextDecoder().decode(msg.data),
    };
    try {
      await this.nc
        .jetstream()
        .publish(`${dlqPrefix(this.opts.names)}.${durable}.${type}`, new TextEncoder().encode(JSON.stringify(body)), {
          headers: h,
          msgID: `${durable}:${msg.info.streamSequence}`,
        });
      msg.term(reason.slice(0, 200));
      this.metrics.deadLettered.inc({ type });
    } catch (err) {
      // Could not record it: leave it unacknowledged so JetStream redelivers rather than lose it.
      this.log.error({ err, type }, "dead-letter publish failed; event will be redelivered");
      msg.nak(this.opts.backoffMaxMs);
    }
  }

  /** Stops pulling new messages and waits for the ones being handled. */
  async stop(): Promise<void> {
    for (const m of this.running) m.stop();
    await Promise.allSettled(this.loops);
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

export function fromNatsMessage(data: Uint8Array, hdrs: MsgHdrs | undefined): SnapEvent {
  const attrs: Record<string, unknown> = {};
  if (hdrs) {
    for (const key of hdrs.keys()) {
      const lower = key.toLowerCase();
      if (lower.startsWith("ce-")) attrs[lower.slice(3)] = decodeURIComponent(hdrs.get(key));
      if (lower === "content-type") attrs.datacontenttype = hdrs.get(key);
    }
  }
  const text = new TextDecoder().decode(data);
  if (!attrs.specversion) {
    // Structured mode: the whole event is the payload.
    return JSON.parse(text) as SnapEvent;
  }
  if (text.length > 0) attrs.data = JSON.parse(text);
  return attrs as SnapEvent;
}
