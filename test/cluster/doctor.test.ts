import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { stringify } from "yaml";
import { connect } from "../../scripts/src/cluster/connect.ts";
import { type DoctorResult, doctor as runDoctor } from "../../scripts/src/cluster/doctor.ts";
import { eventually, scratchDir } from "../support/index.ts";
import { type Kubernetes, kubernetes } from "../support/kubernetes.ts";
import { type CliRun, cli } from "./fixtures.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CRDS = process.env.SNAPMESH_CRDS ?? join(ROOT, "k8s/crds");
const crdFiles = (...dirs: string[]) =>
  dirs.flatMap((d) =>
    readdirSync(join(CRDS, d))
      .filter((f) => f.endsWith(".yaml"))
      .map((f) => join(CRDS, d, f)),
  );
const SERVING_CRDS = crdFiles("knative-serving");
const EVENTING_CRDS = crdFiles("knative-eventing", "eventing-natss");
/** Never printed by doctor: it only reads whether a key is there. */
const SECRET_VALUE = "postgres://user:do-not-print-me@db:5432/snapmesh";
const SERVICES = ["auth", "social", "share-code", "storage"];

let kube: Kubernetes;
let scratch: string;

beforeAll(async () => {
  kube = await kubernetes();
  scratch = scratchDir("doctor");
}, 120_000);

afterAll(async () => {
  await kube?.stop();
});

const doctor = (args: string[], kubeconfig = kube.kubeconfig): Promise<CliRun> =>
  cli(["doctor", "--kubeconfig", kubeconfig, ...args]);

/** doctor -o json in this process (a CLI process costs seconds): its exit code and what it printed. */
async function doctorJson(ns: string, values: string, kubeconfig = kube.kubeconfig) {
  let stdout = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  let code: number;
  try {
    code = await runDoctor(connect({ kubeconfig, namespace: ns }), { valuesFile: values }, "json");
  } finally {
    write.mockRestore();
  }
  const result = JSON.parse(stdout) as DoctorResult;
  const check = (name: string) => result.checks.find((c) => c.name === name);
  return { code, stdout, result, check };
}

function valuesFile(name: string, values: Record<string, unknown>): string {
  const file = join(scratch, `${name}.yaml`);
  writeFileSync(file, stringify(values));
  return file;
}

const apply = (objects: object[]) =>
  kube.kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));

async function applyCrds(files: string[]) {
  const f = files.flatMap((file) => ["-f", file]);
  await kube.kubectl(["apply", "--server-side", ...f]);
  await kube.kubectl(["wait", "--for=condition=Established", "--timeout=60s", ...f]);
}

/** Knative's ConfigMaps as a fresh install has them (the tests change them from there). */
async function knativeConfig(features: Record<string, string> = {}, autoscaler: Record<string, string> = {}) {
  const cm = (namespace: string, name: string, data: Record<string, string>) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace },
    data,
  });
  await apply([
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "knative-serving" } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "knative-eventing" } },
  ]);
  await apply([
    cm("knative-serving", "config-features", features),
    cm("knative-serving", "config-autoscaler", autoscaler),
    cm("knative-eventing", "config-features", {}),
  ]);
}

/** A namespace with restricted Pod Security, the chart's Secrets (minus `drop`) and a NATS Service. */
async function readyNamespace(ns: string, drop: { secret: string; key: string } | undefined = undefined): Promise<string> {
  const secret = (name: string, data: Record<string, string>) => {
    if (drop?.secret === name) delete data[drop.key];
    return { apiVersion: "v1", kind: "Secret", metadata: { name, namespace: ns }, stringData: data };
  };
  const each = (f: (s: string) => [string, string]) => Object.fromEntries(SERVICES.map(f));
  await apply([
    {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: ns, labels: { "pod-security.kubernetes.io/enforce": "restricted" } },
    },
  ]);
  await apply([
    secret(
      "snapmesh-database",
      each((s) => [s, SECRET_VALUE]),
    ),
    secret("snapmesh-auth-keys", { "keys.json": '{"keys":[{"kty":"EC"}]}' }),
    secret("snapmesh-storage-keys", { keys: "k1:0123456789abcdef0123456789abcdef" }),
    secret("snapmesh-event-keys", { ...each((s) => [`${s}.json`, '{"keys":[]}']), "trust.json": "{}" }),
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "nats", namespace: ns },
      spec: { selector: { app: "nats" }, ports: [{ name: "client", port: 4222 }] },
    },
  ]);
  return valuesFile(ns, natsHere(ns));
}

