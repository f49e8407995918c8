// The chart on a real Kubernetes API server: every value set installed into a namespace that enforces
// restricted Pod Security, every workload's pod admitted (server-side dry-run), upgraded, uninstalled.
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findBinary, goBinDirs } from "../../scripts/src/processes.ts";
import { KUBE_VERSION, type Kubernetes, kubernetes } from "../support/kubernetes.ts";
import { MATRIX } from "./matrix.ts";
import { CRD_ROOT, type K8sObject, parseManifests } from "./validate.ts";

const CHART = fileURLToPath(new URL("../../charts/snapmesh", import.meta.url));
const HELM = findBinary("helm", goBinDirs());

let kube: Kubernetes;

beforeAll(async () => {
  kube = await kubernetes();
  const files = readdirSync(CRD_ROOT, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".yaml"))
    .map((e) => join(e.parentPath, e.name));
  await kube.kubectl(["apply", "--server-side", ...files.flatMap((f) => ["-f", f])]);
  await kube.kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
}, 180_000);

afterAll(async () => {
  await kube?.stop();
});

function helm(args: string[]): Promise<string> {
  if (!HELM) throw new Error("helm is not installed: `go install helm.sh/helm/v3/cmd/helm@v3.16.4` (bash .ci/run does it)");
  return new Promise((resolve, reject) =>
    execFile(HELM, [...args, "--kubeconfig", kube.kubeconfig], { encoding: "utf8", maxBuffer: 64 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`helm ${args.slice(0, 2).join(" ")}: ${stderr || err.message}`)) : resolve(out),
    ),
  );
}

const setArgs = (sets: string[]) => sets.flatMap((s) => ["--set", s]);

/** A namespace as a careful operator makes it: restricted Pod Security enforced, its default ServiceAccount present. */
async function restrictedNamespace(name: string): Promise<void> {
  await kube.kubectl(["create", "namespace", name]);
  await kube.kubectl(["label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted"]);
  // No controller manager runs here, so nothing makes the default ServiceAccount.
  await kube.kubectl(["create", "serviceaccount", "default", "-n", name]);
}

type Container = {
  ports?: Array<{ containerPort: number }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  [k: string]: unknown;
};
type Probe = { httpGet?: { path: string; port?: number }; [k: string]: unknown };
type PodTemplate = { spec?: { containers?: Container[]; [k: string]: unknown } };
type Workload = { template?: PodTemplate; jobTemplate?: { spec?: { template?: PodTemplate } } };

/** The pod a workload would run: Knative Services, Deployments, Jobs and CronJobs. */
function podOf(obj: K8sObject): { metadata: { name: string }; spec: Record<string, unknown> } | undefined {
  if (obj.kind === "Pod") return { metadata: { name: obj.metadata.name }, spec: obj.spec as Record<string, unknown> };
  const spec = obj.spec as Workload | undefined;
  const workload = obj.kind === "CronJob" || ["Deployment", "Job"].includes(obj.kind) || obj.apiVersion.startsWith("serving");
  const template = obj.kind === "CronJob" ? spec?.jobTemplate?.spec?.template : spec?.template;
  if (!workload || !template?.spec?.containers) return undefined;
  const {
    containerConcurrency: _c,
    timeoutSeconds: _t,
    responseStartTimeoutSeconds: _r,
    idleTimeoutSeconds: _i,
    ...podSpec
  } = template.spec;
  // Knative fills in the probe port (the container port); a plain Pod must name it.
  const containers = template.spec.containers.map((c) => {
    const port = c.ports?.[0]?.containerPort ?? 8080;
    const probe = (p: Probe | undefined) => (p?.httpGet && !p.httpGet.port ? { ...p, httpGet: { ...p.httpGet, port } } : p);
    return { ...c, readinessProbe: probe(c.readinessProbe), livenessProbe: probe(c.livenessProbe) };
  });
  return { metadata: { name: `${obj.kind.toLowerCase()}-${obj.metadata.name}`.slice(0, 63) }, spec: { ...podSpec, containers } };
}

describe("the chart on a real API server (restricted Pod Security)", () => {
  it.each(MATRIX.map(([name, sets, release], i) => [name, sets, release ?? "photos", i] as const))(
    "installs, admits every pod, upgrades and uninstalls: %s",
    async (_name, sets, release, index) => {
      const ns = `matrix-${index}`;
      await restrictedNamespace(ns);
      const common = [CHART, "-n", ns, ...setArgs(sets)];
      await helm(["install", release, ...common, "--no-hooks", "--timeout", "60s"]);

      // Everything the release rendered is on the server.
      const manifest = await helm(["get", "manifest", release, "-n", ns]);
      const installed = parseManifests(manifest);
      expect(installed.length).toBeGreaterThan(4);
      const names = (await kube.kubectl(["get", "-f", "-", "-n", ns, "-o", "name"], manifest)).trim().split("\n");
      expect(names).toHaveLength(installed.length);

      // Every pod the chart's workloads would start (hooks included) passes restricted Pod Security.
      const rendered = parseManifests(await helm(["template", release, ...common, "--kube-version", KUBE_VERSION]));
      const pods = rendered.map(podOf).filter((p) => p !== undefined);
      expect(pods.length).toBeGreaterThanOrEqual(rendered.filter((o) => o.apiVersion.startsWith("serving")).length);
      for (const pod of pods) {
        const out = await kube.kubectl(
          ["create", "--dry-run=server", "-n", ns, "-f", "-", "-o", "name"],
          JSON.stringify({ apiVersion: "v1", kind: "Pod", ...pod }),
        );
        expect(out.trim(), String(pod.metadata.name)).toBe(`pod/${pod.metadata.name}`);
      }

      await helm(["upgrade", release, ...common, "--no-hooks", "--set", "services.social.minScale=1", "--timeout", "60s"]);
      const social = JSON.parse(
        await kube.kubectl(["get", "ksvc", "-n", ns, "-l", "app.kubernetes.io/component=social", "-o", "json"]),
      ) as { items: Array<{ spec: { template: { metadata: { annotations: Record<string, string> } } } }> };
      expect(social.items[0]!.spec.template.metadata.annotations["autoscaling.knative.dev/min-scale"]).toBe("1");

      await helm(["uninstall", release, "-n", ns, "--wait", "--timeout", "60s"]);
      const left = await kube.kubectl(["get", "-f", "-", "-n", ns, "-o", "name", "--ignore-not-found"], manifest);
      expect(left.trim()).toBe("");
    },
    120_000,
  );

  it("refuses to change the Broker's class on upgrade, with a clear message, before touching anything", async () => {
    const ns = "broker-class";
    await restrictedNamespace(ns);
    await helm(["install", "photos", CHART, "-n", ns, "--no-hooks"]);
    await expect(
      helm(["upgrade", "photos", CHART, "-n", ns, "--no-hooks", "--set", "eventing.broker.class=natss"]),
    ).rejects.toThrow(/Knative cannot change a Broker's class; keep eventing.broker.class=channel/);
    const broker = JSON.parse(await kube.kubectl(["get", "broker", "-n", ns, "-o", "json"])) as {
      items: Array<{ metadata: { annotations: Record<string, string> } }>;
    };
    expect(broker.items[0]!.metadata.annotations["eventing.knative.dev/broker.class"]).toBe("MTChannelBasedBroker");
  }, 120_000);
});
