/*
 * `snapmesh dlq list [--type T] [--cluster] -o json` prints an array, oldest first:
 *   [{ "seq": 12, "type": "snapmesh.storage.object.deleted", "id": "…", "source": "/snapmesh/storage",
 *      "consumer": "social", "attempts": 5, "reason": "…", "failedAt": "2025-01-01T12:00:00.000Z" }]
 * (`type` is "undecodable" and `id` "" for a message that held no event). `dlq replay -o json` prints
 * [{ "seq": 12, "type": "…", "id": "…", "replayed": true }] (false with --dry-run).
 */
import type { StreamNames } from "@snapmesh/runtime/internal";
import { brokerRepublisher, type DeadLetterSummary } from "../stream.js";
import type { Cluster } from "./connect.js";
import { CliError, EXIT } from "./errors.js";
import { type OutputFormat, printResult } from "./print.js";

export interface DlqConnection {
  natsUrl: string;
  names: StreamNames;
  direct: boolean;
  /** Set when replayed events must go to the Broker (Knative Eventing) rather than the JetStream facts stream. */
  republish?: (event: Record<string, unknown>) => Promise<void>;
}

/**
 * Runs `use` against the cluster's NATS through a port-forward; for a replay on a release with Knative
 * Eventing, a second forward to the Broker's ingress takes the replayed events.
 */
export async function onClusterNats<T>(
  cluster: Cluster,
  opts: { release: string | undefined; replay: boolean },
  use: (connection: DlqConnection) => Promise<T>,
): Promise<T> {
  // Loaded here so that a local `dlq list` does not load the Kubernetes client.
  const { withForward } = await import("./forward.js");
  const { brokerTarget, natsTarget } = await import("./targets.js");
  const nats = await natsTarget(cluster, opts.release);
  const viaNats = (republish?: DlqConnection["republish"]) =>
    withForward(cluster, nats.target, (port) =>
      use({ natsUrl: nats.url(port), names: nats.names, direct: true, ...(republish ? { republish } : {}) }),
    );
  if (!(opts.replay && nats.eventing)) return viaNats();
  const broker = await brokerTarget(cluster, opts.release);
  return withForward(cluster, broker.target, (port) =>
    viaNats(brokerRepublisher(`http://127.0.0.1:${port}${broker.path}`, (m) => new CliError(m, EXIT.notReady))),
  );
}

export function printDeadLetters(format: OutputFormat, list: DeadLetterSummary[]): void {
  if (list.length === 0 && (format === "table" || format === "wide")) {
    process.stdout.write("no dead-lettered events\n");
    return;
  }
  printResult(format, list, () => [
    {
      columns: [
        { header: "SEQ", value: (d: DeadLetterSummary) => String(d.seq) },
        { header: "TYPE", value: (d: DeadLetterSummary) => d.type },
        { header: "ID", value: (d: DeadLetterSummary) => d.id },
        { header: "CONSUMER", value: (d: DeadLetterSummary) => d.consumer },
        { header: "ATTEMPTS", value: (d: DeadLetterSummary) => String(d.attempts), wide: true },
        { header: "FAILED", value: (d: DeadLetterSummary) => d.failedAt },
        { header: "REASON", value: (d: DeadLetterSummary) => d.reason.replace(/\s+/g, " ").slice(0, 120) },
      ],
      rows: list,
    } as never,
  ]);
}
