/*
 * snapmesh prewarm <service> [--min N] [--for 30m|2h|90s|1h30m] | prewarm <service> --undo | prewarm
 *
 * Sets `autoscaling.knative.dev/min-scale` on the Knative Service's pod template (default --min 3) and
 * records what it replaced in the Service's annotation `snapmesh.dev/prewarm`:
 * `{"min":3,"previousMin":"0"|null,"until":"<ISO time>"|null}`. Prewarming again keeps the first
 * previousMin; `--undo` puts previousMin back (null: removes min-scale) and drops the record. Every call
 * first restores the services whose `until` has passed, so `snapmesh prewarm` alone (or a CronJob running
 * it) is the sweep; nothing keeps running in the background.
 *
 * -o json|yaml:
 * {
 *   "namespace": "shop",
 *   "changes": [{ "service": "auth", "release": "photos", "name": "photos-snapmesh-auth",
 *                 "action": "prewarm" | "undo" | "expire", "from": "0" | null, "to": "3" | null,
 *                 "until": "2025-06-01T12:30:00.000Z" | null }],
 *   "prewarmed": [{ "service": "auth", "release": "photos", "name": "photos-snapmesh-auth",
 *                   "min": 3, "previousMin": "0" | null, "until": "…" | null }]
 * }
 * `from`/`to` are min-scale before and after (null: no annotation, Knative's default). Exit 0 when done,
 * 64 for bad arguments (nothing changed), 66 when the release or service is not there.
 */
import type { Cluster } from "./connect.js";
import { CliError, EXIT } from "./errors.js";
import { type OutputFormat, printResult, type Table } from "./print.js";
import {
  componentOf,
  type KnativeService,
  listKnativeServices,
  patchKnativeService,
  pickRelease,
  pickService,
  releaseOf,
  serviceName,
} from "./release-services.js";

export const MIN_SCALE = "autoscaling.knative.dev/min-scale";
const MAX_SCALE = "autoscaling.knative.dev/max-scale";
export const PREWARM = "snapmesh.dev/prewarm";
/** Enough replicas to take a spike's first seconds while the autoscaler catches up. */
const DEFAULT_MIN = 3;

export interface PrewarmRecord {
  min: number;
  previousMin: string | null;
  until: string | null;
}

interface Change {
  service: string;
  release: string;
  name: string;
  action: "prewarm" | "undo" | "expire";
  from: string | null;
  to: string | null;
  until: string | null;
}

export async function prewarm(
  cluster: Cluster,
  opts: { service?: string; min?: string; for?: string; undo: boolean; release?: string },
  format: OutputFormat,
  now: Date = new Date(),
): Promise<number> {
  const plan = planOf(opts, now);
  let all = await listKnativeServices(cluster);
  // The target is settled before the sweep, so a bad --release or an ambiguous namespace changes nothing.
  let target: KnativeService | undefined;
  if (plan.service) {
    const release = pickRelease(all, opts.release, cluster.namespace);
    target = pickService(all, release, plan.service, cluster.namespace);
    if (!plan.undo) checkMin(target, plan.min);
    recordOf(target); // a broken record stops here, before anything is written
  }

  const changes: Change[] = [];
  const replace = (next: KnativeService) => {
    all = all.map((k) => (k.metadata.name === next.metadata.name ? next : k));
    if (target?.metadata.name === next.metadata.name) target = next;
  };
  for (const ksvc of all) {
    const record = safeRecordOf(ksvc);
    if (record?.until && Date.parse(record.until) <= now.getTime()) {
      const { next, change } = await restore(cluster, ksvc, record, "expire");
      replace(next);
      changes.push(change);
    }
  }

  if (target && plan.undo) {
    const record = recordOf(target);
    if (record) {
      const { next, change } = await restore(cluster, target, record, "undo");
      replace(next);
      changes.push(change);
    }
  } else if (target) {
    const { next, change } = await raise(cluster, target, plan.min, plan.until);
    replace(next);
    changes.push(change);
  }

  const prewarmed = all.flatMap((k) => {
    const record = safeRecordOf(k);
    return record ? [{ service: componentOf(k), release: releaseOf(k), name: k.metadata.name, ...record }] : [];
  });
  const data = { namespace: cluster.namespace, changes, prewarmed };
  const human = format === "table" || format === "wide";
  if (human && plan.undo && !changes.some((c) => c.action === "undo"))
    process.stdout.write(`${plan.service} was not prewarmed: nothing to undo\n`);
  printResult(format, data, () => tables(changes, prewarmed));
  if (human && !prewarmed.length) process.stdout.write("nothing is prewarmed\n");
  return EXIT.ok;
}

interface Plan {
  service: string | undefined;
  undo: boolean;
  min: number;
  until: string | null;
}

function planOf(opts: { service?: string; min?: string; for?: string; undo: boolean }, now: Date): Plan {
  const service = opts.service === undefined ? undefined : serviceName(opts.service, "prewarm");
  if (opts.undo && (opts.min !== undefined || opts.for !== undefined))
    throw new CliError("--undo takes no --min or --for", EXIT.usage);
  if (opts.undo && !service) throw new CliError("--undo needs a service: snapmesh prewarm <service> --undo", EXIT.usage);
  if (!service && (opts.min !== undefined || opts.for !== undefined))
    throw new CliError("--min and --for need a service: snapmesh prewarm <service> --min N", EXIT.usage);
  let min = DEFAULT_MIN;
  if (opts.min !== undefined) {
    if (!/^\d+$/.test(opts.min) || Number(opts.min) < 1)
      throw new CliError(`--min must be a whole number of replicas, at least 1 (got '${opts.min}')`, EXIT.usage);
    min = Number(opts.min);
  }
  const ms = opts.for === undefined ? undefined : durationMs(opts.for);
  return { service, undo: opts.undo, min, until: ms === undefined ? null : new Date(now.getTime() + ms).toISOString() };
}

