// `snapmesh prewarm` and `snapmesh keys rotate|list` against a real API server, on the chart's own objects
// (helm install): the CLI runs as a process and the tests read back what it wrote.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type Cluster, connect } from "../../scripts/src/cluster/connect.ts";
import { CliError } from "../../scripts/src/cluster/errors.ts";
import { list, rotate } from "../../scripts/src/cluster/keys.ts";
import { prewarm } from "../../scripts/src/cluster/prewarm.ts";
import { findBinary, goBinDirs } from "../../scripts/src/processes.ts";
import { generateSigningJwk, KeyRing } from "../../services/auth/src/keyring.ts";
import { SESSION_AUDIENCE } from "../../services/runtime/src/tokens.ts";
import { parseSigningKeys, sign, verify } from "../../services/storage/src/signing.ts";
import { type Kubernetes, kubernetes } from "../support/kubernetes.ts";
import { type CliRun, cli, installCrds } from "./fixtures.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHART = join(ROOT, "charts/snapmesh");
const HELM = findBinary("helm", goBinDirs());
const MIN_SCALE = "autoscaling.knative.dev/min-scale";
const PREWARM = "snapmesh.dev/prewarm";
const OLD_STORAGE_KEY = `old-1:${"s".repeat(40)}`;

let kube: Kubernetes;

beforeAll(async () => {
  kube = await kubernetes();
  await installCrds(kube);
}, 180_000);

afterAll(async () => {
  await kube?.stop();
});

/** The CLI as an operator runs it. */
const snapmesh = (args: string[], kubeconfig = kube.kubeconfig): Promise<CliRun> => cli([...args, "--kubeconfig", kubeconfig]);

/**
 * The command's module in this process, for the cases where what matters is what it does rather than the
 * CLI around it (each CLI process costs seconds of tsx start-up): its stdout, and an error as cli.ts prints it.
 */
async function direct(ns: string, command: (cluster: Cluster) => Promise<number>, kubeconfig = kube.kubeconfig): Promise<CliRun> {
  let stdout = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const warn = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const code = await command(connect({ kubeconfig, namespace: ns }));
    return { code, stdout, stderr: "" };
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    return { code: err.exitCode, stdout, stderr: `snapmesh: ${err.message}\n` };
  } finally {
    write.mockRestore();
    warn.mockRestore();
  }
}

function helm(args: string[]): Promise<string> {
  if (!HELM) throw new Error("helm is not installed: `go install helm.sh/helm/v3/cmd/helm@v3.16.4` (bash .ci/run does it)");
  return new Promise((resolve, reject) =>
    execFile(HELM, [...args, "--kubeconfig", kube.kubeconfig], { encoding: "utf8" }, (err, out, stderr) =>
      err ? reject(new Error(`helm ${args.slice(0, 2).join(" ")}: ${stderr || err.message}`)) : resolve(out),
    ),
  );
}

/** A namespace with the chart installed under each release and the key Secrets an operator creates first. */
async function installed(ns: string, releases = ["photos"]): Promise<{ authKeys: string }> {
  await kube.kubectl(["create", "namespace", ns]);
  for (const release of releases) await helm(["install", release, CHART, "-n", ns, "--no-hooks", "--timeout", "60s"]);
  const authKeys = JSON.stringify({ keys: [await generateSigningJwk()] });
  await kube.kubectl(["create", "secret", "generic", "snapmesh-auth-keys", "-n", ns, `--from-literal=keys.json=${authKeys}`]);
  await kube.kubectl([
    "create",
    "secret",
    "generic",
    "snapmesh-storage-keys",
    "-n",
    ns,
    `--from-literal=keys=${OLD_STORAGE_KEY}`,
  ]);
  return { authKeys };
}

interface Ksvc {
  metadata: { name: string; resourceVersion: string; annotations?: Record<string, string> };
  spec: { template: { metadata: { annotations: Record<string, string> } } };
}

async function ksvc(ns: string, component: string, release = "photos"): Promise<Ksvc> {
  const list = JSON.parse(
    await kube.kubectl([
      "get",
      "ksvc",
      "-n",
      ns,
      "-l",
      `app.kubernetes.io/component=${component},app.kubernetes.io/instance=${release}`,
      "-o",
      "json",
    ]),
  ) as { items: Ksvc[] };
  expect(list.items).toHaveLength(1);
  return list.items[0]!;
}

const minScale = (k: Ksvc) => k.spec.template.metadata.annotations[MIN_SCALE];
const record = (k: Ksvc) => {
  const text = k.metadata.annotations?.[PREWARM];
  return text === undefined ? undefined : JSON.parse(text);
};
const versions = async (ns: string) => (await kube.kubectl(["get", "ksvc,secret", "-n", ns, "-o", "yaml"])).trim();

