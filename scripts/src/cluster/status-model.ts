import {
  COMPONENT_LABEL,
  type Condition,
  conditionsOf,
  describeDestination,
  instanceOf,
  type KObject,
  type Readiness,
  readiness,
} from "./conditions.js";
import type { Snapshot } from "./status-read.js";

/** The shapes `status -o json|yaml` prints (documented at the top of status.ts). */
export interface Problem {
  kind: string;
  name: string;
  reason: string;
  message: string;
}

interface Ready {
  ready: boolean;
  /** The Ready condition's status: "True", "False", or "Unknown" (also when no controller has written one). */
  condition: string;
  reason: string | null;
  message: string | null;
  since: string | null;
}

export interface ServiceStatus extends Ready {
  name: string;
  component: string | null;
  url: string | null;
  latestCreatedRevision: string | null;
  latestReadyRevision: string | null;
  traffic: Array<{ revision: string | null; percent: number; latestRevision: boolean; tag: string | null }>;
  /** Pods of the revisions that take traffic, or null when neither a Revision nor a Deployment says. */
  replicas: number | null;
  minScale: number | null;
  maxScale: number | null;
  prewarm: { min: number | null; previousMin: string | null; until: string | null; expired: boolean } | null;
}

export interface BrokerStatus extends Ready {
  name: string;
  class: string | null;
  address: string | null;
  deadLetterSink: string | null;
}

export interface TriggerStatus extends Ready {
  name: string;
  broker: string | null;
  /** The CloudEvent type it lets through ("*" for every event; "filters" for the SQL-like filters). */
  type: string;
  subscriber: string | null;
  subscriberUri: string | null;
  deadLetterSink: string | null;
}

export interface SinkBindingStatus extends Ready {
  name: string;
  subject: string | null;
  sink: string | null;
  /** Where K_SINK points once injected. */
  sinkUri: string | null;
}

export interface PingSourceStatus extends Ready {
  name: string;
  schedule: string | null;
  sink: string | null;
  sinkUri: string | null;
}

export interface EgressStatus {
  mode: "proxy" | "cilium" | "istio" | "none";
  ready: boolean;
  /** The objects that give the mode away. */
  objects: string[];
  /** proxy only: ready and desired replicas of the proxy Deployment. */
  replicas: { ready: number; desired: number } | null;
  detail: string;
}

export interface MigrationStatus {
  name: string;
  service: string | null;
  state: "succeeded" | "failed" | "running";
  succeeded: boolean;
  reason: string | null;
  message: string | null;
}

export interface ReleaseStatus {
  release: string;
  ready: boolean;
  services: ServiceStatus[];
  broker: BrokerStatus | null;
  triggers: TriggerStatus[];
  sinkBindings: SinkBindingStatus[];
  pingSources: PingSourceStatus[];
  egress: EgressStatus;
  migrations: MigrationStatus[];
  deadLetters: { count: null; where: string; note: string };
  problems: Problem[];
}

export const PREWARM_ANNOTATION = "snapmesh.dev/prewarm";
const MIN_SCALE = "autoscaling.knative.dev/min-scale";
const MAX_SCALE = "autoscaling.knative.dev/max-scale";

/** The releases that have any object in the snapshot, sorted. */
export function releasesIn(s: Snapshot): string[] {
  const all = [
    ...s.services,
    ...s.brokers,
    ...s.triggers,
    ...s.sinkBindings,
    ...s.pingSources,
    ...s.deployments,
    ...s.jobs,
    ...s.serviceEntries,
    ...s.ciliumPolicies,
  ];
  return [...new Set(all.map(instanceOf).filter((r): r is string => Boolean(r)))].sort();
}

