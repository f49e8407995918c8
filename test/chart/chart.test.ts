import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVICES } from "@snapmesh/events";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { chartServices, MANIFEST_FILE, renderChartManifest } from "../../scripts/src/chart-manifest.ts";
import { findBinary, goBinDirs } from "../../scripts/src/processes.ts";
import { MATRIX } from "./matrix.ts";
import { CRD_ROOT, crdValidators, type K8sObject, parseManifests, validateCore } from "./validate.ts";

const CHART = fileURLToPath(new URL("../../charts/snapmesh", import.meta.url));
const HELM = findBinary("helm", goBinDirs());
const KUBE_VERSION = "1.30.0";

function helm(args: string[]): string {
  if (!HELM) throw new Error("helm is not installed: `go install helm.sh/helm/v3/cmd/helm@v3.16.4` (bash .ci/run does it)");
  return execFileSync(HELM, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

type PodSpec = { containers?: Array<{ image: string }> };

const render = (sets: string[] = []) =>
  parseManifests(
    helm([
      "template",
      "photos",
      CHART,
      "--namespace",
      "photos",
      "--kube-version",
      KUBE_VERSION,
      ...sets.flatMap((s) => ["--set", s]),
    ]),
  );

const PROXY_SETS = [
  "egress.mode=proxy",
  "egress.allowHosts={api.weixin.qq.com,*.weixin.qq.com,legacy.internal.example:8443}",
  "egress.proxy.nodeSelector.snapmesh/egress=true",
  "egress.noProxy={db.example.com}",
];
const ISTIO_HOSTS = ["api.weixin.qq.com", "legacy.internal.example:8443"];

let validators: ReturnType<typeof crdValidators>;
beforeAll(() => {
  validators = crdValidators();
});

describe("helm chart", () => {
  it.each(MATRIX)("lints and renders valid objects: %s", async (_name, sets) => {
    helm(["lint", CHART, "--strict", "--kube-version", KUBE_VERSION, ...sets.flatMap((s) => ["--set", s])]);
    const objects = render(sets);
    expect(objects.length).toBeGreaterThan(4);
    for (const obj of objects) {
      const [group] = obj.apiVersion.split("/");
      const validate = validators.get(`${obj.apiVersion}/${obj.kind}`);
      if (validate) {
        const ok = validate(obj);
        expect(ok, `${obj.kind} ${obj.metadata.name}: ${JSON.stringify(validate.errors)}`).toBe(true);
      } else {
        expect(
          group === "v1" || ["apps", "batch", "networking.k8s.io", "policy"].includes(group!),
          `no schema for ${obj.apiVersion} ${obj.kind}`,
        ).toBe(true);
        await validateCore(obj);
      }
    }
  });

  it("renders one Knative Service per enabled service with the autoscaling settings and probes", () => {
    const ksvcs = render(["services.social.minScale=2", "services.social.maxScale=80"]).filter(
      (o) => o.kind === "Service" && o.apiVersion.startsWith("serving"),
    );
    expect(ksvcs.map((k) => k.metadata.name).sort()).toEqual([
      "photos-snapmesh-auth",
      "photos-snapmesh-share-code",
      "photos-snapmesh-social",
      "photos-snapmesh-storage",
    ]);
    const social = ksvcs.find((k) => k.metadata.name.endsWith("social")) as K8sObject & {
      spec: {
        template: {
          metadata: { annotations: Record<string, string> };
          spec: { containers: Array<{ readinessProbe: unknown; env: Array<{ name: string; value?: string }> }> };
        };
      };
    };
    expect(social.spec.template.metadata.annotations).toMatchObject({
      "autoscaling.knative.dev/min-scale": "2",
      "autoscaling.knative.dev/max-scale": "80",
    });
    const container = social.spec.template.spec.containers[0]!;
    expect(container.readinessProbe).toEqual({ httpGet: { path: "/readyz" } });
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ EVENT_SINK: "http", EVENT_CONSUMERS: "off", MIGRATE_ON_START: "0" });
    expect(env.SNAPMESH_JWKS_URL).toBe("http://photos-snapmesh-auth.photos.svc.cluster.local/.well-known/jwks.json");
  });

  it("gives each service only its own event key, makes no anonymous purge door, and hides what is not public", () => {
    const objects = render(["services.storage.public=false"]);
    type Ksvc = K8sObject & {
      metadata: { labels: Record<string, string> };
      spec: {
        template: {
          spec: {
            containers: Array<{ env: Array<{ name: string; value?: string }> }>;
            volumes: Array<{ name: string; secret: { secretName: string; items?: Array<{ key: string; path: string }> } }>;
          };
        };
      };
    };
    const ksvcs = objects.filter((o) => o.apiVersion.startsWith("serving")) as Ksvc[];
    for (const k of ksvcs) {
      const name = k.metadata.name.replace("photos-snapmesh-", "");
      const volume = k.spec.template.spec.volumes.find((v) => v.name === "event-keys")!;
      expect(volume.secret.secretName).toBe("snapmesh-event-keys");
      expect(volume.secret.items).toEqual([
        { key: `${name}.json`, path: "signing.json" },
        { key: "trust.json", path: "trust.json" },
      ]);
      const env = Object.fromEntries(k.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
      expect(env.SNAPMESH_EVENT_SIGNING_KEYS_FILE).toBe("/var/run/snapmesh/event-keys/signing.json");
      const visibility = k.metadata.labels["networking.knative.dev/visibility"];
      expect(visibility, name).toBe(name === "storage" ? "cluster-local" : undefined);
    }
    expect(objects.some((o) => o.kind === "PingSource")).toBe(false);
    const purge = objects.find((o) => o.kind === "CronJob") as K8sObject & {
      spec: { schedule: string; jobTemplate: { spec: { template: { spec: { containers: Array<{ args: string[] }> } } } } };
    };
    expect(purge.spec.schedule).toBe("*/15 * * * *");
    expect(purge.spec.jobTemplate.spec.template.spec.containers[0]!.args).toEqual(["purge"]);
  });

  it("makes exactly the Triggers the manifest's subscriptions call for, and the services' fact handlers match them", async () => {
    expect(readFileSync(MANIFEST_FILE, "utf8"), "files/services.yaml is stale: run `npm run chart:manifest`").toBe(
      renderChartManifest(),
    );
    const triggers = render().filter((o) => o.kind === "Trigger") as Array<
      K8sObject & { spec: { filter: { attributes: { type: string } }; subscriber: { ref: { name: string } } } }
    >;
    const rendered = triggers
      .map((t) => `${t.spec.subscriber.ref.name.replace("photos-snapmesh-", "")} ${t.spec.filter.attributes.type}`)
      .sort();
    const expected = chartServices()
      .flatMap((svc) => svc.subscribes.map((t) => `${svc.name} ${t}`))
      .sort();
    expect(rendered).toEqual(expected);
    expect(expected).toContain("social snapmesh.storage.object.deleted");
    for (const svc of chartServices()) {
      const module = (await import(`../../services/${svc.name}/src/service.ts`)) as Record<string, unknown>;
      const definition = Object.values(module).find(
        (v): v is { name: string; subscriptions: string[] } => (v as { name?: unknown })?.name === svc.name,
      );
      expect([...(definition?.subscriptions ?? ["no definition"])].sort(), svc.name).toEqual(svc.subscribes);
    }
  });

  it("keeps every service of the manifest inside the egress policies (proxy and istio modes)", () => {
    for (const sets of [PROXY_SETS, ["egress.mode=istio", `egress.allowHosts={${ISTIO_HOSTS.join(",")}}`]]) {
      const policies = render(sets).filter((o) => o.kind === "NetworkPolicy") as Array<
        K8sObject & {
          spec: { podSelector: { matchExpressions?: Array<{ key: string; values: string[] }> } };
        }
      >;
      const selecting = policies.filter((p) =>
        p.spec.podSelector.matchExpressions?.some((e) => e.key === "app.kubernetes.io/component"),
      );
      expect(selecting.length, sets.join(" ")).toBeGreaterThan(0);
      for (const p of selecting) {
        const components = p.spec.podSelector.matchExpressions!.find((e) => e.key === "app.kubernetes.io/component")!;
        expect([...components.values].sort(), p.metadata.name).toEqual([...SERVICES].sort());
      }
    }
  });

  it("gives each service the URL of every peer the manifest says it calls", () => {
    const ksvcs = render().filter((o) => o.apiVersion.startsWith("serving")) as Array<
      K8sObject & { spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } } } }
    >;
    for (const svc of chartServices()) {
      const ksvc = ksvcs.find((k) => k.metadata.name === `photos-snapmesh-${svc.name}`);
      const env = ksvc?.spec.template.spec.containers[0]?.env ?? [];
      for (const peer of svc.calls) {
        expect(env.find((e) => e.name === peer.variable)?.value, `${svc.name} ${peer.variable}`).toBe(
          `http://photos-snapmesh-${peer.service}.photos.svc.cluster.local`,
        );
      }
    }
  });

  it("in proxy mode, routes every service through the proxy and blocks any other way out", () => {
    const objects = render(["egress.mode=proxy", "egress.allowHosts={api.weixin.qq.com,legacy.internal.example:8443}"]);
    const ksvcs = objects.filter((o) => o.apiVersion.startsWith("serving")) as Array<
      K8sObject & { spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } } } }
    >;
    for (const k of ksvcs) {
      const env = Object.fromEntries(k.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
      expect(env.EGRESS_PROXY).toBe("http://photos-snapmesh-egress-proxy.photos.svc.cluster.local:3128");
      expect(env.EGRESS_REQUIRE_PROXY).toBe("1");
      expect(env.EGRESS_ALLOW_HOSTS).toBe("api.weixin.qq.com,legacy.internal.example:8443");
    }
    const squid = (
      objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.endsWith("egress-proxy")) as K8sObject & {
        data: Record<string, string>;
      }
    ).data["squid.conf"]!;
    expect(squid).toMatch(/http_access deny all\n/);
    const policies = objects.filter((o) => o.kind === "NetworkPolicy").map((o) => o.metadata.name);
    expect(policies).toEqual(["photos-snapmesh-no-direct-egress", "photos-snapmesh-egress-proxy", "photos-snapmesh-storage-s3"]);
    const deployment = objects.find((o) => o.kind === "Deployment") as K8sObject & { spec: { replicas: number } };
    expect(deployment.spec.replicas).toBe(2);
  });

  it("runs images by digest when image.digests names them, by tag otherwise", () => {
    const auth = `sha256:${"a".repeat(64)}`;
    const shareCode = `sha256:${"b".repeat(64)}`;
    const images = render([
      "image.registry=localhost:5000",
      `image.digests.auth=${auth}`,
      `image.digests.share-code=${shareCode}`,
    ]).flatMap((o) => {
      const pod = (o as { spec?: { template?: { spec?: PodSpec }; jobTemplate?: { spec: { template: { spec: PodSpec } } } } })
        .spec;
      const spec = pod?.template?.spec ?? pod?.jobTemplate?.spec.template.spec;
      return (spec?.containers ?? []).map((c) => `${o.kind}/${o.metadata.name}: ${c.image}`);
    });
    expect(images).toContain(`Service/photos-snapmesh-auth: localhost:5000/snapmesh-auth@${auth}`);
    expect(images).toContain(`Service/photos-snapmesh-share-code: localhost:5000/snapmesh-share-code@${shareCode}`);
    expect(images).toContain("Service/photos-snapmesh-social: localhost:5000/snapmesh-social:0.1.0");
    // The migration Job and the purge CronJob run the very same image.
    expect(images.filter((i) => i.includes(`snapmesh-share-code@${shareCode}`)).length).toBeGreaterThan(1);
    expect(() => helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "image.digests.auth=latest"])).toThrow(
      /digests/,
    );
    expect(() =>
      helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", `image.digests.shareCode=${auth}`]),
    ).toThrow(/digests/);
  });

  it("refuses values that cannot work, with the schema's message", () => {
    expect(() => helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "egress.mode=nginx"])).toThrow(
      /egress\.mode/,
    );
    expect(() => helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "egress.mode=cilium"])).toThrow(/egress/);
    expect(() => helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "storage.backend=fs"])).toThrow(
      /storage\.backend/,
    );
  });
});

