/*
 * `snapmesh status [--release R] [-n NS] [-o table|wide|json|yaml]`: one report per Helm release of the chart
 * in the namespace (objects grouped by their app.kubernetes.io/instance label). Exit 0 when everything present
 * is Ready, 1 when anything is not (each failing condition's reason and message is listed under problems),
 * 66 when the namespace holds no release (or not the one --release names).
 *
 * -o json|yaml prints:
 * { namespace, ready,
 *   notInstalled: [kind],            // CRDs this cluster does not serve (e.g. "PingSource", "ServiceEntry")
 *   releases: [{ release, ready,
 *     services: [{ name, component, ready, condition, reason, message, since, url, latestCreatedRevision,
 *                  latestReadyRevision, traffic: [{ revision, percent, latestRevision, tag }],
 *                  replicas (null: unknown), minScale, maxScale,
 *                  prewarm: null | { min, previousMin, until, expired } }],
 *     broker: null | { name, ready, condition, reason, message, since, class, address, deadLetterSink },
 *     triggers: [{ name, ready, condition, reason, message, since, broker, type ("*": all), subscriber, subscriberUri,
 *                  deadLetterSink }],
 *     sinkBindings: [{ name, ready, condition, reason, message, since, subject, sink, sinkUri }],
 *     pingSources: [{ name, ready, condition, reason, message, since, schedule, sink, sinkUri }],
 *     egress: { mode: "proxy"|"cilium"|"istio"|"none", ready, objects: [name],
 *               replicas: null | { ready, desired }, detail },
 *     migrations: [{ name, service, state: "succeeded"|"failed"|"running", succeeded, reason, message }],
 *     deadLetters: { count: null, where: "jetstream" | <dead-letter URI>, note },
 *     problems: [{ kind, name, reason, message }] }] }
 * `condition` is the Ready condition's status ("True", "False", "Unknown"); `reason`/`message` are Knative's,
 * or NotReconciled (no controller has written a status) or Outdated (Ready speaks of an older generation).
 * problems[].kind is the object's Kind (Service = the Knative Service; Deployment = the egress proxy; Job).
 * Migration Jobs are Helm hooks deleted once they succeed: an empty list is the usual, healthy case.
 * The dead-letter count is always null: it lives in JetStream, which `status` does not port-forward to.
 */
import type { Cluster } from "./connect.js";
import { CliError, EXIT } from "./errors.js";
import { type OutputFormat, printResult } from "./print.js";
import { type ReleaseStatus, releaseStatus, releasesIn } from "./status-model.js";
import { readSnapshot } from "./status-read.js";
import { releaseTables } from "./status-tables.js";

export async function status(cluster: Cluster, opts: { release?: string | undefined }, format: OutputFormat): Promise<number> {
  const snapshot = await readSnapshot(cluster);
  const found = releasesIn(snapshot);
  const where = `namespace '${cluster.namespace}'`;
  if (found.length === 0) {
    const serving = snapshot.notInstalled.includes("Service") ? "; Knative Serving is not installed in this cluster" : "";
    throw new CliError(`no snapmesh release in ${where} (pass -n NAMESPACE, or see helm list -A${serving})`, EXIT.notFound);
  }
  if (opts.release && !found.includes(opts.release)) {
    throw new CliError(`no snapmesh release '${opts.release}' in ${where} (found: ${found.join(", ")})`, EXIT.notFound);
  }
  const releases: ReleaseStatus[] = found
    .filter((r) => !opts.release || r === opts.release)
    .map((r) => releaseStatus(snapshot, r));
  const ready = releases.every((r) => r.ready);
  printResult(format, { namespace: cluster.namespace, ready, notInstalled: snapshot.notInstalled, releases }, () =>
    releases.flatMap((r) => releaseTables(r, cluster.namespace)),
  );
  return ready ? EXIT.ok : EXIT.notReady;
}
