import type { StreamNames } from "@snapmesh/runtime/internal";
import { type Cluster, KNATIVE, releaseSelector } from "./connect.js";
import { CliError, EXIT } from "./errors.js";
import { type ForwardTarget, inClusterService, readyPod, serviceBackend } from "./forward.js";
import {
  appContainer,
  envOf,
  type KnativeService,
  knativeService,
  knativeServices,
  podSelector,
  serviceName,
  single,
} from "./workloads.js";

/** Where `send --cluster` goes: a port of a pod, and the path to POST to there. */
export interface SendTarget {
  target: ForwardTarget;
  path: string;
  /** For messages: what the pod is (the service, or the Broker's ingress). */
  what: string;
}

/**
 * A Ready pod of the service that owns a command, and its container's port (straight to the service, past
 * Knative's activator, so a service scaled to zero has to be woken first).
 */
export async function serviceTarget(cluster: Cluster, service: string, release: string | undefined): Promise<SendTarget> {
  const name = serviceName(service, "send --cluster");
  const ksvc = await knativeService(cluster, name, release);
  const pod = await readyPod(
    cluster,
    cluster.namespace,
    podSelector(name, ksvc),
    `'${name}' (${ksvc.metadata.name})`,
    `it is scaled to zero or starting; \`snapmesh prewarm ${name} --min 1\` keeps a pod up`,
  );
  const port = appContainer(pod, name)?.ports?.[0]?.containerPort ?? 8080;
  return { target: { namespace: cluster.namespace, pod: pod.metadata!.name!, port }, path: "/", what: `'${name}'` };
}

interface Broker {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { address?: { url?: string } };
}

/** A pod behind the Service that the release's Broker's address names (the Broker's ingress), and the Broker's path there. */
export async function brokerTarget(cluster: Cluster, release: string | undefined): Promise<SendTarget> {
  const list = await cluster.call(`listing Brokers in namespace '${cluster.namespace}'`, () =>
    cluster.custom.listNamespacedCustomObject({
      ...KNATIVE.broker,
      namespace: cluster.namespace,
      labelSelector: releaseSelector(release),
    }),
  );
  const brokers = (list as { items?: Broker[] }).items ?? [];
  if (brokers.length === 0)
    throw new CliError(
      `no snapmesh Broker in namespace '${cluster.namespace}'${release ? ` for release '${release}'` : ""} (is eventing.enabled off?)`,
      EXIT.notFound,
    );
  const broker = single(brokers, cluster, "the Broker");
  const url = broker.status?.address?.url;
  if (!url) throw new CliError(`the Broker '${broker.metadata.name}' has no address yet: it is not Ready`, EXIT.notReady);
  const service = inClusterService(url, cluster.namespace);
  const target = await serviceBackend(cluster, service, `the ingress of Broker '${broker.metadata.name}'`);
  return { target, path: service.path || "/", what: `the Broker '${broker.metadata.name}'` };
}

export interface NatsTarget {
  target: ForwardTarget;
  names: StreamNames;
  /** The services send facts to a Broker (Knative Eventing), not to the JetStream facts stream. */
  eventing: boolean;
  /** The NATS URL to use through a forward on a local port (credentials from the service's URL kept). */
  url(localPort: number): string;
}

/**
 * The NATS server the release's services use (their NATS_URL names an in-cluster Service), a Ready pod behind
 * it, and the stream names the services use.
 */
export async function natsTarget(cluster: Cluster, release: string | undefined): Promise<NatsTarget> {
  const all = await knativeServices(cluster, release);
  if (all.length === 0)
    throw new CliError(
      `no snapmesh services in namespace '${cluster.namespace}'${release ? ` for release '${release}'` : ""}`,
      EXIT.notFound,
    );
  // Every service of a release has the same NATS_URL (one value in the chart): any one of them will do.
  const ksvc = single(onePerRelease(all), cluster, "snapmesh");
  const natsUrl = envOf(ksvc, "NATS_URL");
  if (!natsUrl)
    throw new CliError(`the Knative Service '${ksvc.metadata.name}' has no NATS_URL value to find NATS by`, EXIT.notFound);
  const first = natsUrl.split(",")[0]!.trim();
  const service = inClusterService(first, cluster.namespace);
  const target = await serviceBackend(cluster, service, `NATS, from NATS_URL of '${ksvc.metadata.name}'`);
  const { username, password, protocol } = new URL(first);
  const auth = username ? `${username}${password ? `:${password}` : ""}@` : "";
  return {
    target,
    names: {
      stream: envOf(ksvc, "EVENTS_STREAM") ?? "SNAPMESH_EVENTS",
      subjectPrefix: envOf(ksvc, "EVENTS_SUBJECT_PREFIX") ?? "events",
    },
    eventing: envOf(ksvc, "EVENT_SINK") === "http",
    url: (port) => `${protocol}//${auth}127.0.0.1:${port}`,
  };
}

function onePerRelease(ksvcs: KnativeService[]): KnativeService[] {
  const byRelease = new Map(ksvcs.map((k) => [k.metadata.labels?.["app.kubernetes.io/instance"], k]));
  return [...byRelease.values()];
}
