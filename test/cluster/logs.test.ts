// `snapmesh logs` against a real API server, which reads the logs from a (fake) kubelet as it would on a cluster.
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { humanLog } from "../../scripts/src/output.ts";
import { eventually } from "../support/index.ts";
import { type Kubernetes, kubernetes } from "../support/kubernetes.ts";
import { type FakeKubelet, fakeKubelet } from "./fake-kubelet.ts";
import { cli, installCrds, knativeService, namespace, servicePod, startCli } from "./fixtures.ts";

let kube: Kubernetes;
let kubelet: FakeKubelet;

beforeAll(async () => {
  kube = await kubernetes();
  await installCrds(kube);
  kubelet = await fakeKubelet(kube);
}, 180_000);

afterAll(async () => {
  await kubelet?.stop();
  await kube?.stop();
});

const pino = (msg: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ level: "info", time: "2025-03-01T10:00:00.000Z", service: "social", msg, ...extra });

/** A namespace with release `photos`'s social service and its pods (on the fake kubelet's node). */
async function socialWithPods(prefix: string, pods: Array<{ name: string; state?: "ready" | "running" | "pending" }>) {
  const ns = await namespace(kube, prefix);
  await knativeService(kube, ns, { release: "photos", service: "social" });
  for (const p of pods) await servicePod(kube, ns, { release: "photos", service: "social", node: kubelet.node, ...p });
  return ns;
}

describe("humanLog", () => {
  it("prints a pino line as time level msg key=value…, and anything else as it is", () => {
    const line = pino("applied", { eventId: "e1", eventType: "snapmesh.storage.object.deleted" });
    expect(humanLog(line, { time: true })).toBe(
      "2025-03-01T10:00:00.000Z info  applied eventId=e1 eventType=snapmesh.storage.object.deleted",
    );
    expect(humanLog(line)).toBe("info  applied eventId=e1 eventType=snapmesh.storage.object.deleted");
    expect(humanLog(JSON.stringify({ level: "warn", time: 0, msg: "epoch" }), { time: true })).toBe(
      "1970-01-01T00:00:00.000Z warn  epoch",
    );
    for (const raw of ["Error: boom", "    at main (file.js:1:1)", "42", "[1,2]"])
      expect(humanLog(raw, { time: true })).toBe(raw);
  });
});