export function releaseStatus(s: Snapshot, release: string, now = new Date()): ReleaseStatus {
  const mine = (objects: KObject[]) =>
    objects.filter((o) => instanceOf(o) === release).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const problems: Problem[] = [];
  const check = (kind: string, name: string, r: Readiness) => {
    if (!r.ready) problems.push({ kind, name, reason: r.reason ?? "NotReady", message: r.message ?? "" });
    return { ready: r.ready, condition: r.status, reason: r.reason, message: r.message, since: r.since };
  };

  const services = mine(s.services).map((svc) => ({
    name: svc.metadata.name,
    component: svc.metadata.labels?.[COMPONENT_LABEL] ?? null,
    ...check("Service", svc.metadata.name, readiness(svc)),
    ...serviceDetail(svc, s, now),
  }));
  const brokers = mine(s.brokers).map((b) => ({
    name: b.metadata.name,
    ...check("Broker", b.metadata.name, readiness(b)),
    class: b.metadata.annotations?.["eventing.knative.dev/broker.class"] ?? null,
    address: b.status?.address?.url ?? null,
    deadLetterSink: b.status?.deadLetterSinkUri ?? describeDestination(b.spec?.delivery?.deadLetterSink),
  }));
  const triggers = mine(s.triggers).map((t) => ({
    name: t.metadata.name,
    ...check("Trigger", t.metadata.name, readiness(t)),
    broker: t.spec?.broker ?? null,
    type: filterType(t),
    subscriber: describeDestination(t.spec?.subscriber),
    subscriberUri: t.status?.subscriberUri ?? null,
    deadLetterSink: describeDestination(t.spec?.delivery?.deadLetterSink) ?? t.status?.deadLetterSinkUri ?? null,
  }));
  const sinkBindings = mine(s.sinkBindings).map((b) => ({
    name: b.metadata.name,
    ...check("SinkBinding", b.metadata.name, readiness(b)),
    subject: b.spec?.subject?.name
      ? `${b.spec.subject.kind === "Service" ? "ksvc" : b.spec.subject.kind}/${b.spec.subject.name}`
      : null,
    sink: describeDestination(b.spec?.sink),
    sinkUri: b.status?.sinkUri ?? null,
  }));
  const pingSources = mine(s.pingSources).map((p) => ({
    name: p.metadata.name,
    ...check("PingSource", p.metadata.name, readiness(p)),
    schedule: p.spec?.schedule ?? null,
    sink: describeDestination(p.spec?.sink),
    sinkUri: p.status?.sinkUri ?? null,
  }));

  const egress = egressStatus(s, mine);
  if (!egress.ready)
    problems.push({ kind: "Deployment", name: egress.objects[0] ?? "egress", reason: "EgressNotReady", message: egress.detail });

  const migrations = mine(s.jobs)
    .filter((j) => j.metadata.labels?.[COMPONENT_LABEL]?.endsWith("-migrate") || j.metadata.name.endsWith("-migrate"))
    .map(migrationStatus);
  for (const m of migrations.filter((m) => !m.succeeded))
    problems.push({ kind: "Job", name: m.name, reason: m.reason ?? m.state, message: m.message ?? "" });

  if (s.notInstalled.includes("Service") && services.length === 0)
    problems.push({
      kind: "CustomResourceDefinition",
      name: "services.serving.knative.dev",
      reason: "NotInstalled",
      message: "Knative Serving is not installed in this cluster: the release's services cannot run",
    });

  const broker = brokers[0] ?? null;
  return {
    release,
    ready: problems.length === 0,
    services,
    broker,
    triggers,
    sinkBindings,
    pingSources,
    egress,
    migrations,
    deadLetters: deadLetters(broker),
    problems,
  };
}

interface TrafficTarget {
  revisionName?: string;
  percent?: number;
  latestRevision?: boolean;
  tag?: string;
}

function serviceDetail(svc: KObject, s: Snapshot, now: Date) {
  const annotations: Record<string, string> = svc.spec?.template?.metadata?.annotations ?? {};
  const targets: TrafficTarget[] = Array.isArray(svc.status?.traffic) ? svc.status.traffic : [];
  const traffic = targets.map((t) => ({
    revision: t.revisionName ?? null,
    percent: t.percent ?? 0,
    latestRevision: t.latestRevision ?? false,
    tag: t.tag ?? null,
  }));
  const latestReady: string | null = svc.status?.latestReadyRevisionName ?? null;
  // The revisions that serve: those with a share of the traffic (before any traffic is routed, the latest ready).
  const serving = traffic.filter((t) => t.percent > 0).map((t) => t.revision);
  const counts = (serving.length ? serving : [latestReady])
    .filter((r): r is string => Boolean(r))
    .map((r) => replicasOf(r, s))
    .filter((n): n is number => n !== null);
  return {
    url: svc.status?.url ?? null,
    latestCreatedRevision: svc.status?.latestCreatedRevisionName ?? null,
    latestReadyRevision: latestReady,
    traffic,
    replicas: counts.length ? counts.reduce((a, b) => a + b, 0) : null,
    minScale: intOrNull(annotations[MIN_SCALE]),
    maxScale: intOrNull(annotations[MAX_SCALE]),
    prewarm: prewarmOf(svc.metadata.annotations?.[PREWARM_ANNOTATION] ?? annotations[PREWARM_ANNOTATION], now),
  };
}

/** Knative's autoscaler view (the Revision's actualReplicas), else the ready pods of its Deployment. */
function replicasOf(revision: string, s: Snapshot): number | null {
  const actual = s.revisions.get(revision)?.status?.actualReplicas;
  if (typeof actual === "number") return actual;
  const deployment = s.revisionDeployments.get(revision);
  return deployment ? (deployment.status?.readyReplicas ?? 0) : null;
}

