/*
 * `snapmesh logs <service> [-f] [--release R] [-o json]`: the logs of the service's pods (its own container,
 * not Knative's queue-proxy), pod after pod, or with -f as they come.
 *   human (default): each pino line as `time level msg eventId=… eventType=… key=value…`, other lines as
 *     they are; `pod-name | ` in front when the service has several pods.
 *   -o json (or yaml): the lines exactly as the pods wrote them (pino JSON, one object a line), nothing
 *     added, for jq.
 * No pods (scaled to zero, normal for Knative) is one line on stderr and exit 0.
 */
import { Writable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { Log, type V1Pod } from "@kubernetes/client-node";
import { humanLog } from "../output.js";
import type { Cluster } from "./connect.js";
import { EXIT } from "./errors.js";
import type { OutputFormat } from "./print.js";
import { appContainer, knativeService, listPods, podSelector, serviceName } from "./workloads.js";

export interface LogsOptions {
  service?: string | undefined;
  follow: boolean;
  release?: string | undefined;
}

export async function logs(
  cluster: Cluster,
  opts: LogsOptions,
  format: OutputFormat,
  out: NodeJS.WritableStream = process.stdout,
  signal?: AbortSignal,
): Promise<number> {
  const service = serviceName(opts.service, "logs");
  const ksvc = await knativeService(cluster, service, opts.release);
  const pods = (await listPods(cluster, cluster.namespace, podSelector(service, ksvc))).filter(started);
  if (pods.length === 0) {
    process.stderr.write(
      `no running pods of '${service}' (${ksvc.metadata.name}) in namespace '${cluster.namespace}': it is scaled to zero, ` +
        `which is normal for Knative; \`snapmesh prewarm ${service} --min 1\` keeps a pod up\n`,
    );
    return 0;
  }
  const raw = format === "json" || format === "yaml";
  const width = Math.max(...pods.map((p) => p.metadata!.name!.length));
  const line = (pod: V1Pod) => {
    const prefix = pods.length > 1 && !raw ? `${pod.metadata!.name!.padEnd(width)} | ` : "";
    return (text: string) => out.write(`${prefix}${raw ? text : humanLog(text, { time: true })}\n`);
  };

  if (!opts.follow) {
    for (const pod of pods) {
      const name = pod.metadata!.name!;
      const text = await cluster.call(`reading the logs of pod '${name}'`, () =>
        cluster.core.readNamespacedPodLog({ name, namespace: cluster.namespace, container: appContainer(pod, service)!.name }),
      );
      const print = line(pod);
      for (const l of String(text ?? "").split("\n")) if (l) print(l);
    }
    return 0;
  }

  const stopped = new AbortController();
  const stop = () => stopped.abort();
  signal?.addEventListener("abort", stop);
  process.once("SIGINT", stop);
  const requests: AbortController[] = [];
  let broken = false;
  const following = pods.map(async (pod) => {
    const name = pod.metadata!.name!;
    const container = appContainer(pod, service)!.name;
    // The Log class drops the API server's reason when it refuses; asking for no lines first keeps it.
    await cluster.call(`reading the logs of pod '${name}'`, () =>
      cluster.core.readNamespacedPodLog({ name, namespace: cluster.namespace, container, tailLines: 0 }),
    );
    const lines = lineWriter(line(pod));
    const ended = new Promise<void>((resolve) => lines.on("finish", resolve));
    // The client keeps a broken stream's error on the response body and never ends what it pipes into.
    lines.on("pipe", (body: NodeJS.ReadableStream) =>
      body.on("error", (err: Error) => {
        if (!stopped.signal.aborted) {
          broken = true;
          process.stderr.write(`snapmesh: the log stream of pod '${name}' broke: ${err.message.split("\n")[0]}\n`);
        }
        lines.end();
      }),
    );
    const request = await cluster.call(`following the logs of pod '${name}'`, () =>
      new Log(cluster.kc).log(cluster.namespace, name, container, lines, { follow: true }),
    );
    requests.push(request);
    if (stopped.signal.aborted) request.abort();
    await ended;
  });
  try {
    // Until every pod's stream ends (the pods went away) or the operator stops it.
    await Promise.race([Promise.all(following), new Promise((resolve) => stopped.signal.addEventListener("abort", resolve))]);
  } finally {
    process.off("SIGINT", stop);
    signal?.removeEventListener("abort", stop);
    stopped.abort();
    for (const r of requests) r.abort();
  }
  return broken ? EXIT.unavailable : 0;
}

/** Pods whose containers have run: a Pending pod has no logs to read yet. */
function started(pod: V1Pod): boolean {
  return pod.status?.phase === "Running" || pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

/** A stream that calls `print` once per complete line (a line split across chunks is joined). */
function lineWriter(print: (line: string) => void): Writable {
  let rest = "";
  const utf8 = new StringDecoder("utf8");
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      const lines = (rest + utf8.write(chunk)).split("\n");
      rest = lines.pop() ?? "";
      for (const l of lines) if (l) print(l.replace(/\r$/, ""));
      done();
    },
    final(done) {
      rest += utf8.end();
      if (rest) print(rest);
      done();
    },
  });
}
