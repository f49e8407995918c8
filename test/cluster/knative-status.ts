// What Knative's controllers (and the Deployment and Job controllers) would write into `status`: no controller
// runs on the test API server, so the tests play them.
import { AppsV1Api, BatchV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";

const SERVICE = { group: "serving.knative.dev", version: "v1", plural: "services" };
const REVISION = { group: "serving.knative.dev", version: "v1", plural: "revisions" };
const BROKER = { group: "eventing.knative.dev", version: "v1", plural: "brokers" };
const TRIGGER = { group: "eventing.knative.dev", version: "v1", plural: "triggers" };
const SINK_BINDING = { group: "sources.knative.dev", version: "v1", plural: "sinkbindings" };

type Coordinates = typeof SERVICE;
type Item = { metadata: { name: string; labels?: Record<string, string> }; spec: { subscriber?: { ref: { name: string } } } };
export type Condition = { type: string; status: "True" | "False" | "Unknown"; reason?: string; message?: string };

const at = "2025-01-01T00:00:00Z";
const conditions = (types: string[], overrides: Condition[] = []) =>
  types.map((type) => ({ type, status: "True", lastTransitionTime: at, ...overrides.find((o) => o.type === type) }));

export function knative(kubeconfig: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const apps = kc.makeApiClient(AppsV1Api);
  const batch = kc.makeApiClient(BatchV1Api);

  const list = async (c: Coordinates, namespace: string, release: string): Promise<Item[]> =>
    (
      (await custom.listNamespacedCustomObject({ ...c, namespace, labelSelector: `app.kubernetes.io/instance=${release}` })) as {
        items: Item[];
      }
    ).items;
  // A JSON patch that adds /status replaces the whole status, as a controller's update does.
  const writeStatus = (c: Coordinates, namespace: string, name: string, status: unknown) =>
    custom.patchNamespacedCustomObjectStatus({ ...c, namespace, name, body: [{ op: "add", path: "/status", value: status }] });

  const brokerUrl = (namespace: string, name: string) =>
    `http://broker-ingress.knative-eventing.svc.cluster.local/${namespace}/${name}`;

  const api = {
    /** A Knative Service with its first Revision ready and all the traffic, and `replicas` pods. */
    async serviceReady(namespace: string, name: string, replicas = 0) {
      await api.revision(namespace, name, `${name}-00001`, replicas);
      await writeStatus(SERVICE, namespace, name, {
        observedGeneration: 1,
        conditions: conditions(["ConfigurationsReady", "Ready", "RoutesReady"]),
        latestCreatedRevisionName: `${name}-00001`,
        latestReadyRevisionName: `${name}-00001`,
        url: `http://${name}.${namespace}.svc.cluster.local`,
        traffic: [{ revisionName: `${name}-00001`, latestRevision: true, percent: 100 }],
      });
    },

    /**
     * What Serving writes when the newest Revision cannot start: traffic stays on the last good one (00001,
     * which serviceReady made).
     */
    async serviceRevisionFailed(namespace: string, name: string, message: string) {
      const failed: Condition = { type: "ConfigurationsReady", status: "False", reason: "RevisionFailed", message };
      await api.revision(namespace, name, `${name}-00002`, 0, [
        { type: "ContainerHealthy", status: "False", reason: "ExitCode1", message },
        { type: "Ready", status: "False", reason: "ExitCode1", message },
      ]);
      await writeStatus(SERVICE, namespace, name, {
        observedGeneration: 1,
        conditions: conditions(["ConfigurationsReady", "Ready", "RoutesReady"], [failed, { ...failed, type: "Ready" }]),
        latestCreatedRevisionName: `${name}-00002`,
        latestReadyRevisionName: `${name}-00001`,
        url: `http://${name}.${namespace}.svc.cluster.local`,
        traffic: [{ revisionName: `${name}-00001`, latestRevision: false, percent: 100 }],
      });
    },

    async revision(namespace: string, service: string, name: string, replicas: number, failing: Condition[] = []) {
      await custom.createNamespacedCustomObject({
        ...REVISION,
        namespace,
        body: {
          apiVersion: "serving.knative.dev/v1",
          kind: "Revision",
          metadata: { name, labels: { "serving.knative.dev/service": service, "serving.knative.dev/configuration": service } },
          spec: { containers: [{ image: "registry.example/snapmesh@sha256:0" }] },
        },
      });
      await writeStatus(REVISION, namespace, name, {
        observedGeneration: 1,
        conditions: conditions(["Active", "ContainerHealthy", "Ready", "ResourcesAvailable"], failing),
        actualReplicas: replicas,
        desiredReplicas: replicas,
      });
    },

    async brokerReady(namespace: string, name: string) {
      await writeStatus(BROKER, namespace, name, {
        observedGeneration: 1,
        conditions: conditions(["Addressable", "FilterReady", "IngressReady", "Ready", "TriggerChannelReady"]),
        address: { url: brokerUrl(namespace, name) },
      });
    },

    async trigger(namespace: string, trigger: Item, failing: Condition[] = []) {
      const subscriber = trigger.spec.subscriber!.ref.name;
      await writeStatus(TRIGGER, namespace, trigger.metadata.name, {
        observedGeneration: 1,
        conditions: conditions(
          ["BrokerReady", "DependencyReady", "Ready", "SubscriberResolved", "SubscriptionReady"],
          [...failing, ...failing.slice(0, 1).map((f) => ({ ...f, type: "Ready" }))],
        ),
        subscriberUri: `http://${subscriber}.${namespace}.svc.cluster.local`,
        deadLetterSinkUri: `http://${subscriber}.${namespace}.svc.cluster.local/dead-letters`,
      });
    },

    async sinkBindingReady(namespace: string, name: string, broker: string) {
      await writeStatus(SINK_BINDING, namespace, name, {
        observedGeneration: 1,
        conditions: conditions(["Ready", "SinkProvided"]),
        sinkUri: brokerUrl(namespace, broker),
      });
    },

    /** Every Knative object of the release Ready, as the controllers report once all is well. */
    async releaseReady(namespace: string, release: string, replicas: Record<string, number> = {}) {
      const [services, brokers, triggers, bindings] = await Promise.all(
        [SERVICE, BROKER, TRIGGER, SINK_BINDING].map((c) => list(c, namespace, release)),
      );
      const broker = brokers![0]!.metadata.name;
      await Promise.all([
        ...services!.map((s) => api.serviceReady(namespace, s.metadata.name, replicas[s.metadata.name] ?? 0)),
        api.brokerReady(namespace, broker),
        ...triggers!.map((t) => api.trigger(namespace, t)),
        ...bindings!.map((b) => api.sinkBindingReady(namespace, b.metadata.name, broker)),
      ]);
      return { services: services!, triggers: triggers!, broker };
    },

    async deploymentReady(namespace: string, name: string, replicas: number) {
      await apps.patchNamespacedDeploymentStatus({
        namespace,
        name,
        body: [
          {
            op: "add",
            path: "/status",
            value: {
              observedGeneration: 1,
              replicas,
              readyReplicas: replicas,
              availableReplicas: replicas,
              updatedReplicas: replicas,
            },
          },
        ],
      });
    },

    /** The Job controller's verdict on a Job: done, or failed for good. */
    async jobFinished(namespace: string, name: string, outcome: "Complete" | "Failed") {
      const start = "2025-01-01T00:00:00Z";
      const end = "2025-01-01T00:00:10Z";
      const status =
        outcome === "Complete"
          ? {
              startTime: start,
              completionTime: end,
              succeeded: 1,
              conditions: [
                { type: "SuccessCriteriaMet", status: "True", lastTransitionTime: end, lastProbeTime: end },
                { type: "Complete", status: "True", lastTransitionTime: end, lastProbeTime: end },
              ],
            }
          : {
              startTime: start,
              failed: 4,
              conditions: [
                {
                  type: "FailureTarget",
                  status: "True",
                  reason: "BackoffLimitExceeded",
                  message: "Job has reached the specified backoff limit",
                  lastTransitionTime: end,
                  lastProbeTime: end,
                },
                {
                  type: "Failed",
                  status: "True",
                  reason: "BackoffLimitExceeded",
                  message: "Job has reached the specified backoff limit",
                  lastTransitionTime: end,
                  lastProbeTime: end,
                },
              ],
            };
      await batch.patchNamespacedJobStatus({ namespace, name, body: [{ op: "add", path: "/status", value: status }] });
    },
  };
  return api;
}