/** The services dial NATS in the test's own namespace. */
function natsHere(ns: string) {
  return { nats: { url: `nats://nats.${ns}.svc.cluster.local:4222` } };
}

const crdChecks = (result: DoctorResult) => result.checks.filter((c) => c.name.startsWith("crd "));

describe("snapmesh doctor", () => {
  it("names each missing Eventing CRD with its fix, and exits 1", async () => {
    await kube.kubectl(["delete", "--ignore-not-found", "--wait", ...EVENTING_CRDS.flatMap((f) => ["-f", f])]);
    await applyCrds(SERVING_CRDS);
    await knativeConfig();
    const ns = "doctor-no-eventing";
    const values = await readyNamespace(ns);

    const { code, result } = await doctorJson(ns, values);
    expect(code).toBe(1);
    const missing = (crd: string, install: string) => ({
      name: `crd ${crd}`,
      status: "fail",
      detail: `not installed (the chart needs ${crd.startsWith("nats") ? "v1alpha1" : "v1"})`,
      fix: expect.stringContaining(install),
    });
    expect(crdChecks(result)).toEqual([
      { name: "crd services.serving.knative.dev", status: "pass", detail: "v1 served" },
      missing("brokers.eventing.knative.dev", "eventing-crds.yaml"),
      missing("triggers.eventing.knative.dev", "eventing-crds.yaml"),
      missing("sinkbindings.sources.knative.dev", "eventing-crds.yaml"),
      missing(
        "natsjetstreamchannels.messaging.knative.dev",
        "eventing-natss/releases/download/knative-v1.22.0/eventing-jsm.yaml",
      ),
    ]);
    // Everything else is in place: the CRDs are the only failures.
    expect(result.checks.filter((c) => c.status !== "pass").map((c) => c.name)).toEqual(
      crdChecks(result)
        .slice(1)
        .map((c) => c.name),
    );

    // Without Eventing the chart renders no Broker, Triggers or SinkBindings, and doctor asks for none.
    const off = await doctorJson(ns, valuesFile(`${ns}-off`, { ...natsHere(ns), eventing: { enabled: false } }));
    expect(off.code).toBe(0);
    expect(crdChecks(off.result).map((c) => c.name)).toEqual(["crd services.serving.knative.dev"]);
    expect(off.check("knative feature delivery-timeout")).toBeUndefined();
  }, 120_000);

  it("passes every check on a cluster ready for the chart, and exits 0", async () => {
    await applyCrds([...SERVING_CRDS, ...EVENTING_CRDS]);
    await knativeConfig({}, { "max-scale-limit": "100" });
    const ns = "doctor-ready";
    const values = await readyNamespace(ns);

    const { code, result } = await doctorJson(ns, values);
    expect(result.namespace).toBe(ns);
    expect(result.checks.filter((c) => c.status !== "pass")).toEqual([]);
    expect(result.checks.map((c) => c.name)).toEqual([
      "crd services.serving.knative.dev",
      "crd brokers.eventing.knative.dev",
      "crd triggers.eventing.knative.dev",
      "crd sinkbindings.sources.knative.dev",
      "crd natsjetstreamchannels.messaging.knative.dev",
      "knative feature kubernetes.podspec-volumes-emptydir",
      "knative max-scale-limit",
      "knative scale to zero",
      "knative feature delivery-timeout",
      "namespace",
      "pod security",
      "secret snapmesh-database",
      "secret snapmesh-event-keys",
      "secret snapmesh-auth-keys",
      "secret snapmesh-storage-keys",
      `nats nats.${ns}.svc.cluster.local:4222`,
    ]);
    expect(code).toBe(0);

    const human = await doctor(["-n", ns, "-f", values]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^STATUS +CHECK +DETAIL\n/);
    expect(human.stdout).not.toContain("To fix:");
    expect(human.stdout).toContain(`0 failed, 0 warning(s), 16 passed for namespace ${ns}: ready for helm install`);
  }, 120_000);

  it("fails a Secret that lacks a key, naming the Secret and the key, and never prints a value", async () => {
    await applyCrds([...SERVING_CRDS, ...EVENTING_CRDS]);
    await knativeConfig();
    const ns = "doctor-missing-key";
    const values = await readyNamespace(ns, { secret: "snapmesh-database", key: "social" });

    const { code, result, check, stdout } = await doctorJson(ns, values);
    expect(code).toBe(1);
    expect(check("secret snapmesh-database")).toEqual({
      name: "secret snapmesh-database",
      status: "fail",
      detail: "missing key social (PostgreSQL URL per service)",
      fix: `kubectl patch secret snapmesh-database -n ${ns} --type merge -p '{"stringData":{"social":"…"}}'`,
    });
    expect(result.checks.filter((c) => c.status === "fail").map((c) => c.name)).toEqual(["secret snapmesh-database"]);
    expect(stdout).not.toContain("do-not-print-me");

    const human = await doctor(["-n", ns, "-f", values]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/fail +secret snapmesh-database +missing key social/);
    expect(human.stdout).toMatch(/To fix:\nCHECK +FIX\nsecret snapmesh-database +kubectl patch secret snapmesh-database/);
    expect(human.stdout).not.toContain("do-not-print-me");
  }, 120_000);

  it("reports Knative flags and limits that would refuse the chart, and a missing ConfigMap, with their fixes", async () => {
    await applyCrds([...SERVING_CRDS, ...EVENTING_CRDS]);
    const ns = "doctor-knative-config";
    const values = await readyNamespace(ns);

    await knativeConfig({ "kubernetes.podspec-volumes-emptydir": "Disabled" }, { "max-scale-limit": "30" });
    const refused = await doctorJson(ns, values);
    expect(refused.code).toBe(1);
    expect(refused.check("knative feature kubernetes.podspec-volumes-emptydir")).toMatchObject({
      status: "fail",
      fix: `kubectl patch configmap config-features -n knative-serving --type merge -p '{"data":{"kubernetes.podspec-volumes-emptydir":"enabled"}}'`,
    });
    // social's default maxScale is 50; the others' 20.
    expect(refused.check("knative max-scale-limit")).toMatchObject({
      status: "fail",
      detail: "max-scale-limit is 30; Knative refuses services.social.maxScale=50",
      fix: expect.stringContaining("--set services.social.maxScale=30"),
    });

    await kube.kubectl(["delete", "configmap", "config-features", "-n", "knative-serving"]);
    const absent = await doctorJson(ns, values);
    expect(absent.code).toBe(1);
    expect(absent.check("knative feature kubernetes.podspec-volumes-emptydir")).toMatchObject({
      status: "fail",
      detail: "ConfigMap knative-serving/config-features not found: is Knative Serving installed?",
      fix: expect.stringContaining("install-serving-with-yaml"),
    });
  }, 120_000);

  it("RBAC: one line and exit 77 when nothing may be read; each forbidden check named when some may", async () => {
    const nobody = kube.noRightsKubeconfig;
    if (!nobody) return; // an outside cluster (KUBECONFIG) has no user without rights to borrow
    await applyCrds([...SERVING_CRDS, ...EVENTING_CRDS]);
    await knativeConfig();
    const ns = "doctor-rbac";
    const values = await readyNamespace(ns);

    const refused = await doctor(["-n", ns, "-o", "json", "-f", values], nobody);
    expect(refused.code).toBe(77);
    expect(refused.stdout).toBe("");
    const lines = refused.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^snapmesh: nothing could be checked: reading .*: forbidden by RBAC: .*snapmesh-nobody/);

    // A namespace admin's view: the Secrets and NATS are checked, what needs cluster-wide rights is named.
    await apply([
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: "doctor-reader", namespace: ns },
        rules: [{ apiGroups: [""], resources: ["secrets", "services"], verbs: ["get"] }],
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: "doctor-reader", namespace: ns },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "doctor-reader" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "snapmesh-nobody" }],
      },
    ]);
    await eventually(
      async () =>
        (
          await kube.kubectl(["auth", "can-i", "get", "secrets", "-n", ns, "--as", "snapmesh-nobody"]).catch(() => "no")
        ).trim() === "yes",
      "the RoleBinding to take effect",
    );
    const partial = await doctorJson(ns, values, nobody);
    expect(partial.code).toBe(1);
    expect(partial.check("crd brokers.eventing.knative.dev")).toMatchObject({
      status: "fail",
      detail: expect.stringMatching(/forbidden by RBAC/),
      fix: "needs RBAC: get customresourcedefinitions.apiextensions.k8s.io (cluster-wide) (ask a cluster admin)",
    });
    expect(partial.check("namespace")).toMatchObject({ status: "fail", fix: expect.stringContaining("get namespaces") });
    expect(partial.check("secret snapmesh-database")).toMatchObject({ status: "pass" });
    expect(partial.check(`nats nats.${ns}.svc.cluster.local:4222`)).toMatchObject({ status: "pass" });
  }, 120_000);
});
