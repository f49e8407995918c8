// `send --cluster` and `dlq list|replay --cluster`: which pod a forward goes to (read from the real API server
// as the chart and Knative leave it), and the forward itself through the API server to a (fake) kubelet,
// which connects it to a real local server: an HTTP service, a Broker ingress, the test NATS.
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../../scripts/src/cluster/connect.ts";
import { CliError } from "../../scripts/src/cluster/errors.ts";
import { inClusterService, readyPod } from "../../scripts/src/cluster/forward.ts";
import { brokerTarget, natsTarget, serviceTarget } from "../../scripts/src/cluster/targets.ts";
import { startConsole } from "../../scripts/src/console/server.ts";
import { publishDeadLetter } from "../../services/runtime/src/dead-letters.ts";
import { dlqStream, ensureStreams, type StreamNames } from "../../services/runtime/src/internal.ts";
import { natsConnect, scratchDir, streamMessages, testNatsUrl, uniqueName } from "../support/index.ts";
import { type Kubernetes, kubernetes } from "../support/kubernetes.ts";
import { type FakeKubelet, fakeKubelet } from "./fake-kubelet.ts";
import { broker, cli, installCrds, knativeService, namespace, pod, service, servicePod, startCli } from "./fixtures.ts";

let kube: Kubernetes;
let kubelet: FakeKubelet;
let nc: NatsConnection;

beforeAll(async () => {
  kube = await kubernetes();
  await installCrds(kube);
  kubelet = await fakeKubelet(kube);
  nc = await natsConnect();
}, 180_000);

afterAll(async () => {
  await nc?.close();
  await kubelet?.stop();
  await kube?.stop();
});

const clusterIn = (ns: string, kubeconfig = kube.kubeconfig) => connect({ kubeconfig, namespace: ns });