describe("snapmesh logs", { timeout: 90_000 }, () => {
  it("pretty-prints the service container's pino lines (not queue-proxy's), others as they are", async () => {
    const ns = await socialWithPods("logs-one", [{ name: "social-a" }]);
    kubelet.log(ns, "social-a", "social", pino("listening", { port: 8080 }));
    kubelet.log(ns, "social-a", "social", pino("applied", { eventId: "e1", eventType: "snapmesh.storage.object.deleted" }));
    kubelet.log(ns, "social-a", "social", "not json at all");
    kubelet.log(ns, "social-a", "queue-proxy", "queue-proxy noise");

    const run = await cli(["logs", "social", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(
      [
        "2025-03-01T10:00:00.000Z info  listening port=8080",
        "2025-03-01T10:00:00.000Z info  applied eventId=e1 eventType=snapmesh.storage.object.deleted",
        "not json at all",
        "",
      ].join("\n"),
    );
    expect(kubelet.requests).toContain(`logs ${ns}/social-a/social`);
    expect(kubelet.requests.some((r) => r.includes(`${ns}/social-a/queue-proxy`))).toBe(false);
  });

  it("passes the lines through untouched with -o json", async () => {
    const ns = await socialWithPods("logs-json", [{ name: "social-a" }]);
    const lines = [pino("one", { eventId: "e1" }), pino("two"), "plain"];
    for (const l of lines) kubelet.log(ns, "social-a", "social", l);

    const run = await cli(["logs", "social", "-n", ns, "-o", "json", "--kubeconfig", kube.kubeconfig]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${lines.join("\n")}\n`);
  });

  it("puts the pod's name before each line when there are several pods, and skips pods not started", async () => {
    const ns = await socialWithPods("logs-many", [
      { name: "social-a" },
      { name: "social-bb", state: "running" },
      { name: "social-c", state: "pending" },
    ]);
    kubelet.log(ns, "social-a", "social", pino("from a"));
    kubelet.log(ns, "social-bb", "social", pino("from bb"));

    const run = await cli(["logs", "social", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    expect(run.code).toBe(0);
    expect(run.stdout.split("\n").filter(Boolean)).toEqual([
      "social-a  | 2025-03-01T10:00:00.000Z info  from a",
      "social-bb | 2025-03-01T10:00:00.000Z info  from bb",
    ]);
    expect(kubelet.requests.some((r) => r.includes(`${ns}/social-c/`))).toBe(false);
  });

  it("says a service with no pods is scaled to zero, and exits 0", async () => {
    const ns = await socialWithPods("logs-zero", [{ name: "social-p", state: "pending" }]);
    const run = await cli(["logs", "social", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe("");
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(/no running pods of 'social'.*scaled to zero.*snapmesh prewarm social/);
  });

  it("asks which release when the namespace holds two, and reads only that release's pods with --release", async () => {
    const ns = await socialWithPods("logs-releases", [{ name: "photos-social" }]);
    await knativeService(kube, ns, { release: "albums", service: "social" });
    await servicePod(kube, ns, { release: "albums", service: "social", name: "albums-social", node: kubelet.node });
    kubelet.log(ns, "photos-social", "social", pino("photos"));
    kubelet.log(ns, "albums-social", "social", pino("albums"));

    const ambiguous = await cli(["logs", "social", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    expect(ambiguous.code).toBe(64);
    expect(ambiguous.stderr).toMatch(/several releases .*albums, photos.*pass --release/);
    expect(ambiguous.stderr.trim().split("\n")).toHaveLength(1);

    const albums = await cli(["logs", "social", "-n", ns, "--release", "albums", "--kubeconfig", kube.kubeconfig]);
    expect(albums.code).toBe(0);
    expect(albums.stdout).toBe("2025-03-01T10:00:00.000Z info  albums\n");
  });

  it("says in one line why the kubelet refused a pod's log", async () => {
    const ns = await socialWithPods("logs-refused", [{ name: "social-a" }]);
    kubelet.refuseLog(
      ns,
      "social-a",
      "social",
      400,
      'container "social" in pod "social-a" is waiting to start: ContainerCreating',
    );
    for (const follow of [[], ["-f"]]) {
      const run = await cli(["logs", "social", ...follow, "-n", ns, "--kubeconfig", kube.kubeconfig]);
      expect(run.code, run.stderr).not.toBe(0);
      expect(run.stderr.trim().split("\n")).toHaveLength(1);
      expect(run.stderr).toMatch(/reading the logs of pod 'social-a'.*waiting to start/);
    }
  });

  it("follows every pod with -f, each line as it comes, until interrupted", async () => {
    const ns = await socialWithPods("logs-follow", [{ name: "social-a" }, { name: "social-b" }]);
    kubelet.log(ns, "social-a", "social", pino("before"));
    const child = startCli(["logs", "social", "-f", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    const seen: string[] = [];
    createInterface({ input: child.stdout }).on("line", (l) => seen.push(l));
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));

    await eventually(async () => seen.includes("social-a | 2025-03-01T10:00:00.000Z info  before"), "the log so far");
    await eventually(
      async () => ["a", "b"].every((p) => kubelet.requests.includes(`logs ${ns}/social-${p}/social follow=true`)),
      "both pods followed",
    );
    kubelet.log(ns, "social-b", "social", pino("later on b", { eventId: "e2", eventType: "snapmesh.social.comment.created" }));
    kubelet.log(ns, "social-a", "social", "a plain line on a");
    await eventually(
      async () =>
        seen.includes(
          "social-b | 2025-03-01T10:00:00.000Z info  later on b eventId=e2 eventType=snapmesh.social.comment.created",
        ) && seen.includes("social-a | a plain line on a"),
      "the new lines",
    );
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(stderr).toBe("");
  });

  it("stops following when every pod's log ends (the pods went away)", async () => {
    const ns = await socialWithPods("logs-end", [{ name: "social-a" }]);
    const child = startCli(["logs", "social", "-f", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await eventually(async () => kubelet.requests.includes(`logs ${ns}/social-a/social follow=true`), "the pod followed");
    kubelet.endLog(ns, "social-a", "social");
    expect(await exited).toBe(0);
  });
});
