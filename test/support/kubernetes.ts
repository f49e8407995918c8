import { execFile, spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { stopChild } from "../../scripts/src/processes.ts";
import { freePort } from "../../scripts/src/proxy.ts";
import { scratchDir } from "./service.ts";

export const KUBE_VERSION = process.env.KUBE_VERSION ?? "v1.34.4";
const KUBE_BIN = join(process.env.SNAPMESH_CACHE ?? join(homedir(), ".cache", "snapmesh"), `kube-${KUBE_VERSION}`);

export interface Kubernetes {
  kubeconfig: string;
  /** A kubeconfig for a user the API server knows but RBAC grants nothing (undefined on an outside cluster). */
  noRightsKubeconfig: string | undefined;
  /** Runs kubectl against the server; resolves with stdout, rejects with stderr in the message. */
  kubectl(args: string[], input?: string): Promise<string>;
  stop(): Promise<void>;
}

/** Why no API server can be had here, or undefined when one can (KUBECONFIG, or the local binaries). */
export function kubernetesMissing(): string | undefined {
  if (process.env.KUBECONFIG) return undefined;
  if (!existsSync(join(KUBE_BIN, "kube-apiserver")) || !existsSync(join(KUBE_BIN, "kubectl"))) {
    return `no kube-apiserver at ${KUBE_BIN}: run scripts/build-kube.sh (bash .ci/run does), or set KUBECONFIG`;
  }
  if (!etcdBinary()) return "no etcd: apt-get install etcd-server (bash .ci/run does), or set KUBECONFIG";
  return undefined;
}

function etcdBinary(): string | undefined {
  return ["/usr/bin/etcd", "/usr/local/bin/etcd"].find((p) => existsSync(p));
}

function kubectlBinary(): string {
  const local = join(KUBE_BIN, "kubectl");
  return existsSync(local) ? local : "kubectl";
}

/**
 * A real Kubernetes API server: the cluster KUBECONFIG names, or else etcd and kube-apiserver started on
 * loopback on free ports in a scratch folder (self-signed serving certificate, a system:masters token,
 * RBAC and the default admission plugins, Pod Security included). No controllers run: what they would do
 * (Jobs completing, ServiceAccounts appearing) the tests do themselves.
 */
export async function kubernetes(): Promise<Kubernetes> {
  const missing = kubernetesMissing();
  if (missing) throw new Error(missing);
  if (process.env.KUBECONFIG) {
    const kubeconfig = process.env.KUBECONFIG;
    return {
      kubeconfig,
      noRightsKubeconfig: undefined,
      kubectl: (args, input) => kubectl(kubeconfig, args, input),
      stop: async () => {},
    };
  }
  const dir = scratchDir("kube");
  const [etcdClient, etcdPeer, apiPort] = await distinctPorts(3);
  const etcd = spawn(
    etcdBinary()!,
    [
      "--name=test",
      `--data-dir=${join(dir, "etcd")}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=test=http://127.0.0.1:${etcdPeer}`,
      "--listen-metrics-urls=",
      "--log-level=error",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const etcdLog: string[] = [];
  etcd.stderr!.on("data", (d) => etcdLog.push(String(d)));

  const token = randomBytes(24).toString("hex");
  const nobodyToken = randomBytes(24).toString("hex");
  writeFileSync(join(dir, "tokens.csv"), `${token},snapmesh-test,1,"system:masters"\n${nobodyToken},snapmesh-nobody,2\n`, {
    mode: 0o600,
  });
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  writeFileSync(join(dir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
  writeFileSync(join(dir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
  mkdirSync(join(dir, "certs"), { recursive: true });
  const api = spawn(
    join(KUBE_BIN, "kube-apiserver"),
    [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, "certs")}`,
      `--token-auth-file=${join(dir, "tokens.csv")}`,
      "--authorization-mode=RBAC",
      `--service-account-key-file=${join(dir, "sa.pub")}`,
      `--service-account-signing-key-file=${join(dir, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      "--service-cluster-ip-range=10.96.0.0/16",
      "--allow-privileged=false",
      "--profiling=false",
      "--v=0",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const apiLog: string[] = [];
  api.stderr!.on("data", (d) => apiLog.push(String(d)));

  const writeKubeconfig = (file: string, user: string, userToken: string) => {
    writeFileSync(
      file,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        `- name: test\n  cluster:\n    server: https://127.0.0.1:${apiPort}\n    insecure-skip-tls-verify: true`,
        `users:\n- name: ${user}\n  user:\n    token: ${userToken}`,
        `contexts:\n- name: test\n  context:\n    cluster: test\n    user: ${user}`,
        "current-context: test",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    return file;
  };
  const kubeconfig = writeKubeconfig(join(dir, "kubeconfig"), "admin", token);
  const noRightsKubeconfig = writeKubeconfig(join(dir, "kubeconfig-nobody"), "nobody", nobodyToken);
  const stop = async () => {
    await stopChild(api, "SIGTERM", 10_000);
    await stopChild(etcd, "SIGTERM", 10_000);
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await kubectl(kubeconfig, ["get", "--raw", "/readyz"]).then(
      (out) => out.trim() === "ok",
      () => false,
    );
    if (ok) break;
    if (api.exitCode !== null || etcd.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `the test API server did not become ready:\n${apiLog.join("").slice(-3000)}\n${etcdLog.join("").slice(-1000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { kubeconfig, noRightsKubeconfig, kubectl: (args, input) => kubectl(kubeconfig, args, input), stop };
}

function kubectl(kubeconfig: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectlBinary(),
      ["--kubeconfig", kubeconfig, ...args],
      { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`kubectl ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout)),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

async function distinctPorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < n) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  return ports;
}
