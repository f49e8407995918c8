import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { SERVICES, type ServiceName } from "@snapmesh/events";
import { type Cluster, KNATIVE, releaseSelector } from "./connect.js";
import { CliError, EXIT } from "./errors.js";

/** The parts of a Knative Service the commands read. */
export interface KnativeService {
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { template?: { spec?: { containers?: V1Container[] } } };
  status?: { address?: { url?: string }; url?: string };
}

/** A snapmesh service's name, checked against the manifest before any API call (a typo is a usage error). */
export function serviceName(name: string | undefined, command: string): ServiceName {
  const known = `one of: ${SERVICES.join(", ")}`;
  if (!name) throw new CliError(`${command} needs a service (${known})`, EXIT.usage);
  if (!(SERVICES as readonly string[]).includes(name)) throw new CliError(`unknown service '${name}' (${known})`, EXIT.usage);
  return name as ServiceName;
}

/**
 * The release's Knative Services (all, or one snapmesh service's). A missing Knative Serving API says so,
 * rather than a bare 404.
 */
export async function knativeServices(cluster: Cluster, release: string | undefined, service?: ServiceName) {
  const labelSelector = `${releaseSelector(release)}${service ? `,app.kubernetes.io/component=${service}` : ""}`;
  const list = await cluster.call(`listing Knative Services in namespace '${cluster.namespace}'`, async () => {
    try {
      return await cluster.custom.listNamespacedCustomObject({ ...KNATIVE.service, namespace: cluster.namespace, labelSelector });
    } catch (err) {
      if ((err as { code?: unknown }).code === 404)
        throw new CliError(
          "Knative Serving is not installed on this cluster (no services.serving.knative.dev API)",
          EXIT.notFound,
        );
      throw err;
    }
  });
  return ((list as { items?: KnativeService[] }).items ?? []).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

/** The one Knative Service of a snapmesh service: none is not-found, one per release in several releases asks for --release. */
export async function knativeService(
  cluster: Cluster,
  service: ServiceName,
  release: string | undefined,
): Promise<KnativeService> {
  const found = await knativeServices(cluster, release, service);
  if (found.length === 0)
    throw new CliError(
      `no snapmesh service '${service}' in namespace '${cluster.namespace}'${release ? ` for release '${release}'` : ""}`,
      EXIT.notFound,
    );
  return single(found, cluster, `'${service}'`);
}

/** One object when the namespace holds one release's; several releases need --release to say which. */
export function single<T extends { metadata: { name: string; labels?: Record<string, string> } }>(
  found: T[],
  cluster: Cluster,
  what: string,
): T {
  if (found.length > 1) {
    const releases = [...new Set(found.map((o) => o.metadata.labels?.["app.kubernetes.io/instance"] ?? o.metadata.name))];
    throw new CliError(
      `${what} is installed by several releases in namespace '${cluster.namespace}' (${releases.join(", ")}): pass --release`,
      EXIT.usage,
    );
  }
  return found[0]!;
}

/** The selector of a snapmesh service's pods: the chart's labels, plus the one Knative puts on its pods. */
export function podSelector(service: ServiceName, ksvc: KnativeService): string {
  const release = ksvc.metadata.labels?.["app.kubernetes.io/instance"];
  return `${releaseSelector(release)},app.kubernetes.io/component=${service},serving.knative.dev/service=${ksvc.metadata.name}`;
}

export async function listPods(cluster: Cluster, namespace: string, labelSelector: string): Promise<V1Pod[]> {
  const list = await cluster.call(`listing pods in namespace '${namespace}'`, () =>
    cluster.core.listNamespacedPod({ namespace, labelSelector }),
  );
  return list.items.sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
}

/** Running, Ready and not on its way out: a pod that can take a connection now. */
export function isReady(pod: V1Pod): boolean {
  return (
    !pod.metadata?.deletionTimestamp &&
    pod.status?.phase === "Running" &&
    (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
  );
}

/** Knative's sidecar: never the container a command means. */
export const QUEUE_PROXY = "queue-proxy";

/** The service's own container in its pod (the chart names it after the service). */
export function appContainer(pod: V1Pod, service: string): V1Container | undefined {
  const containers = pod.spec?.containers ?? [];
  return containers.find((c) => c.name === service) ?? containers.find((c) => c.name !== QUEUE_PROXY);
}

/** The value of a plain environment variable of the Knative Service's container (not one from a Secret). */
export function envOf(ksvc: KnativeService, name: string): string | undefined {
  for (const c of ksvc.spec?.template?.spec?.containers ?? []) {
    const found = c.env?.find((e) => e.name === name);
    if (found) return found.value;
  }
  return undefined;
}