type Container = {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  securityContext?: Record<string, unknown>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
};
type Pod = { securityContext?: Record<string, unknown>; nodeSelector?: Record<string, unknown>; containers: Container[] };
type Workload = K8sObject & { spec: { template: { spec: Pod } } };
type Rule = { to?: Array<Record<string, unknown>>; ports?: Array<{ protocol: string; port: number }> };
type Policy = K8sObject & { spec: { podSelector: unknown; egress: Rule[] } };

const named = <T extends K8sObject>(objects: K8sObject[], kind: string, name: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name === name) as T | undefined;
const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
const KUBE_DNS = {
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
  podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
};

/** Every rule that lets port 53 through goes to kube-dns only. */
function expectDnsOnlyToKubeDns(policy: Policy): void {
  const dns = policy.spec.egress.filter((r) => !r.ports || r.ports.some((p) => p.port === 53));
  expect(dns.length, policy.metadata.name).toBeGreaterThan(0);
  for (const rule of dns) {
    if (!rule.ports) {
      // A rule without ports must name in-cluster peers, never the open internet.
      expect(JSON.stringify(rule.to ?? "any"), policy.metadata.name).not.toMatch(/0\.0\.0\.0\/0|"any"/);
      continue;
    }
    expect(rule.to, policy.metadata.name).toEqual([KUBE_DNS]);
    expect(rule.ports).toEqual([
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 53 },
    ]);
  }
}

