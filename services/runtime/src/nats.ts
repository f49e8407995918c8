import { connect, type JetStreamManager, type NatsConnection, nanos, RetentionPolicy, StorageType } from "nats";

export interface StreamNames {
  stream: string;
  subjectPrefix: string;
}

export const dlqStream = (names: StreamNames) => `${names.stream}_DLQ`;
export const dlqPrefix = (names: StreamNames) => `${names.subjectPrefix}-dlq`;
export const subjectFor = (names: StreamNames, type: string) => `${names.subjectPrefix}.${type}`;

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  // After the first connect the client reconnects for ever; the first connect fails fast (NatsLink retries it).
  return connect({ servers: url.split(","), name, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000 });
}

/** Creates (or leaves as they are) the facts stream and its dead-letter stream. */
export async function ensureStreams(nc: NatsConnection, names: StreamNames): Promise<JetStreamManager> {
  const jsm = await nc.jetstreamManager();
  await Promise.all([
    ensureStream(jsm, names.stream, `${names.subjectPrefix}.>`, 2 * 60_000),
    ensureStream(jsm, dlqStream(names), `${dlqPrefix(names)}.>`, 60_000),
  ]);
  return jsm;
}

async function ensureStream(jsm: JetStreamManager, name: string, subject: string, duplicateWindowMs: number) {
  try {
    await jsm.streams.info(name);
  } catch {
    try {
      await jsm.streams.add({
        name,
        subjects: [subject],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        max_age: nanos(7 * 24 * 3600_000),
        duplicate_window: nanos(duplicateWindowMs),
      });
    } catch (err) {
      // Another replica may have created it between our look and our add.
      await jsm.streams.info(name).catch(() => {
        throw err;
      });
    }
  }
}
