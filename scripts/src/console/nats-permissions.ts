// What the console may do on NATS, as a nats-server user's `permissions` (`snapmesh console permissions` prints it):
// read the facts stream's messages by sequence and follow its subjects, list the durable consumers, read the
// dead-letter stream; with `replay`, also publish a replayed fact on the facts subjects (which the services accept
// only with a producer's signature) and delete the replayed dead letter. It creates no consumer: nothing of
// JetStream can be added, changed or removed with these.
import { dlqStream, type StreamNames } from "@snapmesh/runtime/internal";

export interface NatsPermissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

export function consoleNatsPermissions(names: StreamNames, opts: { replay: boolean }): NatsPermissions {
  const { stream } = names;
  const dlq = dlqStream(names);
  const read = [
    "$JS.API.INFO",
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.INFO.${dlq}`,
    `$JS.API.CONSUMER.LIST.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.STREAM.MSG.GET.${dlq}`,
  ];
  const replay = [`${names.subjectPrefix}.>`, `$JS.API.STREAM.MSG.DELETE.${dlq}`];
  return {
    publish: { allow: opts.replay ? [...read, ...replay] : read },
    // Replies to its requests, and the facts as they are published.
    subscribe: { allow: ["_INBOX.>", `${names.subjectPrefix}.>`] },
  };
}
