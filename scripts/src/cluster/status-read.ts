import type { KObject } from "./conditions.js";
import { type Cluster, KNATIVE, releaseSelector } from "./connect.js";

/** Everything `status` looks at in one namespace, read once. */
export interface Snapshot {
  namespace: string;
  services: KObject[];
  /** The Knative Services' Revisions and the Deployments Knative made for them, by Revision name. */
  revisions: Map<string, KObject>;
  revisionDeployments: Map<string, KObject>;
  brokers: KObject[];
  triggers: KObject[];
  sinkBindings: KObject[];
  pingSources: KObject[];
  /** The releases' own Deployments (the egress proxy). */
  deployments: KObject[];
  jobs: KObject[];
  serviceEntries: KObject[];
  ciliumPolicies: KObject[];
  /** Kinds whose CRD this cluster does not serve ("not installed", not an error). */
  notInstalled: string[];
  /** Egress kinds the credentials may not list (any other refusal is an error). */
  forbidden: string[];
}

type Coordinates = { group: string; version: string; plural: string };

const CILIUM_POLICY = { group: "cilium.io", version: "v2", plural: "ciliumegressgatewaypolicies" } as const;
// Istio serves v1 since 1.22; older installs only v1beta1.
const SERVICE_ENTRY_VERSIONS = ["v1", "v1beta1"];

const statusCode = (err: unknown) => (err as { code?: unknown })?.code;

/** Reads the namespace's snapmesh objects: two rounds of parallel list calls. */
export async function readSnapshot(cluster: Cluster): Promise<Snapshot> {
  const { namespace } = cluster;
  const selector = releaseSelector(undefined);
  const notInstalled: string[] = [];
  const forbidden: string[] = [];

  /** A list whose CRD may be absent: a 404 there means "not installed". */
  const listCustom = async (kind: string, at: Coordinates, labelSelector: string): Promise<KObject[]> => {
    const items = await cluster.call(`listing ${kind}s in namespace ${namespace}`, async () => {
      try {
        const list = await cluster.custom.listNamespacedCustomObject({ ...at, namespace, labelSelector });
        return (list as { items: KObject[] }).items;
      } catch (err) {
        if (statusCode(err) === 404) return undefined;
        throw err;
      }
    });
    if (!items) notInstalled.push(kind);
    return items ?? [];
  };

  // The egress probes may be refused to a role written without Istio or Cilium in mind: that alone must not
  // stop `status`; the egress line says what could not be looked at.
  const listServiceEntries = async (): Promise<KObject[]> => {
    for (const version of SERVICE_ENTRY_VERSIONS) {
      const items = await cluster.call(`listing Istio ServiceEntries in namespace ${namespace}`, async () => {
        try {
          const list = await cluster.custom.listNamespacedCustomObject({
            group: "networking.istio.io",
            version,
            plural: "serviceentries",
            namespace,
            labelSelector: selector,
          });
          return (list as { items: KObject[] }).items;
        } catch (err) {
          const code = statusCode(err);
          if (code === 404) return undefined;
          if (code === 403) return "forbidden";
          throw err;
        }
      });
      if (items === "forbidden") {
        forbidden.push("ServiceEntry");
        return [];
      }
      if (items) return items;
    }
    notInstalled.push("ServiceEntry");
    return [];
  };

  // Cluster-scoped: an operator with rights only in the namespace is often not allowed to list them.
  const listCiliumPolicies = async (): Promise<KObject[]> => {
    const items = await cluster.call("listing CiliumEgressGatewayPolicies", async () => {
      try {
        const list = await cluster.custom.listClusterCustomObject({ ...CILIUM_POLICY, labelSelector: selector });
        return (list as { items: KObject[] }).items;
      } catch (err) {
        const code = statusCode(err);
        if (code === 404 || code === 403) return code;
        throw err;
      }
    });
    if (items === 404) notInstalled.push("CiliumEgressGatewayPolicy");
    if (items === 403) forbidden.push("CiliumEgressGatewayPolicy");
    if (typeof items === "number") return [];
    return items.filter((p) => policyNamespaces(p).includes(namespace));
  };

  const [services, brokers, triggers, sinkBindings, pingSources, deployments, jobs, serviceEntries, ciliumPolicies] =
    await Promise.all([
      listCustom("Service", KNATIVE.service, selector),
      listCustom("Broker", KNATIVE.broker, selector),
      listCustom("Trigger", KNATIVE.trigger, selector),
      listCustom("SinkBinding", KNATIVE.sinkBinding, selector),
      listCustom("PingSource", KNATIVE.pingSource, selector),
      cluster.call(`listing Deployments in namespace ${namespace}`, () =>
        cluster.apps.listNamespacedDeployment({ namespace, labelSelector: selector }),
      ),
      cluster.call(`listing Jobs in namespace ${namespace}`, () =>
        cluster.batch.listNamespacedJob({ namespace, labelSelector: selector }),
      ),
      listServiceEntries(),
      listCiliumPolicies(),
    ]);

  // Revisions and their Deployments carry Knative's labels, not the chart's: select them by Service.
  const names = services.map((s) => s.metadata.name);
  const byService = names.length ? `serving.knative.dev/service in (${names.join(",")})` : undefined;
  const [revisionList, revisionDeploymentList] = byService
    ? await Promise.all([
        listCustom("Revision", KNATIVE.revision, byService),
        cluster.call(`listing Deployments in namespace ${namespace}`, () =>
          cluster.apps.listNamespacedDeployment({ namespace, labelSelector: byService }),
        ),
      ])
    : [[], { items: [] }];
  const revisionDeployments = new Map<string, KObject>();
  for (const d of revisionDeploymentList.items as KObject[]) {
    const revision = d.metadata.labels?.["serving.knative.dev/revision"];
    if (revision) revisionDeployments.set(revision, d);
  }

  return {
    namespace,
    services,
    revisions: new Map(revisionList.map((r) => [r.metadata.name, r])),
    revisionDeployments,
    brokers,
    triggers,
    sinkBindings,
    pingSources,
    deployments: deployments.items as KObject[],
    jobs: jobs.items as KObject[],
    serviceEntries,
    ciliumPolicies,
    notInstalled: [...new Set(notInstalled)].sort(),
    forbidden: forbidden.sort(),
  };
}

/** The namespaces a (cluster-scoped) Cilium policy selects pods in, as the chart writes its selectors. */
function policyNamespaces(policy: KObject): string[] {
  const selectors = Array.isArray(policy.spec?.selectors) ? policy.spec.selectors : [];
  return selectors
    .map(
      (s: { podSelector?: { matchLabels?: Record<string, string> } }) =>
        s.podSelector?.matchLabels?.["io.kubernetes.pod.namespace"],
    )
    .filter((n: unknown): n is string => typeof n === "string");
}