/** `90s`, `30m`, `2h`, `1h30m`. */
export function durationMs(text: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  const ms = m ? (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000 : 0;
  if (!m || ms <= 0) throw new CliError(`--for must be a duration such as 90s, 30m, 2h or 1h30m (got '${text}')`, EXIT.usage);
  return ms;
}

/** Knative's webhook refuses min-scale above max-scale: say so here, in the operator's words. */
function checkMin(ksvc: KnativeService, min: number): void {
  const max = Number(templateAnnotations(ksvc)[MAX_SCALE] ?? 0);
  if (max > 0 && min > max)
    throw new CliError(`--min ${min} is above ${componentOf(ksvc)}'s max-scale ${max} (services.<name>.maxScale)`, EXIT.usage);
}

const templateAnnotations = (ksvc: KnativeService) => ksvc.spec?.template?.metadata?.annotations ?? {};

export function recordOf(ksvc: KnativeService): PrewarmRecord | undefined {
  const text = ksvc.metadata.annotations?.[PREWARM];
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as PrewarmRecord;
    if (typeof r.min === "number" && (r.previousMin === null || typeof r.previousMin === "string")) return r;
  } catch {}
  throw new CliError(
    `the ${PREWARM} annotation on ${ksvc.metadata.name} is not a prewarm record: fix min-scale by hand and remove it ` +
      `(kubectl annotate ksvc ${ksvc.metadata.name} ${PREWARM}-)`,
    EXIT.notReady,
  );
}

/** For the sweep and the listing: a broken record on another service is not this call's business. */
function safeRecordOf(ksvc: KnativeService): PrewarmRecord | undefined {
  try {
    return recordOf(ksvc);
  } catch {
    return undefined;
  }
}

async function raise(cluster: Cluster, ksvc: KnativeService, min: number, until: string | null) {
  const current = templateAnnotations(ksvc)[MIN_SCALE] ?? null;
  // A second prewarm keeps the value from before the first, or --undo would restore the prewarm itself.
  const earlier = recordOf(ksvc);
  const previousMin = earlier ? earlier.previousMin : current;
  const record: PrewarmRecord = { min, previousMin, until };
  const next = await patchKnativeService(
    cluster,
    ksvc,
    {
      metadata: { annotations: { [PREWARM]: JSON.stringify(record) } },
      spec: { template: { metadata: { annotations: { [MIN_SCALE]: String(min) } } } },
    },
    `prewarming ${ksvc.metadata.name}`,
  );
  return { next, change: change(ksvc, "prewarm", current, String(min), until) };
}

async function restore(cluster: Cluster, ksvc: KnativeService, record: PrewarmRecord, action: "undo" | "expire") {
  const current = templateAnnotations(ksvc)[MIN_SCALE] ?? null;
  const next = await patchKnativeService(
    cluster,
    ksvc,
    {
      metadata: { annotations: { [PREWARM]: null } },
      spec: { template: { metadata: { annotations: { [MIN_SCALE]: record.previousMin } } } },
    },
    `restoring min-scale of ${ksvc.metadata.name}`,
  );
  return { next, change: change(ksvc, action, current, record.previousMin, record.until) };
}

const change = (
  ksvc: KnativeService,
  action: Change["action"],
  from: string | null,
  to: string | null,
  until: string | null,
): Change => ({ service: componentOf(ksvc), release: releaseOf(ksvc), name: ksvc.metadata.name, action, from, to, until });

type Prewarmed = PrewarmRecord & { service: string; release: string; name: string };

const scale = (v: string | null) => v ?? "(default)";

function tables(changes: Change[], prewarmed: Prewarmed[]): Table<never>[] {
  const out: Table<never>[] = [];
  if (changes.length)
    out.push(
      table<Change>({
        title: "Changed:",
        rows: changes,
        columns: [
          { header: "SERVICE", value: (c) => c.service },
          { header: "ACTION", value: (c) => c.action },
          { header: "MIN-SCALE", value: (c) => `${scale(c.from)} -> ${scale(c.to)}` },
          { header: "UNTIL", value: (c) => (c.action === "prewarm" ? (c.until ?? "--undo") : "") },
          { header: "RELEASE", value: (c) => c.release, wide: true },
          { header: "NAME", value: (c) => c.name, wide: true },
        ],
      }),
    );
  if (prewarmed.length)
    out.push(
      table<Prewarmed>({
        title: "Prewarmed:",
        rows: prewarmed,
        columns: [
          { header: "SERVICE", value: (p) => p.service },
          { header: "MIN", value: (p) => String(p.min) },
          { header: "RESTORES TO", value: (p) => scale(p.previousMin) },
          { header: "UNTIL", value: (p) => p.until ?? "--undo" },
          { header: "RELEASE", value: (p) => p.release, wide: true },
          { header: "NAME", value: (p) => p.name, wide: true },
        ],
      }),
    );
  return out;
}

const table = <R>(t: Table<R>) => t as unknown as Table<never>;