describe("helm chart egress", () => {
  it("renders --set label values as strings (the README's `nodeSelector.snapmesh/egress=true`)", () => {
    const proxy = named<Workload>(render(PROXY_SETS), "Deployment", "photos-snapmesh-egress-proxy")!;
    expect(proxy.spec.template.spec.nodeSelector).toEqual({ "snapmesh/egress": "true" });
    const cilium = named<K8sObject & { spec: { egressGateway: { nodeSelector: { matchLabels: unknown } } } }>(
      render(["egress.mode=cilium", "egress.cilium.egressIP=203.0.113.10", "egress.cilium.nodeSelector.egress=true"]),
      "CiliumEgressGatewayPolicy",
      "photos-snapmesh-egress",
    )!;
    expect(cilium.spec.egressGateway.nodeSelector.matchLabels).toEqual({ egress: "true" });
  });

  it("proxy: squid allows each host on its own port only, and `*.x` as `.x` (squid takes `*` literally)", () => {
    const squid = named<K8sObject & { data: Record<string, string> }>(
      render(PROXY_SETS),
      "ConfigMap",
      "photos-snapmesh-egress-proxy",
    )!.data["squid.conf"]!;
    const allowed = [...squid.matchAll(/^http_access allow (\S+) (\S+) (\S+)$/gm)].map(([, method, host, port]) => {
      const acl = (name: string) =>
        squid
          .match(new RegExp(`^acl ${name} (\\S+) (.+)$`, "m"))!
          .slice(1)
          .join(" ");
      return `${acl(method!)} | ${acl(host!)} | ${acl(port!)}`;
    });
    expect(allowed).toEqual([
      "method CONNECT | dstdomain api.weixin.qq.com | port 443",
      "method CONNECT | dstdomain .weixin.qq.com | port 443",
      "method CONNECT | dstdomain legacy.internal.example | port 8443",
    ]);
    expect(squid).not.toMatch(/dstdomain \*/);
    expect(squid.split("\n").filter((l) => l.startsWith("http_access"))).toEqual([
      "http_access allow snapmesh_connect host_0 port_0",
      "http_access allow snapmesh_connect host_1 port_1",
      "http_access allow snapmesh_connect host_2 port_2",
      "http_access deny all",
    ]);
    for (const line of ["cache deny all", "pid_filename none", "access_log stdio:/dev/stdout", "cache_log stdio:/dev/stderr"])
      expect(squid).toContain(line);
  });

  it("proxy: DNS only to kube-dns; S3 reached directly by storage alone; the proxy only on the allowed ports", () => {
    const objects = render(PROXY_SETS);
    const services = named<Policy>(objects, "NetworkPolicy", "photos-snapmesh-no-direct-egress")!;
    const proxy = named<Policy>(objects, "NetworkPolicy", "photos-snapmesh-egress-proxy")!;
    expectDnsOnlyToKubeDns(services);
    expectDnsOnlyToKubeDns(proxy);
    expect(proxy.spec.egress.filter((r) => !r.to)).toEqual([
      {
        ports: [
          { protocol: "TCP", port: 443 },
          { protocol: "TCP", port: 8443 },
        ],
      },
    ]);
    const s3 = named<Policy>(objects, "NetworkPolicy", "photos-snapmesh-storage-s3")!;
    expect(s3.spec.podSelector).toEqual({
      matchLabels: { "app.kubernetes.io/instance": "photos", "app.kubernetes.io/component": "storage" },
    });
    expect(s3.spec.egress).toEqual([{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: [{ protocol: "TCP", port: 443 }] }]);
    const nats = render([...PROXY_SETS, "storage.backend=nats"]);
    expect(named(nats, "NetworkPolicy", "photos-snapmesh-storage-s3")).toBeUndefined();
  });

  it("proxy: every service gets HTTPS_PROXY and a NO_PROXY naming the cluster, the Broker, NATS, S3 and egress.noProxy", () => {
    const objects = render([...PROXY_SETS, "storage.s3.endpoint=https://objects.example.com:9443"]);
    const ksvcs = objects.filter((o) => o.apiVersion.startsWith("serving")) as Workload[];
    expect(ksvcs).toHaveLength(SERVICES.length);
    for (const k of ksvcs) {
      const env = envOf(k.spec.template.spec.containers[0]!);
      expect(env.HTTPS_PROXY, k.metadata.name).toBe("http://photos-snapmesh-egress-proxy.photos.svc.cluster.local:3128");
      expect(env.NO_PROXY?.split(","), k.metadata.name).toEqual([
        "localhost",
        "127.0.0.1",
        ".svc",
        ".cluster.local",
        "broker-ingress.knative-eventing.svc.cluster.local",
        "nats.nats.svc.cluster.local",
        "objects.example.com",
        "db.example.com",
      ]);
    }
    const s3 = named<Policy>(objects, "NetworkPolicy", "photos-snapmesh-storage-s3")!;
    expect(s3.spec.egress[0]!.ports).toEqual([{ protocol: "TCP", port: 9443 }]);
    const aws = render(PROXY_SETS).filter((o) => o.apiVersion.startsWith("serving")) as Workload[];
    expect(envOf(aws[0]!.spec.template.spec.containers[0]!).NO_PROXY).toContain(",.amazonaws.com,");
  });

  it("proxy: a pair kept through disruptions, pinned by digest, that restricted Pod Security admits", () => {
    const objects = render(PROXY_SETS);
    const pdb = named<K8sObject & { spec: Record<string, unknown> }>(
      objects,
      "PodDisruptionBudget",
      "photos-snapmesh-egress-proxy",
    )!;
    expect(pdb.spec).toEqual({
      minAvailable: 1,
      selector: { matchLabels: { "app.kubernetes.io/instance": "photos", "app.kubernetes.io/component": "egress-proxy" } },
    });
    const pod = named<Workload>(objects, "Deployment", "photos-snapmesh-egress-proxy")!.spec.template.spec;
    const squid = pod.containers[0]!;
    expect(squid.image).toMatch(/^ubuntu\/squid@sha256:[a-f0-9]{64}$/);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 13, seccompProfile: { type: "RuntimeDefault" } });
    expect(squid.securityContext).toEqual({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(squid.command).toEqual(["squid"]);
    expect(squid.volumeMounts?.map((m) => m.mountPath)).toEqual(
      expect.arrayContaining(["/tmp", "/var/run/squid", "/var/spool/squid", "/var/log/squid"]),
    );
    expect(() =>
      helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "egress.proxy.image=ubuntu/squid:6.6-24.04_beta"]),
    ).toThrow(/egress\.proxy\.image/);
  });

  it("istio: ServiceEntry, SNI routes through the egress gateway (passthrough), REGISTRY_ONLY, and a NetworkPolicy", () => {
    const objects = render(["egress.mode=istio", `egress.allowHosts={${ISTIO_HOSTS.join(",")}}`]);
    const kinds = (kind: string) => objects.filter((o) => o.kind === kind && o.apiVersion.startsWith("networking.istio.io/"));
    const entries = kinds("ServiceEntry") as Array<K8sObject & { spec: { hosts: string[]; ports: Array<{ number: number }> } }>;
    expect(entries.map((e) => `${e.spec.hosts.join()}:${e.spec.ports[0]!.number}`).sort()).toEqual([
      "*.amazonaws.com:443",
      "api.weixin.qq.com:443",
      "legacy.internal.example:8443",
    ]);
    const gateway = kinds("Gateway")[0] as K8sObject & { spec: { selector: unknown; servers: Array<Record<string, unknown>> } };
    expect(gateway.spec.selector).toEqual({ istio: "egressgateway" });
    expect(gateway.spec.servers).toEqual([
      {
        port: { number: 443, name: "tls", protocol: "TLS" },
        hosts: ["api.weixin.qq.com", "legacy.internal.example"],
        tls: { mode: "PASSTHROUGH" },
      },
    ]);
    const gw = "istio-egressgateway.istio-system.svc.cluster.local";
    const legacy = (kinds("VirtualService") as Array<K8sObject & { spec: { hosts: string[]; tls: unknown } }>).find(
      (v) => v.spec.hosts[0] === "legacy.internal.example",
    )!;
    expect(legacy.spec.tls).toEqual([
      {
        match: [{ gateways: ["mesh"], port: 8443, sniHosts: ["legacy.internal.example"] }],
        route: [{ destination: { host: gw, subset: "snapmesh", port: { number: 443 } } }],
      },
      {
        match: [{ gateways: ["photos-snapmesh-egress"], port: 443, sniHosts: ["legacy.internal.example"] }],
        route: [{ destination: { host: "legacy.internal.example", port: { number: 8443 } } }],
      },
    ]);
    expect((kinds("DestinationRule")[0] as K8sObject & { spec: { host: string } }).spec.host).toBe(gw);
    const sidecar = kinds("Sidecar")[0] as K8sObject & { spec: Record<string, unknown> };
    expect(sidecar.spec.outboundTrafficPolicy).toEqual({ mode: "REGISTRY_ONLY" });
    const policy = named<Policy>(objects, "NetworkPolicy", "photos-snapmesh-no-direct-egress")!;
    expectDnsOnlyToKubeDns(policy);
    const peers = policy.spec.egress.flatMap((r) => r.to ?? []);
    expect(peers).toContainEqual({
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "istio-system" } },
      podSelector: { matchLabels: { istio: "egressgateway" } },
    });
    expect(peers).toContainEqual({
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "istio-system" } },
      podSelector: { matchLabels: { app: "istiod" } },
    });
    expect(JSON.stringify(peers)).not.toContain("0.0.0.0/0");
    // No proxy in istio mode: the sidecar and the gateway carry the calls.
    const env = envOf((objects.find((o) => o.apiVersion.startsWith("serving")) as Workload).spec.template.spec.containers[0]!);
    expect(env.EGRESS_PROXY).toBeUndefined();
    expect(() =>
      helm([
        "template",
        "x",
        CHART,
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "egress.mode=istio",
        "--set",
        "egress.allowHosts={*.weixin.qq.com}",
      ]),
    ).toThrow(/istio routes by SNI to one named host/);
  });
});

