/*
 * `snapmesh doctor`: can this cluster run the chart with these values? Run it before `helm install`.
 *
 * -o json|yaml:
 *   {
 *     "namespace": "photos",
 *     "checks": [
 *       { "name": "crd brokers.eventing.knative.dev", "status": "fail",
 *         "detail": "not installed (the chart needs v1)", "fix": "kubectl apply -f …" },
 *       { "name": "secret snapmesh-database", "status": "pass", "detail": "keys auth, social, … (…)" }
 *     ]
 *   }
 * `status` is "pass", "warn" or "fail"; `fix` (one line: a command, or a doc to follow) comes with every fail and
 * most warns. Names are stable: `crd <crd name>`, `knative feature <flag>`, `knative max-scale-limit`,
 * `knative scale to zero`, `namespace`, `pod security`, `istio sidecar injection`, `secret <name>`,
 * `nats <host>:<port>`.
 * Exit 0 when nothing fails (warns allowed), 1 when a check fails. A check RBAC forbids fails naming the
 * permission; when RBAC forbids every one, one line and exit 77 instead of a table of identical refusals.
 */
import type { Cluster } from "./connect.js";
import { namespaceProbe, secretProbes } from "./doctor-namespace.js";
import { natsProbes } from "./doctor-nats.js";
import { autoscalerProbe, crdProbe, deliveryTimeoutProbe, neededCrds, servingFeaturesProbe } from "./doctor-platform.js";
import { type Check, type DoctorContext, Forbidden, type Probe, type Reader } from "./doctor-probe.js";
import { chartValues, enabledServices, text } from "./doctor-values.js";
import { CliError, clusterError, EXIT } from "./errors.js";
import { type OutputFormat, painter, printResult, type Table } from "./print.js";

export interface DoctorResult {
  namespace: string;
  checks: Check[];
}

export async function doctor(
  cluster: Cluster,
  opts: { release?: string | undefined; valuesFile?: string | undefined },
  format: OutputFormat,
): Promise<number> {
  const values = chartValues(opts.valuesFile);
  const ctx: DoctorContext = { cluster, namespace: cluster.namespace, values, services: enabledServices(values) };
  const checks = await runProbes(cluster, probesFor(ctx));
  const result: DoctorResult = { namespace: ctx.namespace, checks };
  printResult(format, result, () => tables(checks, format === "wide"));
  if (format === "table" || format === "wide") process.stdout.write(`\n${summary(checks, ctx.namespace, opts.release)}\n`);
  return checks.some((c) => c.status === "fail") ? EXIT.notReady : EXIT.ok;
}

function probesFor(ctx: DoctorContext): Probe[] {
  const eventing = text(ctx.values, "eventing.enabled") === "true";
  return [
    ...neededCrds(ctx.values).map((crd) => crdProbe(ctx, crd)),
    servingFeaturesProbe(ctx),
    autoscalerProbe(ctx),
    ...(eventing && text(ctx.values, "eventing.deliveryTimeout") ? [deliveryTimeoutProbe(ctx)] : []),
    namespaceProbe(ctx),
    ...secretProbes(ctx),
    ...natsProbes(ctx),
  ];
}

/** Runs every probe at once; the checks keep the probes' order. */
async function runProbes(cluster: Cluster, probes: Probe[]): Promise<Check[]> {
  let answered = 0;
  const refusals: string[] = [];
  const read: Reader = async (doing, fn) => {
    try {
      const found = await fn();
      answered++;
      return found;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 404) {
        answered++;
        return undefined;
      }
      const e = clusterError(err, doing, cluster.server);
      if (code !== 403) throw e;
      refusals.push(e.message);
      throw new Forbidden(e.message);
    }
  };
  const results = await Promise.all(
    probes.map((probe) =>
      probe.run(read).catch((err: unknown): Check[] => {
        if (!(err instanceof Forbidden)) throw err;
        return [
          { name: probe.name, status: "fail", detail: err.message, fix: `needs RBAC: ${probe.needs} (ask a cluster admin)` },
        ];
      }),
    ),
  );
  if (refusals.length && answered === 0)
    throw new CliError(
      `nothing could be checked: ${refusals[0]} (doctor needs get on customresourcedefinitions, namespaces, and configmaps, secrets, services)`,
      EXIT.noPermission,
    );
  return results.flat();
}

function tables(checks: Check[], wide: boolean): Table<never>[] {
  const paint = painter();
  const status = (c: Check) => (c.status === "pass" ? paint.green : c.status === "warn" ? paint.yellow : paint.red)(c.status);
  const main: Table<Check> = {
    columns: [
      { header: "STATUS", value: status },
      { header: "CHECK", value: (c) => c.name },
      { header: "DETAIL", value: (c) => c.detail },
      { header: "FIX", value: (c) => c.fix ?? "", wide: true },
    ],
    rows: checks,
  };
  const toFix = checks.filter((c) => c.fix && c.status !== "pass");
  // Without -o wide the fixes get their own table: a command is too long to share a line with a detail.
  const fixes: Table<Check> = {
    title: "To fix:",
    columns: [
      { header: "CHECK", value: (c) => c.name },
      // One component's missing CRDs share one install command: said once.
      { header: "FIX", value: (c) => (c.fix === toFix[toFix.indexOf(c) - 1]?.fix ? "(same as above)" : (c.fix ?? "")) },
    ],
    rows: toFix,
  };
  return (wide || toFix.length === 0 ? [main] : [main, fixes]) as unknown as Table<never>[];
}

function summary(checks: Check[], namespace: string, release: string | undefined): string {
  const count = (s: Check["status"]) => checks.filter((c) => c.status === s).length;
  const fails = count("fail");
  const target = release ? `release ${release} in namespace ${namespace}` : `namespace ${namespace}`;
  const verdict = fails ? "fix the failures before helm install" : "ready for helm install";
  return `${fails} failed, ${count("warn")} warning(s), ${count("pass")} passed for ${target}: ${verdict}`;
}
