import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findBinary, goBinDirs } from "../../scripts/src/processes.ts";
import { CRD_ROOT } from "../chart/validate.ts";
import { KUBE_VERSION, type Kubernetes, kubernetes } from "../support/kubernetes.ts";
import { eventually } from "../support/service.ts";
import { type CliRun, cli, helm, installCrds } from "./fixtures.ts";
import { knative } from "./knative-status.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHART = join(ROOT, "charts/snapmesh");
const _HELM = findBinary("helm", goBinDirs());

let kube: Kubernetes;
let controllers: ReturnType<typeof knative>;

beforeAll(async () => {
  kube = await kubernetes();
  await installCrds(kube);
  controllers = knative(kube.kubeconfig);
}, 180_000);

afterAll(async () => {
  await kube?.stop();
});

const helmHere = (args: string[]) => helm(kube, args);

/** The chart installed without hooks (no Job controller here to run the migrations Helm would wait for). */
async function install(namespace: string, release = "photos", sets: string[] = []) {
  await helmHere([
    "install",
    release,
    CHART,
    "-n",
    namespace,
    "--create-namespace",
    "--no-hooks",
    ...sets.flatMap((s) => ["--set", s]),
  ]);
}

/** The migration Jobs Helm's pre-install hook would have created. */
async function migrationJobs(namespace: string, release = "photos") {
  const manifest = await helmHere([
    "template",
    release,
    CHART,
    "-n",
    namespace,
    "--show-only",
    "templates/migrations.yaml",
    "--kube-version",
    KUBE_VERSION,
  ]);
  await kube.kubectl(["apply", "-n", namespace, "-f", "-"], manifest);
}

const snapmesh = (args: string[], kubeconfig = kube.kubeconfig): Promise<CliRun> =>
  cli([...args, "--kubeconfig", kubeconfig], { KUBECONFIG: "" });

const json = async (args: string[]) => {
  const run = await snapmesh([...args, "-o", "json"]);
  expect(run.stderr).toBe("");
  return { code: run.code, out: JSON.parse(run.stdout) };
};

/** The row that starts with `name` (in the table whose header starts with `header`), split into its cells. */
function row(output: string, name: string, header?: string): string[] | undefined {
  let lines = output.split("\n");
  if (header) {
    const start = lines.findIndex((l) => l.startsWith(`${header} `));
    const end = lines.findIndex((l, i) => i > start && l === "");
    lines = lines.slice(start, end);
  }
  return lines.find((l) => l.startsWith(`${name} `))?.split(/ {3,}/);
}