async function secretValue(ns: string, name: string, key: string): Promise<string> {
  const secret = JSON.parse(await kube.kubectl(["get", "secret", name, "-n", ns, "-o", "json"])) as {
    data: Record<string, string>;
  };
  return Buffer.from(secret.data[key]!, "base64").toString("utf8");
}

describe("snapmesh prewarm", () => {
  it("raises min-scale with a record of what it replaced, and --undo puts it back", async () => {
    const ns = "prewarm-undo";
    await installed(ns);
    expect(minScale(await ksvc(ns, "social"))).toBe("0");

    const before = Date.now();
    const run = await snapmesh(["prewarm", "social", "--min", "4", "--for", "30m", "-n", ns, "-o", "json"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.changes).toEqual([
      expect.objectContaining({ service: "social", release: "photos", action: "prewarm", from: "0", to: "4" }),
    ]);
    expect(out.prewarmed).toEqual([expect.objectContaining({ service: "social", min: 4, previousMin: "0" })]);

    const warm = await ksvc(ns, "social");
    expect(minScale(warm)).toBe("4");
    const rec = record(warm);
    expect(rec).toMatchObject({ min: 4, previousMin: "0" });
    const until = Date.parse(rec.until);
    expect(until).toBeGreaterThanOrEqual(before + 30 * 60_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 30 * 60_000);
    expect(minScale(await ksvc(ns, "auth"))).toBe("0"); // only the named service

    const undo = await snapmesh(["prewarm", "social", "--undo", "-n", ns]);
    expect(undo.code).toBe(0);
    expect(undo.stdout).toMatch(/social\s+undo\s+4 -> 0/);
    const cold = await ksvc(ns, "social");
    expect(minScale(cold)).toBe("0");
    expect(record(cold)).toBeUndefined();
  }, 180_000);

  it("prewarming twice keeps the original previousMin, so --undo restores the value from before both", async () => {
    const ns = "prewarm-twice";
    await installed(ns);
    await kube.kubectl([
      "patch",
      "ksvc",
      "photos-snapmesh-auth",
      "-n",
      ns,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { template: { metadata: { annotations: { [MIN_SCALE]: "1" } } } } }),
    ]);

    const warm = (service: string, more: { min?: string; undo?: boolean } = {}) =>
      direct(ns, (c) => prewarm(c, { service, undo: false, ...more }, "table"));
    expect((await warm("auth")).code).toBe(0);
    const first = await ksvc(ns, "auth");
    expect(minScale(first)).toBe("3"); // the default --min
    expect(record(first)).toEqual({ min: 3, previousMin: "1", until: null });

    expect((await warm("auth", { min: "6" })).code).toBe(0);
    const second = await ksvc(ns, "auth");
    expect(minScale(second)).toBe("6");
    expect(record(second)).toEqual({ min: 6, previousMin: "1", until: null });

    expect((await warm("auth", { undo: true })).code).toBe(0);
    const restored = await ksvc(ns, "auth");
    expect(minScale(restored)).toBe("1");
    expect(record(restored)).toBeUndefined();

    // A service that had no min-scale at all gets none back.
    await kube.kubectl([
      "patch",
      "ksvc",
      "photos-snapmesh-storage",
      "-n",
      ns,
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { template: { metadata: { annotations: { [MIN_SCALE]: null } } } } }),
    ]);
    expect((await warm("storage", { min: "2" })).code).toBe(0);
    expect(record(await ksvc(ns, "storage"))).toEqual({ min: 2, previousMin: null, until: null });
    expect((await warm("storage", { undo: true })).code).toBe(0);
    expect(minScale(await ksvc(ns, "storage"))).toBeUndefined();
  }, 180_000);

  it("restores a service whose --for has passed on the next prewarm call", async () => {
    const ns = "prewarm-expire";
    await installed(ns);
    const warm = (service: string, min: string, duration: string) =>
      direct(ns, (c) => prewarm(c, { service, min, for: duration, undo: false }, "table"));
    expect((await warm("share-code", "5", "2h")).code).toBe(0);
    expect((await warm("storage", "2", "90m")).code).toBe(0);
    expect((await warm("auth", "2", "3h")).code).toBe(0);

    // As if 2h01m had gone by: the sweep restores share-code and storage (both past), not auth.
    const later = new Date(Date.now() + 121 * 60_000);
    const sweep = await direct(ns, (c) => prewarm(c, { undo: false }, "json", later));
    expect(sweep.code).toBe(0);
    const out = JSON.parse(sweep.stdout);
    expect(out.changes.map((c: { service: string; action: string }) => `${c.service}:${c.action}`).sort()).toEqual([
      "share-code:expire",
      "storage:expire",
    ]);
    expect(out.prewarmed).toEqual([expect.objectContaining({ service: "auth", min: 2 })]);
    for (const service of ["share-code", "storage"]) {
      const k = await ksvc(ns, service);
      expect(minScale(k)).toBe("0");
      expect(record(k)).toBeUndefined();
    }

    // A record the operator's clock has passed (written as an older snapmesh would) goes on any prewarm call.
    const past = new Date(Date.now() - 60_000).toISOString();
    await kube.kubectl([
      "patch",
      "ksvc",
      "photos-snapmesh-social",
      "-n",
      ns,
      "--type=merge",
      "-p",
      JSON.stringify({
        metadata: { annotations: { [PREWARM]: JSON.stringify({ min: 7, previousMin: "0", until: past }) } },
        spec: { template: { metadata: { annotations: { [MIN_SCALE]: "7" } } } },
      }),
    ]);
    const run = await snapmesh(["prewarm", "social", "--min", "2", "-n", ns]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/social\s+expire\s+7 -> 0/);
    expect(run.stdout).toMatch(/social\s+prewarm\s+0 -> 2/);
    expect(record(await ksvc(ns, "social"))).toEqual({ min: 2, previousMin: "0", until: null });
    expect(minScale(await ksvc(ns, "auth"))).toBe("2");
  }, 180_000);

  it("refuses bad input with one line and exit 64, changing nothing", async () => {
    const ns = "prewarm-bad";
    await installed(ns, ["photos", "albums"]);
    const before = await versions(ns);
    for (const [args, message] of [
      [["prewarm", "nosuch"], /^snapmesh: unknown service 'nosuch' \(one of: auth, social, share-code, storage\)\n$/],
      [
        ["prewarm", "auth"],
        /^snapmesh: several snapmesh releases in namespace prewarm-bad \(albums, photos\): pass --release\n$/,
      ],
    ] as const) {
      const run = await snapmesh([...args, "-n", ns]);
      expect(run.stderr, args.join(" ")).toMatch(message);
      expect(run.code, args.join(" ")).toBe(64);
      expect(run.stdout).toBe("");
    }
    for (const [opts, message] of [
      [{ min: "0" }, /^snapmesh: --min must be a whole number of replicas, at least 1 \(got '0'\)\n$/],
      [{ min: "21" }, /^snapmesh: --min 21 is above auth's max-scale 20/],
      [{ for: "30 minutes" }, /^snapmesh: --for must be a duration such as 90s/],
      [{ undo: true, min: "3" }, /^snapmesh: --undo takes no --min or --for\n$/],
    ] as const) {
      const run = await direct(ns, (c) => prewarm(c, { service: "auth", release: "photos", undo: false, ...opts }, "table"));
      expect(run.stderr, JSON.stringify(opts)).toMatch(message);
      expect(run.code, JSON.stringify(opts)).toBe(64);
      expect(run.stdout).toBe("");
    }
    expect(await versions(ns)).toBe(before);

    const run = await direct(ns, (c) => prewarm(c, { service: "auth", release: "albums", undo: false }, "table"));
    expect(run.code).toBe(0);
    expect(minScale(await ksvc(ns, "auth", "albums"))).toBe("3");
    expect(minScale(await ksvc(ns, "auth", "photos"))).toBe("0");

    const missing = await direct(ns, (c) => prewarm(c, { service: "auth", release: "nope", undo: false }, "table"));
    expect(missing.code).toBe(66);
    expect(missing.stderr).toMatch(/^snapmesh: no snapmesh release 'nope' in namespace prewarm-bad \(found: albums, photos\)\n$/);
  }, 180_000);

  it("without RBAC rights: one line, exit 77, nothing changed", async () => {
    const ns = "prewarm-rbac";
    await installed(ns);
    const before = await versions(ns);
    const run = await snapmesh(["prewarm", "auth", "--min", "4", "-n", ns], kube.noRightsKubeconfig);
    expect(run.code).toBe(77);
    expect(run.stderr).toMatch(/^snapmesh: listing Knative Services in namespace prewarm-rbac: forbidden by RBAC: .*\n$/);
    expect(await versions(ns)).toBe(before);
  }, 180_000);
});

