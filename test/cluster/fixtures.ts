// What the chart and Knative's controllers would have put on a cluster, made directly on the test API server:
// Knative Services labelled as the chart labels them, their pods as Knative labels them (with a status as the
// kubelet would report it), Brokers with the address the Broker controller writes, plain Services and pods.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { findBinary, goBinDirs } from "../../scripts/src/processes.ts";
import type { Kubernetes } from "../support/kubernetes.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CRD_ROOT = join(ROOT, "k8s/crds");

/** The vendored Knative (and other) CRDs, Established. */
export async function installCrds(kube: Kubernetes): Promise<void> {
  const files = readdirSync(CRD_ROOT, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".yaml"))
    .map((e) => join(e.parentPath, e.name));
  await kube.kubectl(["apply", "--server-side", ...files.flatMap((f) => ["-f", f])]);
  await kube.kubectl(["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
}

/** A fresh namespace with its default ServiceAccount (no controller makes it here, and pods need it). */
export async function namespace(kube: Kubernetes, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await kube.kubectl(["create", "namespace", name]);
  await kube.kubectl(["create", "serviceaccount", "default", "-n", name]);
  return name;
}

const apply = (kube: Kubernetes, obj: unknown) => kube.kubectl(["apply", "-f", "-"], JSON.stringify(obj));

const patchStatus = (kube: Kubernetes, kind: string, ns: string, name: string, status: unknown) =>
  kube.kubectl(["patch", kind, name, "-n", ns, "--subresource=status", "--type=merge", "-p", JSON.stringify({ status })]);

export const ksvcName = (release: string, service: string) => `${release}-snapmesh-${service}`;

const chartLabels = (release: string) => ({
  "app.kubernetes.io/name": "snapmesh",
  "app.kubernetes.io/part-of": "snapmesh",
  "app.kubernetes.io/instance": release,
});

/** A Knative Service as the chart renders it (names, labels, the service's container and its env). */
export async function knativeService(
  kube: Kubernetes,
  ns: string,
  o: { release: string; service: string; env?: Record<string, string> },
): Promise<string> {
  const name = ksvcName(o.release, o.service);
  await apply(kube, {
    apiVersion: "serving.knative.dev/v1",
    kind: "Service",
    metadata: { name, namespace: ns, labels: { ...chartLabels(o.release), "app.kubernetes.io/component": o.service } },
    spec: {
      template: {
        metadata: { labels: { ...chartLabels(o.release), "app.kubernetes.io/component": o.service } },
        spec: {
          containers: [
            {
              name: o.service,
              image: `snapmesh-${o.service}:test`,
              ports: [{ name: "http1", containerPort: 8080 }],
              env: Object.entries(o.env ?? {}).map(([k, v]) => ({ name: k, value: v })),
            },
          ],
        },
      },
    },
  });
  return name;
}

export type PodState = "ready" | "running" | "pending";

/** A pod of a Knative Service's revision, on `node`: the user container and queue-proxy, as Knative makes it. */
export async function servicePod(
  kube: Kubernetes,
  ns: string,
  o: { release: string; service: string; name: string; node?: string; state?: PodState },
): Promise<void> {
  await pod(kube, ns, {
    name: o.name,
    node: o.node,
    state: o.state ?? "ready",
    labels: {
      ...chartLabels(o.release),
      "app.kubernetes.io/component": o.service,
      "serving.knative.dev/service": ksvcName(o.release, o.service),
      "serving.knative.dev/revision": `${ksvcName(o.release, o.service)}-00001`,
    },
    containers: [
      { name: o.service, image: `snapmesh-${o.service}:test`, ports: [{ name: "user-port", containerPort: 8080 }] },
      { name: "queue-proxy", image: "queue:test", ports: [{ name: "http-queueadm", containerPort: 8022 }] },
    ],
  });
}

/** Any pod, with the status a kubelet would have written for `state`. */
export async function pod(
  kube: Kubernetes,
  ns: string,
  o: {
    name: string;
    node?: string | undefined;
    state: PodState;
    labels: Record<string, string>;
    containers: Array<{ name: string; image: string; ports?: Array<{ name?: string; containerPort: number }> }>;
  },
): Promise<void> {
  await apply(kube, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: o.name, namespace: ns, labels: o.labels },
    spec: { ...(o.node ? { nodeName: o.node } : {}), containers: o.containers },
  });
  if (o.state === "pending") return;
  await patchStatus(kube, "pod", ns, o.name, {
    phase: "Running",
    conditions: [{ type: "Ready", status: o.state === "ready" ? "True" : "False" }],
  });
}

/** A plain Service selecting pods by `selector`, one port. */
export async function service(
  kube: Kubernetes,
  ns: string,
  o: {
    name: string;
    selector: Record<string, string>;
    port: number;
    targetPort?: number | string;
    labels?: Record<string, string>;
  },
): Promise<void> {
  await apply(kube, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: o.name, namespace: ns, ...(o.labels ? { labels: o.labels } : {}) },
    spec: {
      selector: o.selector,
      ports: [{ port: o.port, ...(o.targetPort !== undefined ? { targetPort: o.targetPort } : {}) }],
    },
  });
}

/** The release's Broker; with `url`, the address its controller would have written. */
export async function broker(kube: Kubernetes, ns: string, o: { release: string; url?: string }): Promise<string> {
  const name = `${o.release}-snapmesh-default`;
  await apply(kube, {
    apiVersion: "eventing.knative.dev/v1",
    kind: "Broker",
    metadata: { name, namespace: ns, labels: chartLabels(o.release) },
  });
  if (o.url) await patchStatus(kube, "broker", ns, name, { address: { url: o.url } });
  return name;
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI as a process (its real argument parsing, exit codes and stdout/stderr). */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = startCli(args, env);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ["--import", "tsx", join(ROOT, "scripts/src/cli.ts"), ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

const HELM = findBinary("helm", goBinDirs());

/** helm against the test API server; rejects with helm's stderr. */
export function helm(kube: Kubernetes, args: string[]): Promise<string> {
  if (!HELM) throw new Error("helm is not installed: `go install helm.sh/helm/v3/cmd/helm@v3.16.4` (bash .ci/run does it)");
  return new Promise((resolve, reject) =>
    execFile(HELM, [...args, "--kubeconfig", kube.kubeconfig], { encoding: "utf8", maxBuffer: 64 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`helm ${args.slice(0, 2).join(" ")}: ${stderr || err.message}`)) : resolve(out),
    ),
  );
}
