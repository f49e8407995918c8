import { dlqStream, fromNatsMessage, natsServerOptions, type StreamNames } from "@snapmesh/runtime/internal";
import { connect, DeliverPolicy, type JetStreamManager, type NatsConnection, headers as natsHeaders } from "nats";

export interface StreamOptions {
  natsUrl: string;
  names: StreamNames;
  /**
   * Only this URL (a port-forward): a NATS cluster advertises its members' pod addresses, which the client would
   * otherwise try on a reconnect.
   */
  direct?: boolean;
}

/** The facts stream's names a local mesh uses: EVENTS_STREAM and EVENTS_SUBJECT_PREFIX, else the defaults. */
export function localStreamNames(env: NodeJS.ProcessEnv = process.env): StreamNames {
  return { stream: env.EVENTS_STREAM ?? "SNAPMESH_EVENTS", subjectPrefix: env.EVENTS_SUBJECT_PREFIX ?? "events" };
}

/**
 * A `republish` for replayDeadLetters with Knative Eventing: each event posted to the Broker's ingress as a structured
 * CloudEvent. Anything but 2xx throws what `refused` makes of the message, before the dead letter is removed.
 */
export function brokerRepublisher(
  url: string,
  refused: (message: string) => Error,
): (event: Record<string, unknown>) => Promise<void> {
  return async (event) => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify(event),
      signal: AbortSignal.timeout(10_000),
    });
    if (!res.ok)
      throw refused(`the Broker refused event ${String(event.id)} (${res.status}): ${(await res.text()).slice(0, 200)}`);
  };
}

async function open(opts: StreamOptions): Promise<NatsConnection> {
  try {
    return await connect({
      ...natsServerOptions(opts.natsUrl),
      timeout: 3_000,
      ...(opts.direct ? { ignoreClusterUpdates: true } : {}),
    });
  } catch (err) {
    throw new Error(`could not connect to NATS at ${opts.natsUrl}: ${(err as Error).message} (set NATS_URL)`);
  }
}

/** Follows facts (and dead letters) as they arrive, with an ephemeral ordered consumer; `--all` replays history. */
export async function tail(
  opts: StreamOptions & { all: boolean; dlq: boolean },
  print: (entry: Record<string, unknown>) => void,
  signal: AbortSignal,
): Promise<void> {
  const nc = await open(opts);
  const js = nc.jetstream();
  const streams = opts.dlq ? [opts.names.stream, dlqStream(opts.names)] : [opts.names.stream];
  const loops = streams.map(async (stream) => {
    // An ordered consumer starts at the beginning by default; passing DeliverPolicy.All explicitly stalls it.
    const consumer = await js.consumers.get(stream, opts.all ? {} : { deliver_policy: DeliverPolicy.New });
    const messages = await consumer.consume();
    signal.addEventListener("abort", () => messages.stop());
    for await (const m of messages) {
      const dead = stream !== opts.names.stream;
      const body = dead ? JSON.parse(new TextDecoder().decode(m.data)) : { event: fromNatsMessage(m.data, m.headers) };
      print({ stream, seq: m.seq, subject: m.subject, deadLetter: dead, ...body });
    }
  });
  await Promise.race([Promise.all(loops), new Promise((r) => signal.addEventListener("abort", r))]);
  await nc.close();
}

/** One dead-lettered event, as `dlq list` shows it. */
export interface DeadLetterSummary {
  seq: number;
  /** The event's type; `undecodable` when the dead letter holds no event. */
  type: string;
  id: string;
  source: string;
  consumer: string;
  attempts: number;
  reason: string;
  failedAt: string;
}

interface DeadLetterEntry {
  event: { id: string; type: string; source?: string } | null;
  consumer?: string;
  attempts?: number;
  reason?: string;
  failedAt?: string;
}

/** The dead-letter stream's entries, oldest first (an entry removed meanwhile is skipped). */
async function* deadLetters(jsm: JetStreamManager, names: StreamNames): AsyncGenerator<{ seq: number; entry: DeadLetterEntry }> {
  const name = dlqStream(names);
  const info = await jsm.streams.info(name).catch(() => undefined);
  if (!info || info.state.messages === 0) return;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const msg = await jsm.streams.getMessage(name, { seq }).catch(() => undefined);
    if (msg) yield { seq, entry: JSON.parse(new TextDecoder().decode(msg.data)) as DeadLetterEntry };
  }
}

/** What is in the dead-letter stream (`--type` keeps one event type), without changing it. */
export async function listDeadLetters(opts: StreamOptions & { filterType?: string }): Promise<DeadLetterSummary[]> {
  const nc = await open(opts);
  try {
    const results: DeadLetterSummary[] = [];
    for await (const { seq, entry } of deadLetters(await nc.jetstreamManager(), opts.names)) {
      const type = entry.event?.type ?? "undecodable";
      if (opts.filterType && type !== opts.filterType) continue;
      results.push({
        seq,
        type,
        id: entry.event?.id ?? "",
        source: entry.event?.source ?? "",
        consumer: entry.consumer ?? "",
        attempts: entry.attempts ?? 0,
        reason: entry.reason ?? "",
        failedAt: entry.failedAt ?? "",
      });
    }
    return results;
  } finally {
    await nc.close();
  }
}

/**
 * Re-publishes dead-lettered events to the facts stream (each under a fresh Nats-Msg-Id, keeping its
 * CloudEvent id so consumers still de-duplicate effects) and removes them from the dead-letter stream.
 * `republish` sends an event elsewhere instead (on a cluster with Knative Eventing: to the Broker, since
 * nothing consumes the JetStream facts stream there).
 */
export async function replayDeadLetters(
  opts: StreamOptions & {
    filterType?: string;
    /** Only the dead letter at this sequence (the console's replay button). */
    seq?: number;
    dryRun: boolean;
    republish?: (event: Record<string, unknown>) => Promise<void>;
  },
): Promise<Array<{ seq: number; type: string; id: string; replayed: boolean }>> {
  const nc = await open(opts);
  try {
    const jsm = await nc.jetstreamManager();
    const js = nc.jetstream();
    const results = [];
    for await (const { seq, entry } of deadLetters(jsm, opts.names)) {
      const event = entry.event;
      if (!event || (opts.filterType && event.type !== opts.filterType) || (opts.seq !== undefined && seq !== opts.seq)) continue;
      if (!opts.dryRun) {
        if (opts.republish) await opts.republish(event);
        else {
          const h = natsHeaders();
          h.set("content-type", "application/cloudevents+json");
          await js.publish(`${opts.names.subjectPrefix}.${event.type}`, new TextEncoder().encode(JSON.stringify(event)), {
            msgID: `${event.id}:replay:${seq}`,
            headers: h,
          });
        }
        await jsm.streams.deleteMessage(dlqStream(opts.names), seq);
      }
      results.push({ seq, type: event.type, id: event.id, replayed: !opts.dryRun });
    }
    return results;
  } finally {
    await nc.close();
  }
}
