import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { renderSubscriptions, SUBSCRIPTIONS_FILE } from "../../scripts/src/chart-subscriptions.ts";
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
          group === "v1" || ["apps", "batch", "networking.k8s.io"].includes(group!),
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

  it("makes exactly the Triggers the services' subscription declarations call for", async () => {
    expect(readFileSync(SUBSCRIPTIONS_FILE, "utf8"), "files/subscriptions.yaml is stale: run `npm run chart:subscriptions`").toBe(
      await renderSubscriptions(),
    );
    const declared = parse(await renderSubscriptions()) as Record<string, string[]>;
    const triggers = render().filter((o) => o.kind === "Trigger") as Array<
      K8sObject & { spec: { filter: { attributes: { type: string } }; subscriber: { ref: { name: string } } } }
    >;
    const rendered = triggers
      .map((t) => `${t.spec.subscriber.ref.name.replace("photos-snapmesh-", "")} ${t.spec.filter.attributes.type}`)
      .sort();
    const expected = Object.entries(declared)
      .flatMap(([svc, types]) => types.map((t) => `${svc} ${t}`))
      .sort();
    expect(rendered).toEqual(expected);
    expect(expected).toContain("social snapmesh.storage.object.deleted");
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
    expect(squid).toContain("acl allowed dstdomain api.weixin.qq.com");
    expect(squid).toContain("acl Safe_ports port 80 443 8443");
    expect(squid).toMatch(/http_access deny all/);
    const policies = objects.filter((o) => o.kind === "NetworkPolicy").map((o) => o.metadata.name);
    expect(policies).toEqual(["photos-snapmesh-no-direct-egress", "photos-snapmesh-egress-proxy"]);
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
    expect(() => helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "egress.mode=istio"])).toThrow(
      /egress\.mode/,
    );
    expect(() => helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "egress.mode=cilium"])).toThrow(/egress/);
    expect(() => helm(["template", "x", CHART, "--kube-version", KUBE_VERSION, "--set", "storage.backend=fs"])).toThrow(
      /storage\.backend/,
    );
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
