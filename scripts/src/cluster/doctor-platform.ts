// What the cluster must run before the chart: the CRDs its objects need, and the Knative settings that would
// make Knative's webhooks refuse them.
import type { V1ConfigMap } from "@kubernetes/client-node";
import { type Check, type DoctorContext, fail, type Probe, pass, type Reader, warn } from "./doctor-probe.js";
import { integer, text, type Values } from "./doctor-values.js";

// The versions k8s/crds vendors (the chart is tested against them).
const SERVING = "knative-v1.23.0";
const EVENTING = "knative-v1.22.2";
const NATSS = "knative-v1.22.0";
const eventingRelease = `https://github.com/knative/eventing/releases/download/${EVENTING}`;

export const INSTALL = {
  // Serving also needs a networking layer, so the guide, not one manifest.
  serving: `install Knative Serving ${SERVING.replace("knative-v", "")}+ (CRDs, core, a networking layer): https://knative.dev/docs/install/yaml-install/serving/install-serving-with-yaml/`,
  eventing: `kubectl apply -f ${eventingRelease}/eventing-crds.yaml -f ${eventingRelease}/eventing-core.yaml -f ${eventingRelease}/mt-channel-broker.yaml`,
  natss: `kubectl apply -f https://github.com/knative-extensions/eventing-natss/releases/download/${NATSS}/eventing-jsm.yaml`,
  cilium:
    "install Cilium 1.15+ with egressGateway.enabled=true: https://docs.cilium.io/en/stable/network/egress-gateway/egress-gateway/ (or choose another egress.mode)",
  istio:
    "install Istio 1.22+ with an egress gateway: https://istio.io/latest/docs/tasks/traffic-management/egress/egress-gateway/ (or choose another egress.mode)",
};

interface Crd {
  name: string;
  version: string;
  install: string;
}

/** The CRDs the rendered chart's objects need with these values. */
export function neededCrds(values: Values): Crd[] {
  const crds: Crd[] = [{ name: "services.serving.knative.dev", version: "v1", install: INSTALL.serving }];
  if (text(values, "eventing.enabled") === "true") {
    for (const name of ["brokers.eventing.knative.dev", "triggers.eventing.knative.dev", "sinkbindings.sources.knative.dev"])
      crds.push({ name, version: "v1", install: INSTALL.eventing });
    // The channel-based Broker's channel template names a NatsJetStreamChannel; the natss class needs none.
    if (text(values, "eventing.broker.class") === "channel")
      crds.push({ name: "natsjetstreamchannels.messaging.knative.dev", version: "v1alpha1", install: INSTALL.natss });
  }
  const mode = text(values, "egress.mode");
  if (mode === "cilium") crds.push({ name: "ciliumegressgatewaypolicies.cilium.io", version: "v2", install: INSTALL.cilium });
  if (mode === "istio")
    for (const kind of ["serviceentries", "gateways", "virtualservices", "destinationrules", "sidecars"])
      crds.push({ name: `${kind}.networking.istio.io`, version: "v1", install: INSTALL.istio });
  return crds;
}

export function crdProbe(ctx: DoctorContext, crd: Crd): Probe {
  const name = `crd ${crd.name}`;
  return {
    name,
    needs: "get customresourcedefinitions.apiextensions.k8s.io (cluster-wide)",
    async run(read) {
      const found = await read(`reading CRD ${crd.name}`, () =>
        ctx.cluster.apiext.readCustomResourceDefinition({ name: crd.name }),
      );
      if (!found) return [fail(name, `not installed (the chart needs ${crd.version})`, crd.install)];
      const served = found.spec.versions.filter((v) => v.served).map((v) => v.name);
      if (!served.includes(crd.version))
        return [fail(name, `serves ${served.join(", ") || "no version"}; the chart needs ${crd.version}`, crd.install)];
      const established = found.status?.conditions?.find((c) => c.type === "Established")?.status === "True";
      if (!established)
        return [fail(name, "not Established yet", `kubectl wait --for=condition=Established crd/${crd.name} --timeout=60s`)];
      return [pass(name, `${crd.version} served`)];
    },
  };
}

const patch = (namespace: string, configMap: string, key: string, value: string) =>
  `kubectl patch configmap ${configMap} -n ${namespace} --type merge -p '{"data":{"${key}":"${value}"}}'`;

const readConfigMap = (ctx: DoctorContext, read: Reader, namespace: string, name: string): Promise<V1ConfigMap | undefined> =>
  read(`reading ConfigMap ${namespace}/${name}`, () => ctx.cluster.core.readNamespacedConfigMap({ name, namespace }));

