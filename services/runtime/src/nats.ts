import { connect, type JetStreamManager, type NatsConnection, nanos, RetentionPolicy, StorageType } from "nats";

export interface StreamNames {
  stream: string;
  subjectPrefix: string;
}

export const dlqStream = (names: StreamNames) => `${names.stream}_DLQ`;
export const dlqPrefix = (names: StreamNames) => `${names.subjectPrefix}-dlq`;
export const subjectFor = (names: StreamNames, type: string) => `${names.subjectPrefix}.${type}`;

export type NatsServerOptions = { servers: string[]; user?: string; pass?: string; token?: string };

/**
 * The servers of a NATS URL list (`nats://[user:pass@]host:port,…`) with the credentials lifted into options:
 * nats.js reads `user:pass@` itself, but takes a password that starts with a digit for a port and fails to connect.
 */
export function natsServerOptions(url: string): NatsServerOptions {
  const options: NatsServerOptions = { servers: [] };
  for (const server of url.split(",").map((s) => s.trim())) {
    const at = server.lastIndexOf("@");
    const scheme = /^[a-z]+:\/\//i.exec(server)?.[0] ?? "";
    if (at < 0) {
      options.servers.push(server);
      continue;
    }
    const userinfo = server.slice(scheme.length, at);
    options.servers.push(`${scheme}${server.slice(at + 1)}`);
    const colon = userinfo.indexOf(":");
    if (colon < 0) options.token ??= decodeURIComponent(userinfo);
    else {
      options.user ??= decodeURIComponent(userinfo.slice(0, colon));
      options.pass ??= decodeURIComponent(userinfo.slice(colon + 1));
    }
  }
  return options;
}

export async function connectNats(url: string, name: string): Promise<NatsConnection> {
  // After the first connect the client reconnects for ever; the first connect fails fast (NatsLink retries it).
  return connect({ ...natsServerOptions(url), name, maxReconnectAttempts: -1, reconnectTimeWait: 500, timeout: 5000 });
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