describe("snapmesh status", () => {
  it("all Ready: every service, the Broker, Triggers and SinkBindings, migrations; exit 0", async () => {
    const ns = "status-ready";
    await install(ns);
    await migrationJobs(ns);
    for (const service of ["auth", "social", "share-code", "storage"])
      await controllers.jobFinished(ns, `photos-snapmesh-${service}-migrate`, "Complete");
    const { triggers } = await controllers.releaseReady(ns, "photos", { "photos-snapmesh-auth": 2 });
    expect(triggers).toHaveLength(3);

    // Prewarmed ahead of a peak (as `snapmesh prewarm` leaves it).
    const prewarm = { min: 3, previousMin: "0", until: "2999-01-01T00:00:00Z" };
    await kube.kubectl([
      "annotate",
      "ksvc",
      "photos-snapmesh-social",
      "-n",
      ns,
      `snapmesh.dev/prewarm=${JSON.stringify(prewarm)}`,
    ]);

    const [table, wide, yaml, { code, out }] = await Promise.all([
      snapmesh(["status", "-n", ns]),
      snapmesh(["status", "-n", ns, "-o", "wide"]),
      snapmesh(["status", "-n", ns, "-o", "yaml"]),
      json(["status", "-n", ns]),
    ]);
    expect(table.stderr).toBe("");
    expect(table.code).toBe(0);
    expect(table.stdout).toContain(`Release photos in namespace ${ns}: Ready`);
    // KSVC READY REASON REVISION TRAFFIC REPLICAS MIN MAX
    expect(row(table.stdout, "photos-snapmesh-auth")).toEqual([
      "photos-snapmesh-auth",
      "True",
      "-",
      "00001",
      "00001=100%",
      "2",
      "0",
      "20",
    ]);
    expect(row(table.stdout, "photos-snapmesh-social")).toEqual([
      "photos-snapmesh-social",
      "True",
      "-",
      "00001",
      "00001=100%",
      "0",
      "0",
      "50",
      "min 3 until 2999-01-01T00:00:00Z",
    ]);
    expect(row(table.stdout, "photos-snapmesh-events")).toEqual([
      "photos-snapmesh-events",
      "True",
      "-",
      "MTChannelBasedBroker",
      "-",
    ]);
    expect(row(table.stdout, "photos-snapmesh-social-storage-object-created")).toEqual([
      "photos-snapmesh-social-storage-object-created",
      "True",
      "-",
      "snapmesh.storage.object.created",
      "ksvc/photos-snapmesh-social",
      "ksvc/photos-snapmesh-social/dead-letters",
    ]);
    expect(row(table.stdout, "photos-snapmesh-storage", "SINKBINDING")).toContain(
      `http://broker-ingress.knative-eventing.svc.cluster.local/${ns}/photos-snapmesh-events`,
    );
    expect(row(table.stdout, "none")).toEqual(["none", "True", "no egress objects: outbound calls leave from any node"]);
    expect(row(table.stdout, "photos-snapmesh-auth-migrate")).toEqual(["photos-snapmesh-auth-migrate", "auth", "succeeded", "-"]);
    expect(row(table.stdout, "n/a")?.[1]).toMatch(/JetStream dead-letter stream.*snapmesh dlq list --cluster/);
    expect(table.stdout).not.toContain("Problems:");

    expect(row(wide.stdout, "photos-snapmesh-auth")).toContain(`http://photos-snapmesh-auth.${ns}.svc.cluster.local`);

    expect(code).toBe(0);
    expect(out).toMatchObject({ namespace: ns, ready: true, notInstalled: [] });
    expect(out.releases).toHaveLength(1);
    const [photos] = out.releases;
    expect(Object.keys(photos)).toEqual([
      "release",
      "ready",
      "services",
      "broker",
      "triggers",
      "sinkBindings",
      "pingSources",
      "egress",
      "migrations",
      "deadLetters",
      "problems",
    ]);
    expect(photos).toMatchObject({ release: "photos", ready: true, problems: [], pingSources: [] });
    expect(photos.services.map((s: { component: string }) => s.component)).toEqual(["auth", "share-code", "social", "storage"]);
    expect(photos.services[0]).toEqual({
      name: "photos-snapmesh-auth",
      component: "auth",
      ready: true,
      condition: "True",
      reason: null,
      message: null,
      since: "2025-01-01T00:00:00Z",
      url: `http://photos-snapmesh-auth.${ns}.svc.cluster.local`,
      latestCreatedRevision: "photos-snapmesh-auth-00001",
      latestReadyRevision: "photos-snapmesh-auth-00001",
      traffic: [{ revision: "photos-snapmesh-auth-00001", percent: 100, latestRevision: true, tag: null }],
      replicas: 2,
      minScale: 0,
      maxScale: 20,
      prewarm: null,
    });
    expect(photos.services[2]).toMatchObject({ component: "social", prewarm: { ...prewarm, expired: false } });
    expect(photos.broker).toMatchObject({ name: "photos-snapmesh-events", ready: true, class: "MTChannelBasedBroker" });
    expect(photos.triggers).toHaveLength(3);
    expect(photos.sinkBindings).toHaveLength(4);
    expect(photos.sinkBindings[0]).toMatchObject({
      ready: true,
      subject: "ksvc/photos-snapmesh-auth",
      sinkUri: `http://broker-ingress.knative-eventing.svc.cluster.local/${ns}/photos-snapmesh-events`,
    });
    expect(photos.egress).toEqual({
      mode: "none",
      ready: true,
      objects: [],
      replicas: null,
      detail: "no egress objects: outbound calls leave from any node",
    });
    expect(photos.migrations).toHaveLength(4);
    expect(photos.migrations.every((m: { succeeded: boolean }) => m.succeeded)).toBe(true);
    expect(photos.deadLetters).toMatchObject({ count: null, where: "jetstream" });

    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(/^namespace: status-ready\nready: true\n/);
  }, 120_000);

  it("a Trigger whose dependency is missing: its reason and message, exit 1", async () => {
    const ns = "status-trigger";
    await install(ns);
    const { triggers } = await controllers.releaseReady(ns, "photos");
    const trigger = triggers.find((t) => t.metadata.name === "photos-snapmesh-share-code-storage-object-deleted")!;
    const message = 'Dependency does not exist: pingsources.sources.knative.dev "photos-nightly" not found';
    await controllers.trigger(ns, trigger, [
      { type: "DependencyReady", status: "False", reason: "DependencyDoesNotExist", message },
    ]);

    const [table, { code, out }] = await Promise.all([snapmesh(["status", "-n", ns]), json(["status", "-n", ns])]);
    expect(table.code).toBe(1);
    expect(table.stderr).toBe("");
    expect(table.stdout).toContain(`Release photos in namespace ${ns}: NOT READY (1 problem(s))`);
    expect(row(table.stdout, trigger.metadata.name)?.slice(0, 3)).toEqual([
      trigger.metadata.name,
      "False",
      "DependencyDoesNotExist",
    ]);
    expect(table.stdout).toContain("Problems:");
    expect(row(table.stdout, "Trigger")).toEqual(["Trigger", trigger.metadata.name, "DependencyDoesNotExist", message]);

    expect(code).toBe(1);
    expect(out.ready).toBe(false);
    expect(out.releases[0].problems).toEqual([
      { kind: "Trigger", name: trigger.metadata.name, reason: "DependencyDoesNotExist", message },
    ]);
    expect(out.releases[0].triggers.find((t: { name: string }) => t.name === trigger.metadata.name)).toMatchObject({
      ready: false,
      condition: "False",
      reason: "DependencyDoesNotExist",
      message,
    });
  }, 120_000);

  it("a Service whose new Revision failed, and a failed migration: each with reason and message, exit 1", async () => {
    const ns = "status-revision-failed";
    await install(ns);
    await migrationJobs(ns);
    await controllers.releaseReady(ns, "photos", { "photos-snapmesh-storage": 1 });
    for (const service of ["auth", "social", "share-code"])
      await controllers.jobFinished(ns, `photos-snapmesh-${service}-migrate`, "Complete");
    await controllers.jobFinished(ns, "photos-snapmesh-storage-migrate", "Failed");
    const message =
      'Revision "photos-snapmesh-storage-00002" failed with message: Container failed with: relation "storage.objects" does not exist.';
    await controllers.serviceRevisionFailed(ns, "photos-snapmesh-storage", message);

    const [table, { code, out }] = await Promise.all([snapmesh(["status", "-n", ns]), json(["status", "-n", ns])]);
    expect(table.code).toBe(1);
    expect(table.stdout).toContain("NOT READY (2 problem(s))");
    // The new revision was created but never became ready; traffic stays on the old one.
    expect(row(table.stdout, "photos-snapmesh-storage", "KSVC")).toEqual([
      "photos-snapmesh-storage",
      "False",
      "RevisionFailed",
      "00002/00001",
      "00001=100%",
      "1",
      "0",
      "20",
    ]);
    expect(row(table.stdout, "Service")).toEqual(["Service", "photos-snapmesh-storage", "RevisionFailed", message]);
    expect(row(table.stdout, "Job")).toEqual([
      "Job",
      "photos-snapmesh-storage-migrate",
      "BackoffLimitExceeded",
      "Job has reached the specified backoff limit",
    ]);

    expect(code).toBe(1);
    expect(out.releases[0].problems).toEqual([
      { kind: "Service", name: "photos-snapmesh-storage", reason: "RevisionFailed", message },
      {
        kind: "Job",
        name: "photos-snapmesh-storage-migrate",
        reason: "BackoffLimitExceeded",
        message: "Job has reached the specified backoff limit",
      },
    ]);
    expect(out.releases[0].services.find((s: { component: string }) => s.component === "storage")).toMatchObject({
      ready: false,
      latestCreatedRevision: "photos-snapmesh-storage-00002",
      latestReadyRevision: "photos-snapmesh-storage-00001",
      replicas: 1,
    });
    expect(out.releases[0].migrations.find((m: { service: string }) => m.service === "storage")).toMatchObject({
      state: "failed",
      succeeded: false,
    });
  }, 120_000);

  it("one report per release, --release picks one; egress inferred from what each mode creates", async () => {
    const ns = "status-egress";
    await install(ns, "photos", ["egress.mode=proxy", "egress.allowHosts={api.weixin.qq.com}"]);
    await install(ns, "pics", [
      "egress.mode=cilium",
      "egress.cilium.egressIP=203.0.113.10",
      "egress.cilium.nodeSelector.egress=true",
    ]);
    await install(ns, "snaps", ["egress.mode=istio", "egress.allowHosts={api.weixin.qq.com,legacy.internal.example:8443}"]);
    for (const release of ["photos", "pics", "snaps"]) await controllers.releaseReady(ns, release);

    // Nothing runs the proxy's pods yet.
    const [before, healthy] = await Promise.all([json(["status", "-n", ns]), json(["status", "-n", ns, "--release", "pics"])]);
    expect(before.code).toBe(1);
    expect(before.out.releases.map((r: { release: string; ready: boolean }) => [r.release, r.ready])).toEqual([
      ["photos", false],
      ["pics", true],
      ["snaps", true],
    ]);
    const egress = Object.fromEntries(
      before.out.releases.map((r: { release: string; egress: unknown }) => [r.release, r.egress]),
    );
    expect(egress.photos).toMatchObject({
      mode: "proxy",
      ready: false,
      objects: ["photos-snapmesh-egress-proxy"],
      replicas: { ready: 0, desired: 2 },
    });
    expect(before.out.releases[0].problems).toEqual([
      {
        kind: "Deployment",
        name: "photos-snapmesh-egress-proxy",
        reason: "EgressNotReady",
        message: "0/2 proxy replicas ready (deployment/photos-snapmesh-egress-proxy)",
      },
    ]);
    expect(egress.pics).toMatchObject({ mode: "cilium", ready: true, objects: ["pics-snapmesh-egress"] });
    expect(egress.pics.detail).toContain("203.0.113.10");
    expect(egress.snaps).toMatchObject({
      mode: "istio",
      ready: true,
      objects: ["snaps-snapmesh-egress-0", "snaps-snapmesh-egress-1", "snaps-snapmesh-egress-s3"],
    });
    expect(egress.snaps.detail).toContain("legacy.internal.example");

    expect(healthy.code).toBe(0);
    expect(healthy.out.releases.map((r: { release: string }) => r.release)).toEqual(["pics"]);

    await controllers.deploymentReady(ns, "photos-snapmesh-egress-proxy", 2);
    const table = await snapmesh(["status", "-n", ns, "--release", "photos"]);
    expect(table.code).toBe(0);
    expect(table.stdout).not.toContain("Release pics");
    expect(row(table.stdout, "proxy")).toEqual([
      "proxy",
      "True",
      "2/2 proxy replicas ready (deployment/photos-snapmesh-egress-proxy)",
    ]);
  }, 120_000);

  it("a namespace without a release, and an unknown --release: one line, exit 66, nothing on stdout", async () => {
    const ns = "status-unknown";
    await install(ns);

    const [empty, unknown] = await Promise.all([
      snapmesh(["status", "-n", "nowhere"]),
      snapmesh(["status", "-n", ns, "--release", "holiday", "-o", "json"]),
    ]);
    expect(empty.code).toBe(66);
    expect(empty.stdout).toBe("");
    expect(empty.stderr).toBe("snapmesh: no snapmesh release in namespace 'nowhere' (pass -n NAMESPACE, or see helm list -A)\n");

    expect(unknown.code).toBe(66);
    expect(unknown.stdout).toBe("");
    expect(unknown.stderr).toBe(`snapmesh: no snapmesh release 'holiday' in namespace '${ns}' (found: photos)\n`);
  }, 60_000);

  it("before any controller reports, and after an upgrade the controller has not seen yet: not Ready", async () => {
    const ns = "status-fresh";
    await install(ns);
    const fresh = await json(["status", "-n", ns]);
    expect(fresh.code).toBe(1);
    // 4 services, the Broker, 3 Triggers, 4 SinkBindings.
    expect(fresh.out.releases[0].problems).toHaveLength(12);
    expect(new Set(fresh.out.releases[0].problems.map((p: { reason: string }) => p.reason))).toEqual(new Set(["NotReconciled"]));
    expect(fresh.out.releases[0].services[0]).toMatchObject({ ready: false, condition: "Unknown", replicas: null, minScale: 0 });

    await controllers.releaseReady(ns, "photos");
    await helmHere(["upgrade", "photos", CHART, "-n", ns, "--no-hooks", "--set", "services.social.minScale=1"]);
    const upgraded = await json(["status", "-n", ns]);
    expect(upgraded.code).toBe(1);
    expect(upgraded.out.releases[0].problems).toEqual([
      {
        kind: "Service",
        name: "photos-snapmesh-social",
        reason: "Outdated",
        message: "the controller has not reconciled generation 2 yet (Ready speaks of generation 1)",
      },
    ]);
    expect(upgraded.out.releases[0].services[2]).toMatchObject({ component: "social", minScale: 1 });
  }, 120_000);

  it("CRDs this cluster lacks (Istio, Cilium, PingSource) are 'not installed', never an error", async () => {
    const crds = {
      "serviceentries.networking.istio.io": "istio/serviceentries.yaml",
      "ciliumegressgatewaypolicies.cilium.io": "cilium/ciliumegressgatewaypolicies.yaml",
      "pingsources.sources.knative.dev": "knative-eventing/pingsource.yaml",
    };
    const ns = "status-no-crds";
    await install(ns);
    await controllers.releaseReady(ns, "photos");
    await kube.kubectl(["delete", "crd", ...Object.keys(crds)]);
    try {
      await eventually(
        async () => (await kube.kubectl(["api-resources", "-o", "name"])).split("\n").every((r) => !(r in crds)),
        "the API server to stop serving the deleted CRDs",
      );
      const { code, out } = await json(["status", "-n", ns]);
      expect(code).toBe(0);
      expect(out.notInstalled).toEqual(["CiliumEgressGatewayPolicy", "PingSource", "ServiceEntry"]);
      expect(out.releases[0]).toMatchObject({ ready: true, pingSources: [], problems: [] });
      expect(out.releases[0].egress).toMatchObject({
        mode: "none",
        ready: true,
        detail:
          "no egress objects: outbound calls leave from any node (CiliumEgressGatewayPolicy: not installed; ServiceEntry: not installed)",
      });
    } finally {
      await kube.kubectl(["apply", "--server-side", ...Object.values(crds).flatMap((f) => ["-f", join(CRD_ROOT, f)])]);
      await kube.kubectl(["wait", "--for=condition=Established", "crd", ...Object.keys(crds), "--timeout=60s"]);
    }
  }, 120_000);

  it("credentials without rights: one line naming RBAC, exit 77", async () => {
    if (!kube.noRightsKubeconfig) return; // an outside cluster (KUBECONFIG) has no such user
    const run = await snapmesh(["status", "-n", "default"], kube.noRightsKubeconfig);
    expect(run.code).toBe(77);
    expect(run.stdout).toBe("");
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(/^snapmesh: listing \w+s in namespace default: forbidden by RBAC: /);
  }, 60_000);
});