/** Knative's flag values, as its config parser reads them (case-insensitive; anything else keeps the default). */
function flag(value: string | undefined): "enabled" | "allowed" | "disabled" | undefined {
  const v = value?.toLowerCase();
  return v === "enabled" || v === "allowed" || v === "disabled" ? v : undefined;
}

/**
 * Knative Serving's feature flags the chart relies on. Only `kubernetes.podspec-volumes-emptydir` (the /tmp
 * volume under a read-only root filesystem): the chart sets its restricted securityContext per container
 * (runAsNonRoot, runAsUser/Group, no privilege escalation, capabilities, seccompProfile), which Knative allows
 * without a flag; a pod-level securityContext would need `kubernetes.podspec-securitycontext`, and
 * `secure-pod-defaults` only fills in what the chart already sets.
 */
export function servingFeaturesProbe(ctx: DoctorContext): Probe {
  const key = "kubernetes.podspec-volumes-emptydir";
  const name = `knative feature ${key}`;
  return {
    name,
    needs: "get configmaps in knative-serving",
    async run(read) {
      const cm = await readConfigMap(ctx, read, "knative-serving", "config-features");
      if (!cm)
        return [
          fail(name, "ConfigMap knative-serving/config-features not found: is Knative Serving installed?", INSTALL.serving),
        ];
      const state = flag(cm.data?.[key]);
      if (state === "disabled")
        return [
          fail(
            name,
            "disabled: every service mounts an emptyDir at /tmp (its root filesystem is read-only)",
            patch("knative-serving", "config-features", key, "enabled"),
          ),
        ];
      return [pass(name, state ?? "enabled (Knative's default)")];
    },
  };
}

/** Knative refuses a max-scale above the cluster's max-scale-limit, and max-scale 0 (unlimited) under any limit. */
export function autoscalerProbe(ctx: DoctorContext): Probe {
  const name = "knative max-scale-limit";
  return {
    name,
    needs: "get configmaps in knative-serving",
    async run(read) {
      const cm = await readConfigMap(ctx, read, "knative-serving", "config-autoscaler");
      if (!cm)
        return [
          warn(
            name,
            "ConfigMap knative-serving/config-autoscaler not found: cannot compare the services' maxScale with the cluster's limit",
            INSTALL.serving,
          ),
        ];
      const checks: Check[] = [];
      const limit = Number.parseInt(cm.data?.["max-scale-limit"] ?? "0", 10) || 0;
      const over = ctx.services
        .map((s) => ({ key: s.key, max: integer(ctx.values, `services.${s.key}.maxScale`) }))
        .filter((s) => limit > 0 && (s.max === 0 || s.max > limit));
      if (over.length)
        checks.push(
          fail(
            name,
            `max-scale-limit is ${limit}; Knative refuses ${over.map((s) => `services.${s.key}.maxScale=${s.max}`).join(", ")}`,
            `--set ${over.map((s) => `services.${s.key}.maxScale=${limit}`).join(",")} (or raise max-scale-limit in knative-serving/config-autoscaler)`,
          ),
        );
      else checks.push(pass(name, limit ? `${limit}: every service's maxScale is within it` : "none"));
      const toZero = "knative scale to zero";
      if (cm.data?.["enable-scale-to-zero"]?.toLowerCase() === "false")
        checks.push(
          warn(
            toZero,
            "enable-scale-to-zero is false: a service with minScale 0 keeps a pod running",
            patch("knative-serving", "config-autoscaler", "enable-scale-to-zero", "true"),
          ),
        );
      else checks.push(pass(toZero, "enabled"));
      return checks;
    },
  };
}

/** Eventing refuses a Broker or Trigger with `delivery.timeout` unless its delivery-timeout feature is enabled. */
export function deliveryTimeoutProbe(ctx: DoctorContext): Probe {
  const key = "delivery-timeout";
  const name = `knative feature ${key}`;
  return {
    name,
    needs: "get configmaps in knative-eventing",
    async run(read) {
      const cm = await readConfigMap(ctx, read, "knative-eventing", "config-features");
      if (!cm)
        return [
          fail(name, "ConfigMap knative-eventing/config-features not found: is Knative Eventing installed?", INSTALL.eventing),
        ];
      const value = cm.data?.[key];
      if (value !== undefined && value.toLowerCase() !== "enabled")
        return [
          fail(
            name,
            `${value}: the chart sets delivery.timeout (eventing.deliveryTimeout=${text(ctx.values, "eventing.deliveryTimeout")}) on the Broker and Triggers`,
            `${patch("knative-eventing", "config-features", key, "enabled")} (or --set eventing.deliveryTimeout=)`,
          ),
        ];
      return [pass(name, value ? "enabled" : "enabled (Knative Eventing's default since 1.16)")];
    },
  };
}
