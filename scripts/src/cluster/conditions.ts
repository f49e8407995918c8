/** Objects as the API returns them, read loosely: the commands only look at a few fields. */
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    generation?: number;
  };
  // biome-ignore lint/suspicious/noExplicitAny: spec and status differ per kind and are read defensively
  spec?: any;
  // biome-ignore lint/suspicious/noExplicitAny: as above
  status?: any;
}

/** A status condition as Knative (and Deployments and Jobs) write them. */
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export interface Readiness {
  ready: boolean;
  /** The Ready condition's status: True, False, or Unknown (also when no controller has written one). */
  status: string;
  reason: string | null;
  message: string | null;
  /** When Ready last changed. */
  since: string | null;
}

export const conditionsOf = (obj: KObject): Condition[] =>
  Array.isArray(obj.status?.conditions) ? (obj.status.conditions as Condition[]) : [];

/**
 * A Knative object's readiness from its Ready condition. Knative copies the failing dependent condition's
 * reason and message into Ready; when it has not (or Ready is missing), the first failing dependent
 * condition speaks for it.
 */
export function readiness(obj: KObject): Readiness {
  const conditions = conditionsOf(obj);
  const ready = conditions.find((c) => c.type === "Ready");
  if (!ready) {
    return {
      ready: false,
      status: "Unknown",
      reason: "NotReconciled",
      message: "no Ready condition yet: no Knative controller has reconciled it (is Knative running in this cluster?)",
      since: null,
    };
  }
  const since = ready.lastTransitionTime ?? null;
  if (ready.status === "True") {
    // Right after an upgrade Ready still speaks of the previous spec until the controller catches up.
    const seen = obj.status?.observedGeneration;
    const generation = obj.metadata.generation;
    if (typeof seen === "number" && typeof generation === "number" && seen < generation)
      return {
        ready: false,
        status: "Unknown",
        reason: "Outdated",
        message: `the controller has not reconciled generation ${generation} yet (Ready speaks of generation ${seen})`,
        since,
      };
    return { ready: true, status: "True", reason: ready.reason ?? null, message: null, since };
  }
  const others = conditions.filter((c) => c.type !== "Ready");
  const failing = others.find((c) => c.status === "False") ?? others.find((c) => c.status !== "True");
  return {
    ready: false,
    status: ready.status,
    reason: ready.reason || failing?.reason || (ready.status === "False" ? "NotReady" : "Unknown"),
    message: ready.message || failing?.message || null,
    since,
  };
}

interface Destination {
  ref?: { apiVersion?: string; kind?: string; name?: string; namespace?: string };
  uri?: string;
}

/** A Knative Destination (a ref, a URI, or a ref with a path) as one short string. */
export function describeDestination(d: Destination | undefined): string | null {
  if (!d) return null;
  if (!d.ref?.name) return d.uri ?? null;
  const kind =
    d.ref.kind === "Service" && d.ref.apiVersion?.startsWith("serving.knative.dev") ? "ksvc" : d.ref.kind?.toLowerCase();
  const target = `${kind ?? "ref"}/${d.ref.namespace ? `${d.ref.namespace}/` : ""}${d.ref.name}`;
  return d.uri ? `${target}${d.uri.startsWith("/") ? "" : " "}${d.uri}` : target;
}

export const INSTANCE_LABEL = "app.kubernetes.io/instance";
export const COMPONENT_LABEL = "app.kubernetes.io/component";
export const instanceOf = (obj: KObject): string | undefined => obj.metadata.labels?.[INSTANCE_LABEL];