describe("vendored CRDs", () => {
  const shared = fileURLToPath(new URL("../../../shared/crds", import.meta.url));
  it.skipIf(!existsSync(shared))("k8s/crds matches shared/crds (run scripts/sync-crds.sh when it does not)", () => {
    const files = (root: string) =>
      readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith(".yaml"))
        .map((e) => join(e.parentPath, e.name).slice(root.length))
        .sort();
    expect(files(CRD_ROOT)).toEqual(files(shared));
    for (const f of files(shared)) expect(readFileSync(join(CRD_ROOT, f), "utf8"), f).toBe(readFileSync(join(shared, f), "utf8"));
  });
});

describe("helm chart install-time defects", () => {
  it("without Eventing renders no Eventing or Sources objects and keeps every consumer running (min-scale ≥ 1)", () => {
    const objects = render(["eventing.enabled=false", "services.social.minScale=0"]);
    expect(objects.filter((o) => /knative\.dev\/|^sources\./.test(o.apiVersion) && !o.apiVersion.startsWith("serving"))).toEqual(
      [],
    );
    for (const k of objects.filter((o) => o.apiVersion.startsWith("serving")) as Array<
      K8sObject & { spec: { template: { metadata: { annotations: Record<string, string> } } } }
    >) {
      expect(Number(k.spec.template.metadata.annotations["autoscaling.knative.dev/min-scale"])).toBeGreaterThanOrEqual(1);
    }
    expect(objects.some((o) => o.kind === "CronJob")).toBe(true);
  });

  it("sizes the channel's JetStream stream and sets a delivery timeout, valid against eventing-natss's schema", () => {
    const objects = render(["eventing.stream.replicas=3", "eventing.stream.maxBytes=5368709120"]);
    const cm = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.endsWith("-channel")) as K8sObject & {
      data: Record<string, string>;
    };
    const channel = { metadata: { name: "x" }, ...(parse(cm.data["channel-template-spec"]!) as object) } as K8sObject;
    const validate = validators.get(`${channel.apiVersion}/${channel.kind}`)!;
    expect(validate(channel), JSON.stringify(validate.errors)).toBe(true);
    expect(channel.spec).toMatchObject({
      stream: { config: { maxAge: "168h", maxBytes: 5368709120, replicas: 3 } },
      consumerConfigTemplate: { ackWait: "90s" },
    });
    for (const t of objects.filter((o) => o.kind === "Trigger" || o.kind === "Broker") as Array<
      K8sObject & { spec: { delivery: { timeout: string } } }
    >) {
      expect(t.spec.delivery.timeout).toBe("PT60S");
    }
  });

  it("keeps names unique and within limits for long release names, and the chart version off pod templates", () => {
    const long = parseManifests(
      helm(["template", "photos-production-eu-west-1-blue-release", CHART, "--kube-version", KUBE_VERSION]),
    );
    const names = long.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(names).size).toBe(names.length);
    for (const o of long) expect(o.metadata.name.length, o.metadata.name).toBeLessThanOrEqual(o.kind === "CronJob" ? 52 : 63);
    const ksvc = long.find((o) => o.apiVersion.startsWith("serving")) as K8sObject & {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    expect(ksvc.spec.template.metadata.labels["helm.sh/chart"]).toBeUndefined();
  });

  it("dead-letters each Trigger's failures to its subscriber's /dead-letters by default (the stream `snapmesh dlq` reads)", () => {
    type Trigger = K8sObject & {
      spec: {
        subscriber: { ref: { name: string } };
        delivery: { deadLetterSink: { ref?: { kind: string; name: string }; uri: string } };
      };
    };
    const objects = render();
    const triggers = objects.filter((o) => o.kind === "Trigger") as Trigger[];
    expect(triggers.length).toBeGreaterThan(0);
    for (const t of triggers) {
      expect(t.spec.delivery.deadLetterSink).toEqual({
        ref: { apiVersion: "serving.knative.dev/v1", kind: "Service", name: t.spec.subscriber.ref.name },
        uri: "/dead-letters",
      });
    }
    const ksvc = objects.find((o) => o.apiVersion.startsWith("serving")) as K8sObject & {
      spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } } };
    };
    expect(ksvc.spec.template.spec.containers[0]!.env).toContainEqual({ name: "DEAD_LETTERS", value: "nats" });
    const custom = render(["eventing.deadLetterUri=http://dlq.example.svc"]).filter((o) => o.kind === "Trigger") as Trigger[];
    for (const t of custom) expect(t.spec.delivery.deadLetterSink).toEqual({ uri: "http://dlq.example.svc" });
  });

  it("labels Services for SinkBinding inclusion, gives each its own token-less identity, and migrations only the database", () => {
    const objects = render();
    const ksvcs = objects.filter((o) => o.apiVersion.startsWith("serving")) as Array<
      K8sObject & { metadata: { labels: Record<string, string> }; spec: { template: { spec: { serviceAccountName: string } } } }
    >;
    const accounts = objects.filter((o) => o.kind === "ServiceAccount") as Array<
      K8sObject & { automountServiceAccountToken: boolean }
    >;
    for (const k of ksvcs) {
      expect(k.metadata.labels["bindings.knative.dev/include"]).toBe("true");
      const sa = accounts.find((a) => a.metadata.name === k.spec.template.spec.serviceAccountName);
      expect(sa?.automountServiceAccountToken, k.metadata.name).toBe(false);
    }
    const jobs = objects.filter((o) => o.kind === "Job") as Array<
      K8sObject & {
        spec: { activeDeadlineSeconds: number; template: { spec: { containers: Array<{ env: Array<{ name: string }> }> } } };
      }
    >;
    expect(jobs).toHaveLength(SERVICES.length);
    for (const job of jobs) {
      expect(job.spec.template.spec.containers[0]!.env.map((e) => e.name).sort()).toEqual(["DATABASE_URL", "LOG_LEVEL"]);
      expect(job.spec.activeDeadlineSeconds).toBeLessThan(300);
    }
  });
});