async function failure(promise: Promise<unknown>): Promise<CliError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CliError);
  return err as CliError;
}

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback HTTP server answering every request with `answer`, keeping what it got. */
async function httpServer(answer: { status: number; headers?: Record<string, string>; body?: string }) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      received.push({ path: req.url ?? "", headers: req.headers, body });
      res.writeHead(answer.status, answer.headers ?? {}).end(answer.body ?? "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return { received, port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** A Broker whose address names a Service `broker-ingress` in its own namespace (as knative-eventing's), port 80 → "http". */
async function brokerWithIngress(ns: string, release = "photos") {
  const eventing = await namespace(kube, "eventing");
  await service(kube, eventing, { name: "broker-ingress", selector: { app: "broker-ingress" }, port: 80, targetPort: "http" });
  const ingressPod = (name: string, state: "ready" | "running") =>
    pod(kube, eventing, {
      name,
      node: kubelet.node,
      state,
      labels: { app: "broker-ingress" },
      containers: [{ name: "ingress", image: "ingress:test", ports: [{ name: "http", containerPort: 8081 }] }],
    });
  await ingressPod("ingress-a", "running");
  await ingressPod("ingress-b", "ready");
  const name = await broker(kube, ns, {
    release,
    url: `http://broker-ingress.${eventing}.svc.cluster.local/${ns}/${release}-snapmesh-default`,
  });
  return { eventing, name };
}

/** A NATS Service in its own namespace with one Ready pod, which the fake kubelet connects to the test NATS. */
async function natsService(podPort = 4222) {
  const natsNs = await namespace(kube, "nats");
  await service(kube, natsNs, { name: "nats", selector: { app: "nats" }, port: 4222, targetPort: podPort });
  await pod(kube, natsNs, {
    name: "nats-0",
    node: kubelet.node,
    state: "ready",
    labels: { app: "nats" },
    containers: [{ name: "nats", image: "nats:test", ports: [{ name: "client", containerPort: podPort }] }],
  });
  const test = new URL(testNatsUrl());
  kubelet.route(natsNs, "nats-0", podPort, { host: test.hostname, port: Number(test.port) });
  return natsNs;
}

describe("which pod a forward goes to", () => {
  it("picks a Ready pod only: not a pending one, nor a running one that is not Ready", async () => {
    const ns = await namespace(kube, "pick");
    const labels = { app: "x" };
    const containers = [{ name: "x", image: "x:test" }];
    await pod(kube, ns, { name: "a-pending", state: "pending", labels, containers });
    await pod(kube, ns, { name: "b-unready", state: "running", labels, containers });
    const none = await failure(readyPod(clusterIn(ns), ns, "app=x", "the x service"));
    expect(none.exitCode).toBe(1);
    expect(none.message).toBe(`no ready pod for the x service in namespace '${ns}' (2 pod(s), none Ready)`);

    await pod(kube, ns, { name: "d-ready", state: "ready", labels, containers });
    await pod(kube, ns, { name: "c-ready", state: "ready", labels, containers });
    expect((await readyPod(clusterIn(ns), ns, "app=x", "x")).metadata?.name).toBe("c-ready");

    const empty = await failure(readyPod(clusterIn(ns), ns, "app=nothing", "nothing", "try later"));
    expect(empty.message).toBe(`no ready pod for nothing in namespace '${ns}' (no pods): try later`);
  });

  it("sends a command to a Ready pod of the owning service, at its container's port", async () => {
    const ns = await namespace(kube, "owner");
    await knativeService(kube, ns, { release: "photos", service: "social" });
    await servicePod(kube, ns, { release: "photos", service: "social", name: "social-a", state: "running" });
    await servicePod(kube, ns, { release: "photos", service: "social", name: "social-b" });
    // Another release's pod and another service's pod carry some of the same labels.
    await servicePod(kube, ns, { release: "albums", service: "social", name: "albums-social" });
    await servicePod(kube, ns, { release: "photos", service: "auth", name: "auth-a" });
    expect(await serviceTarget(clusterIn(ns), "social", undefined)).toEqual({
      target: { namespace: ns, pod: "social-b", port: 8080 },
      path: "/",
      what: "'social'",
    });
  });

  it("says a service scaled to zero has to be woken first", async () => {
    const ns = await namespace(kube, "zero");
    await knativeService(kube, ns, { release: "photos", service: "storage" });
    const err = await failure(serviceTarget(clusterIn(ns), "storage", undefined));
    expect(err.exitCode).toBe(1);
    expect(err.message).toMatch(
      /no ready pod for 'storage' \(photos-snapmesh-storage\).*\(no pods\).*snapmesh prewarm storage --min 1/,
    );
  });

  it("finds the Broker's ingress pod and port from the Service its address names", async () => {
    const ns = await namespace(kube, "broker");
    const { eventing, name } = await brokerWithIngress(ns);
    expect(await brokerTarget(clusterIn(ns), undefined)).toEqual({
      target: { namespace: eventing, pod: "ingress-b", port: 8081 },
      path: `/${ns}/${name}`,
      what: `the Broker '${name}'`,
    });
  });

  it("says when there is no Broker, or it has no address yet", async () => {
    const ns = await namespace(kube, "nobroker");
    const missing = await failure(brokerTarget(clusterIn(ns), undefined));
    expect(missing.exitCode).toBe(66);
    expect(missing.message).toMatch(/no snapmesh Broker in namespace/);
    await broker(kube, ns, { release: "photos" });
    const notReady = await failure(brokerTarget(clusterIn(ns), undefined));
    expect(notReady.exitCode).toBe(1);
    expect(notReady.message).toBe("the Broker 'photos-snapmesh-default' has no address yet: it is not Ready");
  });

  it("finds NATS from the services' NATS_URL, with the stream names and the credentials they use", async () => {
    const ns = await namespace(kube, "natsurl");
    const natsNs = await natsService(4333);
    await knativeService(kube, ns, {
      release: "photos",
      service: "auth",
      env: { NATS_URL: `nats://app:secret@nats.${natsNs}.svc.cluster.local:4222`, EVENTS_STREAM: "FACTS", EVENT_SINK: "http" },
    });
    const found = await natsTarget(clusterIn(ns), undefined);
    expect(found.target).toEqual({ namespace: natsNs, pod: "nats-0", port: 4333 });
    expect(found.names).toEqual({ stream: "FACTS", subjectPrefix: "events" });
    expect(found.eventing).toBe(true);
    expect(found.url(14222)).toBe("nats://app:secret@127.0.0.1:14222");
  });

  it("asks which release when the namespace holds two, however many services each has", async () => {
    const ns = await namespace(kube, "natsreleases");
    for (const [release, service] of [
      ["photos", "auth"],
      ["photos", "social"],
      ["albums", "auth"],
    ] as const)
      await knativeService(kube, ns, { release, service, env: { NATS_URL: "nats://nats.nats.svc:4222" } });
    const err = await failure(natsTarget(clusterIn(ns), undefined));
    expect([err.exitCode, err.message]).toEqual([
      64,
      `snapmesh is installed by several releases in namespace '${ns}' (albums, photos): pass --release`,
    ]);
    const single = await failure(natsTarget(clusterIn(ns), "albums"));
    expect(single.message).toMatch(/reading Service 'nats' in namespace 'nats'.*not found/);
  });

  it("reads in-cluster Service URLs, and refuses what is not one", () => {
    expect(inClusterService("http://broker-ingress.knative-eventing.svc.cluster.local/ns/b", "here")).toEqual({
      name: "broker-ingress",
      namespace: "knative-eventing",
      port: 80,
      path: "/ns/b",
    });
    expect(inClusterService("nats://nats:4223", "here")).toEqual({ name: "nats", namespace: "here", port: 4223, path: "" });
    expect(inClusterService("nats://nats.nats.svc", "here")).toMatchObject({ namespace: "nats", port: 4222 });
    expect(inClusterService("nats://nats.nats.svc.k8s.example.internal", "here")).toMatchObject({
      name: "nats",
      namespace: "nats",
    });
    for (const url of ["nats://10.0.0.5:4222", "https://nats.example.com", "not a url"])
      expect(() => inClusterService(url, "here")).toThrow(CliError);
  });
});

describe("snapmesh send --cluster", { timeout: 90_000 }, () => {
  it("sends the CloudEvent through a port-forward to the owning service's pod and prints the reply", async () => {
    const ns = await namespace(kube, "send");
    await knativeService(kube, ns, { release: "photos", service: "social" });
    await servicePod(kube, ns, { release: "photos", service: "social", name: "social-a", node: kubelet.node });
    const social = await httpServer({
      status: 200,
      headers: {
        "ce-specversion": "1.0",
        "ce-id": "reply-1",
        "ce-type": "snapmesh.social.like.set.reply",
        "ce-source": "/snapmesh/social",
        "content-type": "application/json",
      },
      body: JSON.stringify({ liked: true }),
    });
    kubelet.route(ns, "social-a", 8080, { host: "127.0.0.1", port: social.port });
    try {
      const run = await cli(
        ["send", "snapmesh.social.like.set", "--data", '{"photoId":"p1"}', "--cluster", "-n", ns, "--token", "t0k"],
        { KUBECONFIG: kube.kubeconfig },
      );
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({
        id: "reply-1",
        type: "snapmesh.social.like.set.reply",
        data: { liked: true },
      });
      expect(social.received).toHaveLength(1);
      expect(social.received[0]).toMatchObject({
        path: "/",
        headers: { "ce-type": "snapmesh.social.like.set", authorization: "Bearer t0k" },
        body: '{"photoId":"p1"}',
      });
      expect(kubelet.requests).toContain(`portforward ${ns}/social-a 8080`);
    } finally {
      await social.close();
    }
  });

  it("with --broker, posts to the Broker's ingress at the Broker's path", async () => {
    const ns = await namespace(kube, "sendbroker");
    const { eventing, name } = await brokerWithIngress(ns);
    const ingress = await httpServer({ status: 202 });
    kubelet.route(eventing, "ingress-b", 8081, { host: "127.0.0.1", port: ingress.port });
    try {
      const run = await cli(
        ["send", "snapmesh.storage.object.deleted", "--data", '{"key":"k"}', "--cluster", "--broker", "-n", ns],
        { KUBECONFIG: kube.kubeconfig },
      );
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toEqual({ status: 202 });
      expect(ingress.received.map((r) => [r.path, r.headers["ce-type"]])).toEqual([
        [`/${ns}/${name}`, "snapmesh.storage.object.deleted"],
      ]);
    } finally {
      await ingress.close();
    }
  });

  it("says what the pod's side reported when nothing listens on the port", async () => {
    const ns = await namespace(kube, "sendclosed");
    await knativeService(kube, ns, { release: "photos", service: "auth" });
    await servicePod(kube, ns, { release: "photos", service: "auth", name: "auth-a", node: kubelet.node });
    const run = await cli(["send", "snapmesh.auth.session.create", "--cluster", "-n", ns], { KUBECONFIG: kube.kubeconfig });
    expect(run.code).toBe(69);
    expect(run.stdout).toBe("");
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(
      /through the port-forward to pod 'auth-a' port 8080: error forwarding port 8080 .*connection refused/,
    );
  });

  it("says in one line when RBAC lets the user read pods but not port-forward to them", async () => {
    const ns = await namespace(kube, "sendrbac");
    await knativeService(kube, ns, { release: "photos", service: "social" });
    await servicePod(kube, ns, { release: "photos", service: "social", name: "social-a", node: kubelet.node });
    await kube.kubectl([
      "create",
      "role",
      "reader",
      "-n",
      ns,
      "--verb=get,list",
      "--resource=pods,services,services.serving.knative.dev",
    ]);
    await kube.kubectl(["create", "rolebinding", "reader", "-n", ns, "--role=reader", "--user=snapmesh-nobody"]);
    const run = await cli(["send", "snapmesh.social.like.set", "--cluster", "-n", ns, "--kubeconfig", kube.noRightsKubeconfig!]);
    expect(run.code).toBe(77);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(/port-forwarding to pod 'social-a'.*forbidden by RBAC.*pods\/portforward/);
  });

  it("says in one line when the pod has no node to forward through", async () => {
    const ns = await namespace(kube, "sendnonode");
    await knativeService(kube, ns, { release: "photos", service: "social" });
    await servicePod(kube, ns, { release: "photos", service: "social", name: "social-a" });
    const run = await cli(["send", "snapmesh.social.like.set", "--cluster", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
    expect(run.stderr).toMatch(/port-forwarding to pod 'social-a'.*400.*cannot be reached through its node/);
  });
});

describe("snapmesh dlq --cluster", { timeout: 90_000 }, () => {
  /** A release whose services use the NATS Service (and unique stream names), with two dead letters in its DLQ. */
  async function releaseWithDeadLetters(env: Record<string, string> = {}) {
    const ns = await namespace(kube, "dlq");
    const natsNs = await natsService();
    const names: StreamNames = { stream: uniqueName("facts"), subjectPrefix: uniqueName("ev").toLowerCase() };
    await knativeService(kube, ns, {
      release: "photos",
      service: "social",
      env: {
        NATS_URL: `nats://nats.${natsNs}.svc.cluster.local:4222`,
        EVENTS_STREAM: names.stream,
        EVENTS_SUBJECT_PREFIX: names.subjectPrefix,
        ...env,
      },
    });
    await ensureStreams(nc, names);
    for (const [id, type] of [
      ["dead-1", "snapmesh.storage.object.deleted"],
      ["dead-2", "snapmesh.storage.object.created"],
    ] as const) {
      await publishDeadLetter(nc, names, {
        reason: `handler failed for ${id}`,
        consumer: "social",
        attempts: 5,
        subject: `${names.subjectPrefix}.${type}`,
        event: { specversion: "1.0", id, type, source: "/snapmesh/storage", data: { key: id } } as never,
      });
    }
    return { ns, names };
  }

  it("lists the cluster's dead letters through a port-forward to NATS, as the local list does", async () => {
    const { ns, names } = await releaseWithDeadLetters();
    const run = await cli(["dlq", "list", "--cluster", "-n", ns, "-o", "json", "--kubeconfig", kube.kubeconfig]);
    expect(run.code, run.stderr).toBe(0);
    const listed = JSON.parse(run.stdout);
    expect(listed).toEqual([
      expect.objectContaining({ seq: 1, type: "snapmesh.storage.object.deleted", id: "dead-1", consumer: "social", attempts: 5 }),
      expect.objectContaining({
        seq: 2,
        type: "snapmesh.storage.object.created",
        id: "dead-2",
        reason: "handler failed for dead-2",
      }),
    ]);
    const local = await cli(["dlq", "list", "-o", "json", "--type", "snapmesh.storage.object.created"], {
      NATS_URL: testNatsUrl(),
      EVENTS_STREAM: names.stream,
      EVENTS_SUBJECT_PREFIX: names.subjectPrefix,
    });
    expect(JSON.parse(local.stdout)).toEqual([listed[1]]);

    const table = await cli(["dlq", "list", "--cluster", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    expect(table.stdout.split("\n")[0]).toMatch(/^SEQ\s+TYPE\s+ID\s+CONSUMER\s+FAILED\s+REASON$/);
    expect(table.stdout).toMatch(/2\s+snapmesh\.storage\.object\.created\s+dead-2\s+social\s+\S+\s+handler failed for dead-2/);
  });

  it("replays into the JetStream facts stream when the services consume JetStream themselves", async () => {
    const { ns, names } = await releaseWithDeadLetters();
    const run = await cli([
      "dlq",
      "replay",
      "--type",
      "snapmesh.storage.object.deleted",
      "--cluster",
      "-n",
      ns,
      "-o",
      "json",
      "--kubeconfig",
      kube.kubeconfig,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([{ seq: 1, type: "snapmesh.storage.object.deleted", id: "dead-1", replayed: true }]);
    const facts = await streamMessages(nc, names.stream);
    expect(facts.map((m) => [m.subject, JSON.parse(new TextDecoder().decode(m.data)).id])).toEqual([
      [`${names.subjectPrefix}.snapmesh.storage.object.deleted`, "dead-1"],
    ]);
    expect((await streamMessages(nc, dlqStream(names))).map((m) => m.seq)).toEqual([2]);
  });

  it("replays to the Broker when the release uses Knative Eventing (nothing consumes the JetStream stream there)", async () => {
    const { ns, names } = await releaseWithDeadLetters({ EVENT_SINK: "http" });
    const { eventing, name } = await brokerWithIngress(ns);
    const ingress = await httpServer({ status: 202 });
    kubelet.route(eventing, "ingress-b", 8081, { host: "127.0.0.1", port: ingress.port });
    try {
      const run = await cli(["dlq", "replay", "--cluster", "-n", ns, "--kubeconfig", kube.kubeconfig]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/replayed 2 dead-lettered event\(s\)/);
      expect(ingress.received.map((r) => [r.path, r.headers["content-type"], JSON.parse(r.body).id])).toEqual([
        [`/${ns}/${name}`, "application/cloudevents+json", "dead-1"],
        [`/${ns}/${name}`, "application/cloudevents+json", "dead-2"],
      ]);
      expect(await streamMessages(nc, dlqStream(names))).toEqual([]);
      expect(await streamMessages(nc, names.stream)).toEqual([]);
    } finally {
      await ingress.close();
    }
  });

  it("keeps a dead letter the Broker refuses, and says so", async () => {
    const { ns, names } = await releaseWithDeadLetters({ EVENT_SINK: "http" });
    const { eventing } = await brokerWithIngress(ns);
    const ingress = await httpServer({ status: 400, body: "bad event" });
    kubelet.route(eventing, "ingress-b", 8081, { host: "127.0.0.1", port: ingress.port });
    try {
      const run = await cli(["dlq", "replay", "--cluster", "-n", ns, "--kubeconfig", kube.kubeconfig]);
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe("snapmesh: the Broker refused event dead-1 (400): bad event");
      expect((await streamMessages(nc, dlqStream(names))).map((m) => m.seq)).toEqual([1, 2]);
    } finally {
      await ingress.close();
    }
  });
});

describe("snapmesh console --cluster", { timeout: 90_000 }, () => {
  const labels = {
    "app.kubernetes.io/part-of": "snapmesh",
    "app.kubernetes.io/instance": "photos",
    "app.kubernetes.io/component": "console",
  };

  it("serves the release's console on a local port through a port-forward to its pod, until Ctrl-C", async () => {
    const ns = await namespace(kube, "console");
    // As the chart renders them: a Service port 80 → the pod's port named http.
    await service(kube, ns, { name: "photos-snapmesh-console", labels, selector: labels, port: 80, targetPort: "http" });
    await pod(kube, ns, {
      name: "console-a",
      node: kubelet.node,
      state: "ready",
      labels,
      containers: [{ name: "console", image: "snapmesh-console:test", ports: [{ name: "http", containerPort: 8080 }] }],
    });
    // No image runs on this API server: the console's own server, run here, stands behind the pod's port.
    const page = scratchDir("cluster-console");
    mkdirSync(page, { recursive: true });
    writeFileSync(join(page, "index.html"), "<!doctype html><title>snapmesh</title>");
    const names = { stream: uniqueName("CCONSOLE"), subjectPrefix: uniqueName("cconsole").toLowerCase() };
    const web = await startConsole({ port: 0, natsUrl: testNatsUrl(), names, services: {}, publicDir: page });
    kubelet.route(ns, "console-a", 8080, { host: "127.0.0.1", port: Number(new URL(web.url).port) });
    const child = startCli(["console", "--cluster", "-n", ns, "--port", "0", "--json", "--kubeconfig", kube.kubeconfig]);
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    try {
      const ready = await new Promise<{ consoleUrl: string; pod: string }>((resolve, reject) => {
        createInterface({ input: child.stdout }).on("line", (line) => {
          const parsed = JSON.parse(line) as { ready?: boolean; consoleUrl: string; pod: string };
          if (parsed.ready) resolve(parsed);
        });
        child.once("exit", (code) => reject(new Error(`snapmesh console exited ${code}: ${stderr}`)));
      });
      expect(ready.pod).toBe("console-a");
      expect(ready.consoleUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await (await fetch(`${ready.consoleUrl}/`)).text()).toContain("<title>snapmesh</title>");
      const mesh = (await (await fetch(`${ready.consoleUrl}/api/mesh`)).json()) as { stream: string };
      expect(mesh.stream).toBe(names.stream);
      expect(kubelet.requests).toContain(`portforward ${ns}/console-a 8080`);
      const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
      child.kill("SIGINT");
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
      await web.close();
    }
  });

  it("says how to get one when the release has no console", async () => {
    const ns = await namespace(kube, "noconsole");
    await knativeService(kube, ns, { release: "photos", service: "social" });
    const run = await cli(["console", "--cluster", "-n", ns, "--kubeconfig", kube.kubeconfig]);
    expect(run.code).toBe(66);
    expect(run.stderr).toMatch(/no snapmesh console in namespace '.*': install the chart with --set console.enabled=true/);
  });
});
