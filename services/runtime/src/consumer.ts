import type { SnapEvent } from "@snapmesh/events";
import { AckPolicy, type Consumer, type ConsumerMessages, DeliverPolicy, type JsMsg, type NatsConnection, nanos } from "nats";
import { type DeadLetter, publishDeadLetter } from "./dead-letters.js";
import { AppError, badRequest } from "./errors.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { type StreamNames, subjectFor } from "./nats.js";
import { fromNatsMessage } from "./nats-binding.js";

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
  private readonly running = new Set<ConsumerMessages>();
  private readonly loops: Promise<void>[] = [];
  private inFlight = 0;
  private stopped = false;

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
    // The streams were just ensured (NatsLink), which checked that the account has JetStream.
    const jsm = await this.nc.jetstreamManager({ checkAPI: false });
    const { stream } = this.opts.names;
    const durable = JetStreamConsumers.durableName(this.opts.service);
    const settings = {
      filter_subjects: types.map((t) => subjectFor(this.opts.names, t)).sort(),
      ack_wait: nanos(this.opts.ackWaitMs ?? 30_000),
      // Unbounded: the loop dead-letters after maxAttempts itself, and a dead-letter publish that fails
      // must be redelivered until it succeeds, never dropped by the server.
      max_deliver: -1,
    };
    const js = this.nc.jetstream();
    // Getting the consumer reads its info: a restart with unchanged subscriptions (every cold start) needs nothing else.
    let consumer = await js.consumers.get(stream, durable).catch(() => undefined);
    if (!consumer) {
      await jsm.consumers.add(stream, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ...settings,
      });
      consumer = await js.consumers.get(stream, durable);
    } else {
      const { config } = await consumer.info(true);
      const same =
        JSON.stringify([...(config.filter_subjects ?? [])].sort()) === JSON.stringify(settings.filter_subjects) &&
        config.ack_wait === settings.ack_wait &&
        config.max_deliver === settings.max_deliver;
      if (!same) {
        await jsm.consumers.update(stream, durable, settings);
        consumer = await js.consumers.get(stream, durable);
      }
    }
    this.loops.push(this.consumeUntilStopped(consumer, durable));
  }

  /** Pulls and handles messages until stop(); if the subscription itself fails, it is opened again. */
  private async consumeUntilStopped(consumer: Consumer, durable: string): Promise<void> {
    while (!this.stopped) {
      try {
        const messages = await consumer.consume({ max_messages: 16 });
        this.running.add(messages);
        try {
          await this.loop(messages, durable);
        } finally {
          this.running.delete(messages);
        }
      } catch (err) {
        this.log.error({ err: (err as Error).message, consumer: durable }, "consumer stopped unexpectedly; resuming");
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, this.opts.backoffMs).unref());
    }
  }

  private async loop(messages: ConsumerMessages, durable: string): Promise<void> {
    for await (const msg of messages) {
      this.inFlight++;
      try {
        await this.handle(msg, durable);
      } catch (err) {
        // handle() settles every message itself; this guard keeps the loop alive whatever else throws.
        this.log.error({ err: (err as Error).message, consumer: durable, subject: msg.subject }, "event handling failed");
        try {
          msg.nak(this.opts.backoffMaxMs);
        } catch {
          /* the connection is gone: JetStream redelivers after ack_wait */
        }
      } finally {
        this.inFlight--;
      }
    }
  }

  private async handle(msg: JsMsg, durable: string): Promise<void> {
    const attempt = deliveryCount(msg);
    let event: SnapEvent;
    try {
      event = fromNatsMessage(msg.data, msg.headers);
      if (subjectFor(this.opts.names, event.type) !== msg.subject) {
        throw badRequest("type_subject_mismatch", `event type '${event.type}' does not match subject '${msg.subject}'`);
      }
    } catch (err) {
      const reason = `not a valid CloudEvent: ${describe(err)}`;
      this.log.error({ reason, consumer: durable, subject: msg.subject }, "undecodable message: dead-lettered");
      await this.deadLetter(msg, durable, undefined, reason, attempt);
      return;
    }
    const log = this.log.child({ eventId: event.id, eventType: event.type, consumer: durable, attempt });
    try {
      await this.apply(event);
    } catch (err) {
      const poison = err instanceof AppError && err.terminal;
      const reason = describe(err);
      if (poison || attempt >= this.opts.maxAttempts) {
        log.error({ reason }, poison ? "poison event: dead-lettered" : "retries exhausted: dead-lettered");
        await this.deadLetter(msg, durable, event, reason, attempt);
        return;
      }
      const delay = backoff(attempt, this.opts.backoffMs, this.opts.backoffMaxMs);
      log.warn({ reason, retryInMs: delay }, "event handler failed; will retry");
      this.metrics.eventsHandled.inc({ type: event.type, door: "jetstream", outcome: "failed" });
      msg.nak(delay);
      return;
    }
    msg.ack();
    this.metrics.eventsHandled.inc({ type: event.type, door: "jetstream", outcome: "ok" });
  }

  private async deadLetter(
    msg: JsMsg,
    durable: string,
    event: SnapEvent | undefined,
    reason: string,
    attempts: number,
  ): Promise<void> {
    const type = event?.type ?? "undecodable";
    const streamSequence = sequenceOf(msg);
    const entry = { reason, consumer: durable, attempts, subject: msg.subject, streamSequence };
    let dl: DeadLetter = event ? { ...entry, event } : { ...entry, event: null, raw: rawPayload(msg.data) };
    // A near-limit event would not fit in a NATS message with the entry around it: keep its start only.
    if (JSON.stringify(dl).length > DLQ_ENTRY_LIMIT) dl = { ...entry, event: null, raw: rawPayload(msg.data) };
    try {
      await publishDeadLetter(
        this.nc,
        this.opts.names,
        dl,
        streamSequence !== undefined ? `${durable}:${streamSequence}` : undefined,
      );
      msg.term(reason.slice(0, 200));
      this.metrics.deadLettered.inc({ type: event ? type : "undecodable" });
    } catch (err) {
      // Could not record it: leave it unacknowledged so JetStream redelivers rather than lose it.
      this.log.error({ err: (err as Error).message, type }, "dead-letter publish failed; event will be redelivered");
      msg.nak(this.opts.backoffMaxMs);
    }
  }

  /** Stops pulling new messages and waits for the ones being handled. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const m of this.running) m.stop();
    await Promise.allSettled(this.loops);
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  }
}

export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const RAW_LIMIT = 64 * 1024;
const DLQ_ENTRY_LIMIT = 512 * 1024;

function describe(err: unknown): string {
  if (err instanceof AppError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** What an undecodable message held, kept readable and within a NATS message (the stream keeps the original). */
function rawPayload(data: Uint8Array): Record<string, unknown> {
  const truncated = data.length > RAW_LIMIT;
  const bytes = truncated ? data.subarray(0, RAW_LIMIT) : data;
  let text: string | undefined;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    text = undefined;
  }
  return {
    ...(text !== undefined ? { raw: text } : { rawBase64: Buffer.from(bytes).toString("base64") }),
    ...(truncated ? { rawTruncated: true, rawBytes: data.length } : {}),
  };
}

function deliveryCount(msg: JsMsg): number {
  try {
    return msg.info.redeliveryCount;
  } catch {
    return 1;
  }
}

function sequenceOf(msg: JsMsg): number | undefined {
  try {
    return msg.info.streamSequence;
  } catch {
    return undefined;
  }
}
