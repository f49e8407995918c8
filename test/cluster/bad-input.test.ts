// Bad input to the cluster commands: one clear line on stderr, nothing on stdout, the exit code scripts rely on
// (78 no kubeconfig/context, 69 unreachable, 77 forbidden, 64 bad argument, 66 not found). The CLI runs as a
// process; the connection layer is also checked directly through connect() and cluster.call().
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiException } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Cluster, connect } from "../../scripts/src/cluster/connect.ts";
import { CliError, clusterError } from "../../scripts/src/cluster/errors.ts";
import { knativeServices } from "../../scripts/src/cluster/workloads.ts";
import { freePort } from "../support/index.ts";
import { type Kubernetes, kubernetes } from "../support/kubernetes.ts";
import { type CliRun, cli, installCrds, knativeService, namespace } from "./fixtures.ts";

let kube: Kubernetes;
let scratch: string;
/** A kubeconfig whose server is a loopback port nothing listens on. */
let unreachable: { kubeconfig: string; server: string };
/** The admin's kubeconfig with a token the API server does not know. */
let badToken: string;

beforeAll(async () => {
  kube = await kubernetes();
  await installCrds(kube);
  scratch = mkdtempSync(join(process.env.SNAPMESH_TEST_SCRATCH ?? tmpdir(), "bad-input-"));
  const admin = readFileSync(kube.kubeconfig, "utf8");
  const server = `https://127.0.0.1:${await freePort()}`;
  unreachable = { kubeconfig: join(scratch, "unreachable"), server };
  writeFileSync(unreachable.kubeconfig, admin.replace(/server: \S+/, `server: ${server}`));
  badToken = join(scratch, "bad-token");
  writeFileSync(badToken, admin.replace(/token: \S+/, "token: not-a-token-the-server-knows"));
}, 180_000);

afterAll(async () => {
  await kube?.stop();
});

/** The one line a failed command writes, after checking it wrote nothing else and exited with `code`. */
function oneLine(run: CliRun, code: number): string {
  expect(run.code, run.stderr).toBe(code);
  expect(run.stdout).toBe("");
  const lines = run.stderr.split("\n").filter(Boolean);
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^snapmesh: /);
  return lines[0]!;
}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

describe("no kubeconfig, or no such context: 78", { timeout: 60_000 }, () => {
  it("--kubeconfig naming a file that does not exist", async () => {
    expect(oneLine(await cli(["logs", "social", "--kubeconfig", "/nonexistent"]), 78)).toBe(
      "snapmesh: no kubeconfig at /nonexistent",
    );
  });

  it("KUBECONFIG naming a file that does not exist", async () => {
    expect(oneLine(await cli(["logs", "social"], { KUBECONFIG: "/nonexistent" }), 78)).toBe(
      "snapmesh: cannot load the kubeconfig /nonexistent: no such file",
    );
  });

  // In a pod, the service account is a configuration (as for kubectl): nothing to test there.
  it.skipIf(existsSync(SERVICE_ACCOUNT_TOKEN))("an empty HOME and no KUBECONFIG", async () => {
    const home = mkdtempSync(join(scratch, "home-"));
    const run = await cli(["logs", "social"], { HOME: home, KUBECONFIG: undefined });
    expect(oneLine(run, 78)).toMatch(/no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG/);
  });

  it("an unknown --context, naming the ones there are", async () => {
    const run = await cli(["logs", "social", "--context", "prod", "--kubeconfig", kube.kubeconfig]);
    expect(oneLine(run, 78)).toBe("snapmesh: no context 'prod' in the kubeconfig (one of: test)");
  });

  it("a kubeconfig that is not YAML", async () => {
    const broken = join(scratch, "broken");
    writeFileSync(broken, "clusters: [unclosed\n");
    expect(oneLine(await cli(["logs", "social", "--kubeconfig", broken]), 78)).toMatch(
      /^snapmesh: cannot load the kubeconfig .*broken: /,
    );
  });
});

describe("the API server cannot be reached: 69, naming it", { timeout: 60_000 }, () => {
  it.each([
    ["logs", ["logs", "social"]],
    ["send --cluster", ["send", "snapmesh.social.like.set", "--cluster"]],
    ["dlq list --cluster", ["dlq", "list", "--cluster"]],
  ])("%s", async (_name, args) => {
    const line = oneLine(await cli([...args, "--kubeconfig", unreachable.kubeconfig]), 69);
    expect(line).toContain(`cannot reach the Kubernetes API server at ${unreachable.server} (ECONNREFUSED)`);
  });
});

describe("credentials refused or RBAC forbids: 77", { timeout: 60_000 }, () => {
  it.each([
    ["logs", ["logs", "social"]],
    ["send --cluster", ["send", "snapmesh.social.like.set", "--cluster"]],
    ["dlq replay --cluster", ["dlq", "replay", "--cluster"]],
  ])("a user without rights: %s", async (_name, args) => {
    const line = oneLine(await cli([...args, "-n", "default", "--kubeconfig", kube.noRightsKubeconfig!]), 77);
    expect(line).toMatch(/listing Knative Services in namespace 'default': forbidden by RBAC: .*snapmesh-nobody.*cannot list/);
  });

  it("a token the API server does not know", async () => {
    const line = oneLine(await cli(["logs", "social", "--kubeconfig", badToken]), 77);
    expect(line).toMatch(/the API server refused the credentials \(401 Unauthorized\)/);
  });
});

