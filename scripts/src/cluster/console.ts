// `snapmesh console --cluster`: the release's web console (the chart's console.enabled) on a local port, through a
// port-forward to its pod, as `kubectl port-forward svc/<release>-snapmesh-console` would; until Ctrl-C.
import type { V1Service } from "@kubernetes/client-node";
import type { Output } from "../output.js";
import { type Cluster, releaseSelector } from "./connect.js";
import { CliError, EXIT } from "./errors.js";
import { openForward, serviceBackend } from "./forward.js";
import { single } from "./workloads.js";

export async function consoleOnCluster(
  cluster: Cluster,
  opts: { release: string | undefined; port: number },
  out: Output,
  stopped: Promise<void>,
): Promise<void> {
  const list = await cluster.call(`listing Services in namespace '${cluster.namespace}'`, () =>
    cluster.core.listNamespacedService({
      namespace: cluster.namespace,
      labelSelector: `${releaseSelector(opts.release)},app.kubernetes.io/component=console`,
    }),
  );
  const found = (list.items ?? []) as Array<V1Service & { metadata: { name: string } }>;
  if (found.length === 0)
    throw new CliError(
      `no snapmesh console in namespace '${cluster.namespace}'${opts.release ? ` for release '${opts.release}'` : ""}: ` +
        "install the chart with --set console.enabled=true",
      EXIT.notFound,
    );
  const svc = single(found, cluster, "the console");
  const port = svc.spec?.ports?.[0]?.port ?? 80;
  const target = await serviceBackend(
    cluster,
    { name: svc.metadata.name, namespace: cluster.namespace, port },
    "the web console",
  );
  const forward = await openForward(cluster, target, opts.port);
  const url = `http://127.0.0.1:${forward.port}`;
  out.ready(
    `the console of '${svc.metadata.name}' is at ${url} (through a port-forward to pod '${target.pod}'; Ctrl-C stops it)`,
    {
      consoleUrl: url,
      pod: target.pod,
    },
  );
  try {
    await stopped;
  } finally {
    await forward.close();
  }
}
