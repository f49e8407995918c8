import type { SnapEvent } from "@snapmesh/events";
import type { NatsConnection } from "nats";
import type { Logger } from "./logger.js";
import { connectNats, ensureStreams, type StreamNames } from "./nats.js";
import { type EventSink, NatsSink } from "./sinks.js";

export interface NatsLinkOptions {
  url: string;
  name: string;
  names: StreamNames;
  /** Runs once connected and the streams exist (starting consumers); a failure is retried like the connect. */
  onConnected?: (nc: NatsConnection) => Promise<void>;
  retryMs?: number;
  retryMaxMs?: number;
}

/**
 * The service's NATS connection, made in the background: the service starts (and reports not ready)
 * while NATS is down, and becomes ready once the connection, the streams and the consumers are up.
 * After the first connect the client reconnects by itself.
 */
export class NatsLink {
  private nc: NatsConnection | undefined;
  private up = false;
  private stopping = false;
  private attempt: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly opts: NatsLinkOptions,
    private readonly log: Logger,
  ) {}

  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  /** Connected, streams ensured, consumers started, and the connection not closed. */
  get ready(): boolean {
    return this.up && this.nc !== undefined && !this.nc.isClosed();
  }

  /** Starts connecting; resolves after the first attempt (so a reachable NATS is up when start returns). */
  start(): Promise<void> {
    let firstDone: () => void = () => {};
    const first = new Promise<void>((resolve) => {
      firstDone = resolve;
    });
    this.attempt ??= this.connectUntilUp(firstDone).finally(firstDone);
    return first;
  }

  private async connectUntilUp(firstDone: () => void): Promise<void> {
    let delay = this.opts.retryMs ?? 250;
    let warned = false;
    while (!this.stopping) {
      try {
        this.nc ??= await connectNats(this.opts.url, this.opts.name);
        if (this.stopping) return;
        await ensureStreams(this.nc, this.opts.names);
        if (this.stopping) return;
        await this.opts.onConnected?.(this.nc);
        this.up = true;
        this.log.info({ url: this.opts.url }, "NATS connected");
        return;
      } catch (err) {
        if (!warned)
          this.log.warn({ err: (err as Error).message, url: this.opts.url }, "NATS not reachable: not ready; retrying");
        warned = true;
        firstDone();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, delay).unref();
        });
        delay = Math.min(delay * 2, this.opts.retryMaxMs ?? 5000);
      }
    }
  }

  /** A sink that publishes on the stream once connected (until then a publish fails and the row waits). */
  sink(): EventSink & { readonly ready: boolean } {
    const link = this;
    let sink: NatsSink | undefined;
    return {
      kind: "nats",
      get ready() {
        return link.ready;
      },
      async publish(event: SnapEvent) {
        if (!link.ready || !link.nc) throw new Error("NATS is not connected");
        sink ??= new NatsSink(link.nc, link.opts.names);
        await sink.publish(event);
      },
    };
  }

  /** Stops retrying and waits for an attempt in progress; the caller drains the connection. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.attempt;
  }
}