const setArgs = (...sets: string[]) => sets.flatMap((s) => ["--set", s]);
const jsonArg = (key: string, value: unknown) => ["--set-json", `${key}=${JSON.stringify(value)}`];
const templateArgs = (args: string[]) => ["template", "x", CHART, "--kube-version", KUBE_VERSION, ...args];
const lintArgs = (args: string[]) => ["lint", CHART, "--strict", "--kube-version", KUBE_VERSION, ...args];

/**
 * [what is wrong, helm arguments, the message naming the value, checked by the schema (so `helm lint` refuses it
 * too) or by templates/validate.yaml (`helm lint` ignores a template's `fail`)].
 */
const BAD_VALUES: Array<[string, string[], RegExp, "schema" | "template"]> = [
  ["a typo'd service key", setArgs("services.social.minscale=2"), /- services\.social: Additional property minscale/, "schema"],
  ["a typo'd top-level key", setArgs("egres.mode=proxy"), /- \(root\): Additional property egres is not allowed/, "schema"],
  ["a typo'd nested key", setArgs("storage.s3.buckt=photos"), /- storage\.s3: Additional property buckt/, "schema"],
  [
    "a typo'd OIDC key",
    setArgs("auth.oidc.issuerUrl=https://id.example.com"),
    /- auth\.oidc: Additional property issuerUrl/,
    "schema",
  ],
  ["scaleDownDelay 2h", setArgs("services.auth.scaleDownDelay=2h"), /- services\.auth\.scaleDownDelay:/, "schema"],
  ["scaleDownDelay 3601s", setArgs("services.auth.scaleDownDelay=3601s"), /- services\.auth\.scaleDownDelay:/, "schema"],
  ["scaleDownDelay 61m", setArgs("services.storage.scaleDownDelay=61m"), /- services\.storage\.scaleDownDelay:/, "schema"],
  [
    "minScale 5 > maxScale 2",
    setArgs("services.social.minScale=5", "services.social.maxScale=2"),
    /services\.social\.minScale \(5\) must not exceed services\.social\.maxScale \(2\)/,
    "template",
  ],
  [
    "headersTimeoutMs above requestTimeoutMs",
    setArgs("http.headersTimeoutMs=400000"),
    /http\.headersTimeoutMs \(400000\) must not exceed http\.requestTimeoutMs \(300000\)/,
    "template",
  ],
  ["a cron minute of 61", jsonArg("shareCode.expireSchedule", "61 * * * *"), /- shareCode\.expireSchedule:/, "schema"],
  ["a 4-field cron", jsonArg("shareCode.expireSchedule", "*/15 * * *"), /- shareCode\.expireSchedule:/, "schema"],
  ["a CIDR prefix of 33", setArgs("egress.clusterCIDRs={10.0.0.0/33}"), /- egress\.clusterCIDRs\.0:/, "schema"],
  ["an octet of 300", setArgs("egress.s3CIDRs={300.1.2.0/24}"), /- egress\.s3CIDRs\.0:/, "schema"],
  [
    "a Cilium egress IP that is no address",
    setArgs("egress.mode=cilium", "egress.cilium.egressIP=999.0.113.10", "egress.cilium.nodeSelector.egress=true"),
    /- egress\.cilium\.egressIP:/,
    "schema",
  ],
  ["an S3 bucket with capitals and _", setArgs("storage.s3.bucket=My_Photos"), /- storage\.s3\.bucket:/, "schema"],
  ["an S3 bucket shaped like an IP address", setArgs("storage.s3.bucket=192.168.1.10"), /- storage\.s3\.bucket:/, "schema"],
  ["an S3 bucket of 2 characters", setArgs("storage.s3.bucket=ab"), /- storage\.s3\.bucket:/, "schema"],
  ["an S3 endpoint without a scheme", setArgs("storage.s3.endpoint=minio.minio.svc:9000"), /- storage\.s3\.endpoint:/, "schema"],
  [
    "an S3 credentials Secret that is no name",
    setArgs("storage.s3.credentialsSecret=AWS_Keys"),
    /- storage\.s3\.credentialsSecret:/,
    "schema",
  ],
  [
    "an OIDC issuer that is not a URL",
    setArgs("auth.oidc.issuer=accounts.example.com", "auth.oidc.audience=photos"),
    /- auth\.oidc\.issuer:/,
    "schema",
  ],
  [
    "an OIDC issuer without an audience",
    setArgs("auth.oidc.issuer=https://accounts.example.com"),
    /- auth\.oidc\.audience:/,
    "schema",
  ],
  ["an OIDC audience without an issuer", setArgs("auth.oidc.audience=photos"), /- auth\.oidc\.audience:/, "schema"],
  ["a WeChat API base that is not a URL", setArgs("auth.wechat.apiBase=api.weixin.qq.com"), /- auth\.wechat\.apiBase:/, "schema"],
  [
    "a legacy permission URL that is not a URL",
    setArgs("auth.legacy.permissionUrl=legacy/api"),
    /- auth\.legacy\.permissionUrl:/,
    "schema",
  ],
  ["an ISO 8601 backoff without T", setArgs("eventing.backoffDelay=P0.5S"), /- eventing\.backoffDelay:/, "schema"],
  ["an ISO 8601 timeout without a unit", setArgs("eventing.deliveryTimeout=PT60"), /- eventing\.deliveryTimeout:/, "schema"],
  ["a Go duration in days", setArgs("eventing.stream.maxAge=7d"), /- eventing\.stream\.maxAge:/, "schema"],
  [
    "a resource quantity that is none",
    setArgs("services.auth.resources.requests.cpu=lots"),
    /- services\.auth\.resources\.requests\.cpu:/,
    "schema",
  ],
  ["an env name with a dash", setArgs("services.auth.env.LOG-FORMAT=json"), /- services\.auth\.env:/, "schema"],
  ["a database Secret that is no name", setArgs("database.secretName=Snapmesh_DB"), /- database\.secretName:/, "schema"],
];

