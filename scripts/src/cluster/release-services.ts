import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { isServiceName, SERVICES } from "@snapmesh/events";
import { type Cluster, KNATIVE, releaseSelector } from "./connect.js";
import { CliError, EXIT } from "./errors.js";

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

export interface PodContainer {
  name?: string;
  env?: EnvVar[];
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

export interface KnativeService {
  metadata: {
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec?: {
    template?: {
      metadata?: { annotations?: Record<string, string> };
      spec?: {
        containers?: PodContainer[];
        volumes?: Array<{ name: string; secret?: { secretName?: string; items?: Array<{ key: string; path: string }> } }>;
      };
    };
  };
}

export const COMPONENT = "app.kubernetes.io/component";
export const INSTANCE = "app.kubernetes.io/instance";

export const releaseOf = (ksvc: KnativeService) => ksvc.metadata.labels?.[INSTANCE] ?? "";
export const componentOf = (ksvc: KnativeService) => ksvc.metadata.labels?.[COMPONENT] ?? "";

/** A manifest service name, or a usage error before anything is asked of the cluster. */
export function serviceName(name: string | undefined, verb: string): string {
  if (!name) throw new CliError(`${verb} needs a service: one of ${SERVICES.join(", ")}`, EXIT.usage);
  if (!isServiceName(name)) throw new CliError(`unknown service '${name}' (one of: ${SERVICES.join(", ")})`, EXIT.usage);
  return name;
}

/** Every snapmesh Knative Service in the namespace, of all releases (callers pick one with `pickRelease`). */
export async function listKnativeServices(cluster: Cluster): Promise<KnativeService[]> {
  const list = (await cluster.call(`listing Knative Services in namespace ${cluster.namespace}`, () =>
    cluster.custom.listNamespacedCustomObject({
      ...KNATIVE.service,
      namespace: cluster.namespace,
      labelSelector: releaseSelector(undefined),
    }),
  )) as { items?: KnativeService[] };
  return list.items ?? [];
}

/**
 * The one release the command acts on: `--release`, or the only one in the namespace. Several without
 * `--release` is a usage error that names them, so a script never acts on a release by chance.
 */
export function pickRelease(all: KnativeService[], release: string | undefined, namespace: string): string {
  const releases = [...new Set(all.map(releaseOf))].sort();
  if (release) {
    if (!releases.includes(release))
      throw new CliError(
        `no snapmesh release '${release}' in namespace ${namespace}${releases.length ? ` (found: ${releases.join(", ")})` : ""}`,
        EXIT.notFound,
      );
    return release;
  }
  if (releases.length === 0)
    throw new CliError(`no snapmesh release in namespace ${namespace} (wrong -n/--namespace or --context?)`, EXIT.notFound);
  if (releases.length > 1)
    throw new CliError(
      `several snapmesh releases in namespace ${namespace} (${releases.join(", ")}): pass --release`,
      EXIT.usage,
    );
  return releases[0]!;
}

/** The Knative Service of one manifest service in a release. */
export function pickService(all: KnativeService[], release: string, service: string, namespace: string): KnativeService {
  const found = all.find((k) => releaseOf(k) === release && componentOf(k) === service);
  if (!found)
    throw new CliError(
      `release ${release} in namespace ${namespace} has no Knative Service for '${service}' (disabled in its values?)`,
      EXIT.notFound,
    );
  return found;
}

/**
 * A JSON merge patch of a Knative Service. It carries the resourceVersion that was read, so a change made
 * by someone else in between fails (409) instead of being overwritten.
 */
export async function patchKnativeService(
  cluster: Cluster,
  ksvc: KnativeService,
  body: Record<string, unknown>,
  doing: string,
): Promise<KnativeService> {
  const metadata = { ...(body.metadata as object | undefined), resourceVersion: ksvc.metadata.resourceVersion };
  return (await cluster.call(doing, () =>
    cluster.custom.patchNamespacedCustomObject(
      { ...KNATIVE.service, namespace: cluster.namespace, name: ksvc.metadata.name, body: { ...body, metadata } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    ),
  )) as KnativeService;
}
