import { existsSync } from "node:fs";
import { ApiextensionsV1Api, AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { CliError, clusterError, EXIT } from "./errors.js";

export interface ClusterOptions {
  /** --kubeconfig; else KUBECONFIG, ~/.kube/config, or the in-cluster service account (as kubectl). */
  kubeconfig?: string | undefined;
  /** --context; else the kubeconfig's current context. */
  context?: string | undefined;
  /** -n/--namespace; else the context's namespace, else "default". */
  namespace?: string | undefined;
}

/** A connection to one cluster and namespace, and the API groups the commands use. */
export interface Cluster {
  readonly kc: KubeConfig;
  readonly namespace: string;
  /** The API server's URL (for messages). */
  readonly server: string;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly custom: CustomObjectsApi;
  readonly apiext: ApiextensionsV1Api;
  /** Runs one API call; a failure becomes a one-line CliError naming what was being done. */
  call<T>(doing: string, fn: () => Promise<T>): Promise<T>;
}

/** Loads the kubeconfig exactly as kubectl does and picks the context and namespace. */
export function connect(opts: ClusterOptions = {}): Cluster {
  const kc = new KubeConfig();
  const from = opts.kubeconfig ?? process.env.KUBECONFIG;
  try {
    if (opts.kubeconfig) {
      if (!existsSync(opts.kubeconfig)) throw new CliError(`no kubeconfig at ${opts.kubeconfig}`, EXIT.config);
      kc.loadFromFile(opts.kubeconfig);
    } else {
      kc.loadFromDefault();
    }
  } catch (err) {
    if (err instanceof CliError) throw err;
    const why = (err as { code?: string }).code === "ENOENT" ? "no such file" : String((err as Error).message).split("\n")[0];
    throw new CliError(`cannot load the kubeconfig${from ? ` ${from}` : ""}: ${why}`, EXIT.config);
  }
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new CliError(
        `no context '${opts.context}' in the kubeconfig (${known.length ? `one of: ${known.join(", ")}` : "it has none"})`,
        EXIT.config,
      );
    }
    kc.setCurrentContext(opts.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster || placeholder(kc)) {
    throw new CliError(
      "no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config",
      EXIT.config,
    );
  }
  const namespace = opts.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default";
  const server = cluster.server;
  return {
    kc,
    namespace,
    server,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    apiext: kc.makeApiClient(ApiextensionsV1Api),
    async call(doing, fn) {
      try {
        return await fn();
      } catch (err) {
        throw clusterError(err, doing, server);
      }
    },
  };
}

/**
 * With no KUBECONFIG, no ~/.kube/config and no service account, the client invents a context for
 * http://localhost:8080 (as kubectl once did): that is "not configured", not "unreachable".
 */
function placeholder(kc: KubeConfig): boolean {
  const cluster = kc.getCurrentCluster();
  return kc.getCurrentContext() === "loaded-context" && cluster?.name === "cluster" && cluster.server === "http://localhost:8080";
}

/** The snapmesh resources' API coordinates (CustomObjectsApi takes group, version, plural). */
export const KNATIVE = {
  service: { group: "serving.knative.dev", version: "v1", plural: "services" },
  revision: { group: "serving.knative.dev", version: "v1", plural: "revisions" },
  broker: { group: "eventing.knative.dev", version: "v1", plural: "brokers" },
  trigger: { group: "eventing.knative.dev", version: "v1", plural: "triggers" },
  sinkBinding: { group: "sources.knative.dev", version: "v1", plural: "sinkbindings" },
  pingSource: { group: "sources.knative.dev", version: "v1", plural: "pingsources" },
} as const;

/** The label selector of a release's objects (the chart's `app.kubernetes.io/instance`). */
export const releaseSelector = (release: string | undefined) =>
  release ? `app.kubernetes.io/part-of=snapmesh,app.kubernetes.io/instance=${release}` : "app.kubernetes.io/part-of=snapmesh";