describe("snapmesh keys", () => {
  it("rotate auth: the new key signs, auth loads the Secret, tokens of the old key keep verifying", async () => {
    const ns = "keys-auth";
    const { authKeys } = await installed(ns);
    const oldRing = await KeyRing.fromJson(authKeys);
    const oldKid = oldRing.jwks().keys[0]!.kid;
    const { token: oldToken } = await oldRing.sign("u-old", "snapmesh-auth", 900);

    const run = await snapmesh(["keys", "rotate", "auth", "-n", ns, "-o", "json"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out).toMatchObject({ target: "auth", secret: "snapmesh-auth-keys", key: "keys.json", restarted: [] });
    expect(out.kids).toEqual([out.kid, oldKid]);
    expect(run.stdout).not.toMatch(/"d"/); // no private material without --show

    // What the auth service loads from its mounted file.
    const newRing = await KeyRing.fromJson(await secretValue(ns, "snapmesh-auth-keys", "keys.json"));
    const jwks = createLocalJWKSet(newRing.jwks());
    const verified = await jwtVerify(oldToken, jwks, { issuer: "snapmesh-auth", audience: SESSION_AUDIENCE });
    expect(verified.payload.sub).toBe("u-old");
    const { token: newToken } = await newRing.sign("u-new", "snapmesh-auth", 900);
    expect(decodeProtectedHeader(newToken).kid).toBe(out.kid);
    expect((await jwtVerify(newToken, jwks, { audience: SESSION_AUDIENCE })).payload.sub).toBe("u-new");

    // Rotating on keeps the newest 3, newest first.
    const kids = [out.kid, oldKid];
    for (let i = 0; i < 2; i++) {
      const again = JSON.parse((await direct(ns, (c) => rotate(c, { target: "auth", show: false }, "json"))).stdout);
      kids.unshift(again.kid);
    }
    const ring = await KeyRing.fromJson(await secretValue(ns, "snapmesh-auth-keys", "keys.json"));
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual(kids.slice(0, 3));
    await expect(jwtVerify(oldToken, createLocalJWKSet(ring.jwks()))).rejects.toThrow(); // the 4th is gone
  }, 180_000);

  it("rotate storage: a new kid signs, the old kid keeps verifying, and storage gets a Revision that reads them", async () => {
    const ns = "keys-storage";
    await installed(ns);
    const [old] = parseSigningKeys(OLD_STORAGE_KEY);
    const sha = "a".repeat(64);
    const expires = Math.floor(Date.now() / 1000) + 600;
    const oldSig = sign(old!, "GET", "photos/p1.jpg", sha, expires);
    const before = await ksvc(ns, "storage");

    const run = await snapmesh(["keys", "rotate", "storage", "-n", ns]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(
      /^rotated storage keys in Secret snapmesh-storage-keys \(keys\): \S+ signs; 1 previous key\(s\) keep verifying\n/,
    );
    expect(run.stdout).not.toContain(old!.secret.toString());

    const keys = parseSigningKeys(await secretValue(ns, "snapmesh-storage-keys", "keys"));
    expect(keys.map((k) => k.id)).toEqual([expect.stringMatching(/^\d{8}-[0-9a-f]{8}$/), "old-1"]);
    expect(keys[0]!.secret.length).toBe(43);
    const now = Math.floor(Date.now() / 1000);
    expect(verify(keys, "GET", "photos/p1.jpg", { expires: String(expires), kid: "old-1", sig: oldSig, v: sha }, now)).toEqual({
      ok: true,
      sha256: sha,
    });
    const newSig = sign(keys[0]!, "GET", "photos/p1.jpg", sha, expires);
    expect(
      verify(keys, "GET", "photos/p1.jpg", { expires: String(expires), kid: keys[0]!.id, sig: newSig, v: sha }, now).ok,
    ).toBe(true);

    // The keys reach storage as an env variable: only a new Revision reads them.
    const after = await ksvc(ns, "storage");
    expect(after.spec.template.metadata.annotations["snapmesh.dev/keys-rotated-at"]).toBeDefined();
    expect(before.spec.template.metadata.annotations["snapmesh.dev/keys-rotated-at"]).toBeUndefined();
    expect((await ksvc(ns, "auth")).spec.template.metadata.annotations["snapmesh.dev/keys-rotated-at"]).toBeUndefined();
  }, 180_000);

  it("list shows the kids and the signer, never key material; --show prints the new key with a warning", async () => {
    const ns = "keys-list";
    const { authKeys } = await installed(ns);
    const rotated = await snapmesh(["keys", "rotate", "storage", "--show", "-n", ns, "-o", "json"]);
    expect(rotated.code).toBe(0);
    expect(rotated.stderr).toMatch(/^warning: the new private key is printed on stdout/);
    const { kid, privateKey } = JSON.parse(rotated.stdout);
    expect(privateKey).toMatch(new RegExp(`^${kid}:[A-Za-z0-9_-]{43}$`));
    expect(await secretValue(ns, "snapmesh-storage-keys", "keys")).toMatch(new RegExp(`^${privateKey},old-1:`));

    const run = await snapmesh(["keys", "list", "-n", ns, "-o", "json"]);
    expect(run.code).toBe(0);
    const authKid = JSON.parse(authKeys).keys[0].kid;
    expect(JSON.parse(run.stdout)).toEqual({
      namespace: ns,
      release: "photos",
      secrets: [
        { target: "auth", secret: "snapmesh-auth-keys", key: "keys.json", signing: authKid, kids: [authKid], missing: false },
        { target: "storage", secret: "snapmesh-storage-keys", key: "keys", signing: kid, kids: [kid, "old-1"], missing: false },
      ],
    });
    const table = await direct(ns, (c) => list(c, {}, "table"));
    expect(table.stdout).toMatch(new RegExp(`storage\\s+snapmesh-storage-keys\\s+${kid}\\s+old-1`));
    for (const out of [run.stdout, table.stdout]) {
      expect(out).not.toContain(privateKey.split(":")[1]);
      expect(out).not.toContain(JSON.parse(authKeys).keys[0].d);
    }
  }, 180_000);

  it("forbidden by RBAC: one line, exit 77, the Secret unchanged", async () => {
    const ns = "keys-rbac";
    await installed(ns);
    const before = await versions(ns);
    const none = await snapmesh(["keys", "rotate", "auth", "-n", ns], kube.noRightsKubeconfig);
    expect(none.code).toBe(77);
    expect(none.stderr).toMatch(/^snapmesh: listing Knative Services in namespace keys-rbac: forbidden by RBAC: .*\n$/);

    // May read everything but not write the Secret: the failure comes at the write, and nothing is half done.
    await kube.kubectl([
      "create",
      "role",
      "reader",
      "-n",
      ns,
      "--verb=get,list",
      "--resource=services.serving.knative.dev,secrets",
    ]);
    await kube.kubectl(["create", "rolebinding", "reader", "-n", ns, "--role=reader", "--user=snapmesh-nobody"]);
    const writes = [
      await snapmesh(["keys", "rotate", "auth", "-n", ns], kube.noRightsKubeconfig),
      await direct(ns, (c) => rotate(c, { target: "storage", show: false }, "table"), kube.noRightsKubeconfig),
    ];
    for (const [i, target] of ["auth", "storage"].entries()) {
      expect(writes[i]!.code).toBe(77);
      expect(writes[i]!.stderr).toMatch(
        new RegExp(`^snapmesh: writing Secret snapmesh-${target}-keys: forbidden by RBAC: .*\\n$`),
      );
    }
    expect(await versions(ns)).toBe(before);
    expect((await direct(ns, (c) => list(c, {}, "table"), kube.noRightsKubeconfig)).code).toBe(0);
  }, 180_000);

  it("never rotates over keys the service could not load", async () => {
    const ns = "keys-broken";
    await installed(ns);
    const broken = JSON.stringify({ keys: [{ kty: "EC", crv: "P-256", x: "ZZ", y: "ZZ", d: "ZZ", kid: "k1" }] });
    await kube
      .kubectl([
        "create",
        "secret",
        "generic",
        "snapmesh-auth-keys",
        "-n",
        ns,
        `--from-literal=keys.json=${broken}`,
        "--dry-run=client",
        "-o",
        "yaml",
      ])
      .then((y) => kube.kubectl(["replace", "-f", "-"], y));
    await kube
      .kubectl([
        "create",
        "secret",
        "generic",
        "snapmesh-storage-keys",
        "-n",
        ns,
        "--from-literal=keys=k1:short",
        "--dry-run=client",
        "-o",
        "yaml",
      ])
      .then((y) => kube.kubectl(["replace", "-f", "-"], y));
    const before = await versions(ns);
    for (const target of ["auth", "storage"]) {
      const run = await direct(ns, (c) => rotate(c, { target, show: false }, "table"));
      expect(run.code, target).toBe(1);
      expect(run.stderr, target).toMatch(
        new RegExp(`^snapmesh: the ${target} key Secret holds keys ${target} cannot load \\(.+\\): nothing changed\\n$`),
      );
    }
    expect(await versions(ns)).toBe(before);
  }, 180_000);

  it("refuses an unknown target with exit 64", async () => {
    const run = await snapmesh(["keys", "rotate", "social", "-n", "default"]);
    expect(run.code).toBe(64);
    expect(run.stderr).toBe("snapmesh: cannot rotate 'social' (one of: auth, storage)\n");
  });
});
