// `snapmesh logs` against a real API server, which reads the logs from a (fake) kubelet as it would on a cluster.
import { readFileSync, writeFileSync } from "node:fs";
import { connect as connectTcp, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../scripts/src/cluster/connect.ts";
import { logs } from "../../scripts/src/cluster/logs.ts";
import { humanLog } from "../../scripts/src/output.ts";
import { eventually, scratchDir } from "../support/index.ts";
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

const readKubeconfigServer = (file: string) => /server: (\S+)/.exec(readFileSync(file, "utf8"))![1]!;

/** A TCP relay to the API server whose connections can be cut at once (the network going away). */
async function cuttableProxy(port: string) {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connectTcp(Number(port), "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    cut: () => {
      for (const s of sockets) s.resetAndDestroy();
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function collect() {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d) => (text += d));
  return { stream, text: () => text };
}

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

  // In the process, since a CLI whose streams all closed would exit 0 whether or not logs() returned.
  it("returns when every pod's log ends (the pods went away)", async () => {
    const ns = await socialWithPods("logs-end", [{ name: "social-a" }]);
    kubelet.log(ns, "social-a", "social", pino("last words"));
    const out = collect();
    const done = logs(
      connect({ kubeconfig: kube.kubeconfig, namespace: ns }),
      { service: "social", follow: true },
      "json",
      out.stream,
    );
    await eventually(async () => kubelet.requests.includes(`logs ${ns}/social-a/social follow=true`), "the pod followed");
    kubelet.endLog(ns, "social-a", "social");
    expect(await done).toBe(0);
    expect(out.text()).toBe(`${pino("last words")}\n`);
  });

  it("says so, and exits 69, when the connection to the API server breaks while following", async () => {
    const ns = await socialWithPods("logs-cut", [{ name: "social-a" }]);
    kubelet.log(ns, "social-a", "social", pino("before the cut"));
    const proxy = await cuttableProxy(new URL(readKubeconfigServer(kube.kubeconfig)).port);
    const kubeconfig = join(scratchDir("logs-cut"), "kubeconfig");
    writeFileSync(
      kubeconfig,
      readFileSync(kube.kubeconfig, "utf8").replace(/server: \S+/, `server: https://127.0.0.1:${proxy.port}`),
    );
    const child = startCli(["logs", "social", "-f", "-n", ns, "--kubeconfig", kubeconfig]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await eventually(async () => stdout.includes("before the cut"), "the first line");
    proxy.cut();
    expect(await exited).toBe(69);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toMatch(/^snapmesh: the log stream of pod 'social-a' broke: /);
    await proxy.close();
  });

  it("stops following when told to, and the cut streams raise nothing", async () => {
    const ns = await socialWithPods("logs-stop", [{ name: "social-a" }, { name: "social-b" }]);
    for (const p of ["a", "b"]) kubelet.log(ns, `social-${p}`, "social", pino(`hello from ${p}`));
    const out = collect();
    const stop = new AbortController();
    const cluster = connect({ kubeconfig: kube.kubeconfig, namespace: ns });
    const done = logs(cluster, { service: "social", follow: true }, "table", out.stream, stop.signal);
    await eventually(async () => out.text().includes("hello from a") && out.text().includes("hello from b"), "both pods' lines");
    stop.abort();
    expect(await done).toBe(0);
    // The streams were closed, not merely left behind.
    await eventually(
      async () => ["a", "b"].every((p) => kubelet.followers(ns, `social-${p}`, "social") === 0),
      "no followers left",
    );
  });
});