function prewarmOf(raw: string | undefined, now: Date): ServiceStatus["prewarm"] {
  if (!raw) return null;
  let value: { min?: unknown; previousMin?: unknown; until?: unknown } = {};
  try {
    value = JSON.parse(raw);
  } catch {
    // Shown as present but unreadable: the fields stay null.
  }
  const until = typeof value.until === "string" ? value.until : null;
  return {
    min: typeof value.min === "number" ? value.min : intOrNull(String(value.min ?? "")),
    previousMin: value.previousMin === undefined || value.previousMin === null ? null : String(value.previousMin),
    until,
    expired: until !== null && Date.parse(until) < now.getTime(),
  };
}

const intOrNull = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : null);

function filterType(t: KObject): string {
  if (Array.isArray(t.spec?.filters) && t.spec.filters.length) return "filters";
  return t.spec?.filter?.attributes?.type ?? "*";
}

/**
 * The chart does not record `egress.mode` in the cluster, so it is read from what the mode creates: the proxy
 * Deployment, a CiliumEgressGatewayPolicy, or Istio ServiceEntries.
 */
function egressStatus(s: Snapshot, mine: (o: KObject[]) => KObject[]): EgressStatus {
  const proxy = mine(s.deployments).find(
    (d) => d.metadata.labels?.[COMPONENT_LABEL] === "egress-proxy" || d.metadata.name.endsWith("-egress-proxy"),
  );
  if (proxy) {
    const desired = proxy.spec?.replicas ?? 1;
    const ready = proxy.status?.readyReplicas ?? 0;
    const available = conditionsOf(proxy).find((c: Condition) => c.type === "Available" && c.status !== "True");
    const ok = desired > 0 && ready >= desired;
    return {
      mode: "proxy",
      ready: ok,
      objects: [proxy.metadata.name],
      replicas: { ready, desired },
      detail: `${ready}/${desired} proxy replicas ready (deployment/${proxy.metadata.name})${
        !ok && available?.message ? `: ${available.message}` : ""
      }`,
    };
  }
  const policies = mine(s.ciliumPolicies);
  if (policies.length) {
    const ips = policies.map((p) => p.spec?.egressGateway?.egressIP).filter(Boolean);
    return {
      mode: "cilium",
      ready: true,
      objects: policies.map((p) => p.metadata.name),
      replicas: null,
      detail: `CiliumEgressGatewayPolicy ${policies.map((p) => p.metadata.name).join(", ")}${ips.length ? `, egress IP ${ips.join(", ")}` : ""}`,
    };
  }
  const entries = mine(s.serviceEntries);
  if (entries.length) {
    const hosts = entries.flatMap((e) => (Array.isArray(e.spec?.hosts) ? e.spec.hosts : []));
    return {
      mode: "istio",
      ready: true,
      objects: entries.map((e) => e.metadata.name),
      replicas: null,
      detail: `${entries.length} ServiceEntr${entries.length === 1 ? "y" : "ies"} through the egress gateway: ${hosts.join(", ")}`,
    };
  }
  const unknown = [
    ...s.notInstalled.filter((k) => k === "ServiceEntry" || k === "CiliumEgressGatewayPolicy").map((k) => `${k}: not installed`),
    ...s.forbidden.map((k) => `${k}: not allowed to list`),
  ];
  return {
    mode: "none",
    ready: true,
    objects: [],
    replicas: null,
    detail: `no egress objects: outbound calls leave from any node${unknown.length ? ` (${unknown.join("; ")})` : ""}`,
  };
}

function migrationStatus(job: KObject): MigrationStatus {
  const conditions = conditionsOf(job);
  const done = (type: string) => conditions.find((c) => c.type === type && c.status === "True");
  const complete = done("Complete");
  const failed = done("Failed");
  const component = job.metadata.labels?.[COMPONENT_LABEL];
  const base = { name: job.metadata.name, service: component ? component.replace(/-migrate$/, "") : null };
  if (complete) return { ...base, state: "succeeded", succeeded: true, reason: null, message: null };
  if (failed)
    return {
      ...base,
      state: "failed",
      succeeded: false,
      reason: failed.reason ?? "Failed",
      message: failed.message ?? `${job.status?.failed ?? 0} failed pod(s)`,
    };
  return {
    ...base,
    state: "running",
    succeeded: false,
    reason: "Running",
    message: `the migration has not finished (${job.status?.active ?? 0} active pod(s))`,
  };
}

function deadLetters(broker: BrokerStatus | null): ReleaseStatus["deadLetters"] {
  const external = broker?.deadLetterSink;
  return {
    count: null,
    where: external ?? "jetstream",
    note: external
      ? "dead letters go to the release's eventing.deadLetterUri; count them there"
      : "kept in the JetStream dead-letter stream; counting needs a port-forward to NATS: snapmesh dlq list --cluster",
  };
}