/** Edge values that must pass: each boundary of the rules above, on the allowed side. */
const GOOD_VALUES: Array<[string, string[]]> = [
  [
    "scaleDownDelay at 1h in each spelling, and 0s",
    setArgs(
      "services.auth.scaleDownDelay=3600s",
      "services.social.scaleDownDelay=60m",
      "services.shareCode.scaleDownDelay=1h",
      "services.storage.scaleDownDelay=59m59s",
    ),
  ],
  [
    "minScale = maxScale, and minScale above maxScale 0 (no maximum)",
    setArgs("services.auth.minScale=5", "services.auth.maxScale=5", "services.social.minScale=5", "services.social.maxScale=0"),
  ],
  ["headersTimeoutMs = requestTimeoutMs", setArgs("http.headersTimeoutMs=300000")],
  ["a cron with lists, ranges, steps and names", jsonArg("shareCode.expireSchedule", "0,30 */2 1-15 JAN,jul ?")],
  ["a cron macro", jsonArg("shareCode.expireSchedule", "@hourly")],
  ["an empty cron (no purge)", jsonArg("shareCode.expireSchedule", "")],
  ["CIDRs at their bounds, IPv6 included", setArgs("egress.clusterCIDRs={0.0.0.0/0,255.255.255.255/32,fd00::/8,::1/128}")],
  [
    "S3 with a dotted 3- and a 63-character bucket and a MinIO endpoint",
    setArgs(
      "storage.s3.bucket=a.b",
      "storage.s3.endpoint=http://minio.minio.svc.cluster.local:9000",
      "storage.s3.forcePathStyle=true",
      "storage.s3.region=garage",
      "storage.s3.credentialsSecret=minio-keys",
    ),
  ],
  ["a 63-character S3 bucket", setArgs(`storage.s3.bucket=${"a".repeat(31)}.${"b".repeat(31)}`)],
  [
    "OIDC with issuer, audience and JWKS URL",
    setArgs(
      "auth.oidc.issuer=https://accounts.example.com/",
      "auth.oidc.audience=photos-app",
      "auth.oidc.jwksUrl=https://accounts.example.com/keys",
    ),
  ],
  ["ISO 8601 durations and no delivery timeout", setArgs("eventing.backoffDelay=PT1M30.5S", "eventing.deliveryTimeout=")],
  ["compound Go durations", setArgs("eventing.stream.maxAge=1h30m", "eventing.stream.ackWait=1m30s")],
  [
    "resources and env",
    setArgs(
      "services.auth.resources.requests.cpu=0.5",
      "services.auth.resources.limits.memory=1Gi",
      "services.auth.env.NODE_OPTIONS=--max-old-space-size=200",
    ),
  ],
];