describe("bad arguments: 64", { timeout: 60_000 }, () => {
  it.each([
    ["an unknown service", ["logs", "socail"], "snapmesh: unknown service 'socail' (one of: auth, social, share-code, storage)"],
    ["no service", ["logs"], "snapmesh: logs needs a service (one of: auth, social, share-code, storage)"],
    [
      "an unknown service to send to",
      ["send", "snapmesh.social.like.set", "--cluster", "--service", "likes"],
      "snapmesh: unknown service 'likes' (one of: auth, social, share-code, storage)",
    ],
    [
      "an unknown output format",
      ["logs", "social", "-o", "xml"],
      "snapmesh: unknown output format 'xml' (one of: table, wide, json, yaml)",
    ],
  ])("%s", async (_name, args, expected) => {
    expect(oneLine(await cli([...args, "--kubeconfig", kube.kubeconfig]), 64)).toBe(expected);
  });
});

describe("a namespace without the release: the command's not-found line, 66", { timeout: 60_000 }, () => {
  it("logs", async () => {
    expect(oneLine(await cli(["logs", "social", "-n", "nowhere", "--kubeconfig", kube.kubeconfig]), 66)).toBe(
      "snapmesh: no snapmesh service 'social' in namespace 'nowhere'",
    );
  });

  it("logs --release names the release it looked for", async () => {
    const ns = await namespace(kube, "other-release");
    await knativeService(kube, ns, { release: "photos", service: "social" });
    const run = await cli(["logs", "social", "-n", ns, "--release", "albums", "--kubeconfig", kube.kubeconfig]);
    expect(oneLine(run, 66)).toBe(`snapmesh: no snapmesh service 'social' in namespace '${ns}' for release 'albums'`);
  });

  it("send --cluster", async () => {
    const run = await cli(["send", "snapmesh.social.like.set", "--cluster", "-n", "nowhere", "--kubeconfig", kube.kubeconfig]);
    expect(oneLine(run, 66)).toBe("snapmesh: no snapmesh service 'social' in namespace 'nowhere'");
  });

  it("send --cluster --broker", async () => {
    const run = await cli([
      "send",
      "snapmesh.social.like.set",
      "--cluster",
      "--broker",
      "-n",
      "nowhere",
      "--kubeconfig",
      kube.kubeconfig,
    ]);
    expect(oneLine(run, 66)).toBe("snapmesh: no snapmesh Broker in namespace 'nowhere' (is eventing.enabled off?)");
  });

  it("dlq list --cluster", async () => {
    const run = await cli(["dlq", "list", "--cluster", "-n", "nowhere", "--kubeconfig", kube.kubeconfig]);
    expect(oneLine(run, 66)).toBe("snapmesh: no snapmesh services in namespace 'nowhere'");
  });
});

describe("connect() and cluster.call(): each failure one CliError with its code", () => {
  const listNamespaces = (cluster: Cluster) => cluster.call("listing namespaces", () => cluster.core.listNamespace());

  async function failure(promise: Promise<unknown>): Promise<CliError> {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CliError);
    expect((err as Error).message).not.toContain("\n");
    return err as CliError;
  }

  it("works when nothing is wrong", async () => {
    const list = await listNamespaces(connect({ kubeconfig: kube.kubeconfig }));
    expect(list.items.map((n) => n.metadata?.name)).toContain("default");
  });

  it("unreachable: 69, naming the server", async () => {
    const err = await failure(listNamespaces(connect({ kubeconfig: unreachable.kubeconfig })));
    expect([err.exitCode, err.message]).toEqual([
      69,
      `listing namespaces: cannot reach the Kubernetes API server at ${unreachable.server} (ECONNREFUSED)`,
    ]);
  });

  it("forbidden: 77; bad token: 77; not found: 66", async () => {
    const forbidden = await failure(listNamespaces(connect({ kubeconfig: kube.noRightsKubeconfig! })));
    expect(forbidden.exitCode).toBe(77);
    expect((await failure(listNamespaces(connect({ kubeconfig: badToken })))).exitCode).toBe(77);
    const admin = connect({ kubeconfig: kube.kubeconfig });
    const missing = await failure(admin.call("reading namespace 'nope'", () => admin.core.readNamespace({ name: "nope" })));
    expect([missing.exitCode, missing.message]).toEqual([66, `reading namespace 'nope': not found: namespaces "nope" not found`]);
  });

  it("an API error without a Status body (as the client's log streaming throws) stays one line", () => {
    const err = clusterError(
      new ApiException(400, "Error occurred in log request", undefined, {}),
      "following the logs",
      "https://k",
    );
    expect(err.message).toBe("following the logs: the API server answered 400: Error occurred in log request");
  });

  it("a cluster without Knative Serving says so rather than 'not found'", async () => {
    const real = connect({ kubeconfig: kube.kubeconfig, namespace: "default" });
    const withoutKnative: Cluster = {
      ...real,
      custom: {
        listNamespacedCustomObject: () =>
          Promise.reject(new ApiException(404, "Not Found", { message: "the server could not find the requested resource" }, {})),
      } as unknown as Cluster["custom"],
    };
    const err = await failure(knativeServices(withoutKnative, undefined));
    expect([err.exitCode, err.message]).toEqual([
      66,
      "Knative Serving is not installed on this cluster (no services.serving.knative.dev API)",
    ]);
  });
});