/** What helm printed (stdout and stderr, not the command line) when it refused; fails the test if helm accepted. */
function refusal(args: string[]): string {
  try {
    helm(args);
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    return `${stdout ?? ""}${stderr ?? ""}`;
  }
  throw new Error(`helm ${args.join(" ")} accepted the values`);
}

describe("helm chart values schema", () => {
  it.each(BAD_VALUES)("refuses %s, naming the value", (_what, args, message, by) => {
    expect(refusal(templateArgs(args))).toMatch(message);
    if (by === "schema") expect(refusal(lintArgs(args))).toMatch(message);
  });

  it.each(GOOD_VALUES)("accepts %s", (_what, args) => {
    expect(helm(templateArgs(args))).toContain("kind: Service");
    helm(lintArgs(args));
  });
});

/** The real readme-generator-for-helm (a root devDependency), run the way `npm run chart:readme` runs it. */
const README_GENERATOR = join(
  dirname(createRequire(import.meta.url).resolve("@bitnami/readme-generator-for-helm/package.json")),
  "bin/index.js",
);

describe("chart README", () => {
  it("has the Parameters tables generated from values.yaml's @param comments, every value documented", () => {
    const dir = mkdtempSync(join(tmpdir(), "snapmesh-chart-readme-"));
    const schema = readFileSync(join(CHART, "values.schema.json"), "utf8");
    try {
      const readme = join(dir, "README.md");
      copyFileSync(join(CHART, "README.md"), readme);
      try {
        execFileSync(process.execPath, [README_GENERATOR, "--values", join(CHART, "values.yaml"), "--readme", readme], {
          encoding: "utf8",
          stdio: "pipe",
        });
      } catch (err) {
        // It refuses a value without @param, or a @param naming no value, and lists them on stdout.
        const { stdout } = err as { stdout?: string };
        throw new Error(
          `readme-generator refused charts/snapmesh:\n${stdout
            ?.split("\n")
            .filter((l) => l.startsWith("ERROR"))
            .join("\n")}`,
        );
      }
      expect(readFileSync(readme, "utf8"), "charts/snapmesh/README.md is stale: run `npm run chart:readme`").toBe(
        readFileSync(join(CHART, "README.md"), "utf8"),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // The schema is hand-written: the generator must never write it.
    expect(readFileSync(join(CHART, "values.schema.json"), "utf8")).toBe(schema);
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts["chart:readme"]).toMatch(/--readme charts\/snapmesh\/README\.md/);
    expect(pkg.scripts["chart:readme"]).not.toMatch(/--schema|\s-s\b/);
  });
});
