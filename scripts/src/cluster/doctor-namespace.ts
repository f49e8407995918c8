// What the release namespace must hold before the chart: the namespace itself with a Pod Security level the
// chart's pods pass, and the Secrets the values name, with every key the pods read.
import { type Check, type DoctorContext, fail, type Probe, pass, warn } from "./doctor-probe.js";
import { text } from "./doctor-values.js";

const PSA = "pod-security.kubernetes.io/enforce";

export function namespaceProbe(ctx: DoctorContext): Probe {
  const ns = ctx.namespace;
  const label = `kubectl label namespace ${ns} ${PSA}=restricted --overwrite`;
  return {
    name: "namespace",
    needs: "get namespaces (cluster-wide)",
    async run(read) {
      const found = await read(`reading namespace ${ns}`, () => ctx.cluster.core.readNamespace({ name: ns }));
      if (!found)
        return [
          fail(
            "namespace",
            `${ns} does not exist`,
            `kubectl create namespace ${ns} && kubectl label namespace ${ns} ${PSA}=restricted`,
          ),
        ];
      const labels = found.metadata?.labels ?? {};
      const checks: Check[] = [pass("namespace", `${ns} exists`)];
      const level = labels[PSA];
      if (level === "restricted" || level === "baseline")
        checks.push(pass("pod security", `${PSA}=${level} (the chart's pods pass restricted)`));
      else if (level === undefined)
        checks.push(warn("pod security", `no ${PSA} label: the cluster's default level applies`, label));
      else checks.push(warn("pod security", `${PSA}=${level}: the chart's pods would pass restricted`, label));
      if (text(ctx.values, "egress.mode") === "istio") {
        // The egress path is the sidecar; a mesh-wide injection default is possible, so only a warning.
        const injected = labels["istio-injection"] === "enabled" || labels["istio.io/rev"] !== undefined;
        checks.push(
          injected
            ? pass("istio sidecar injection", "the namespace is labelled for injection")
            : warn(
                "istio sidecar injection",
                "no istio-injection=enabled or istio.io/rev label: without sidecars egress.mode=istio has no way out",
                `kubectl label namespace ${ns} istio-injection=enabled`,
              ),
        );
      }
      return checks;
    },
  };
}

interface SecretNeed {
  secret: string;
  keys: string[];
  purpose: string;
  /** The fix when the Secret is missing, and when keys are (default: create / patch with placeholders). */
  create?: string;
  addKeys?: string;
}

/** Every Secret the rendered chart reads with these values, and the keys its pods mount or reference. */
export function secretNeeds(ctx: DoctorContext): SecretNeed[] {
  const { values, namespace: ns } = ctx;
  const enabled = new Set(ctx.services.map((s) => s.key));
  const names = ctx.services.map((s) => s.name);
  const needs: SecretNeed[] = [];
  if (names.length === 0) return needs;
  needs.push({ secret: text(values, "database.secretName"), keys: names, purpose: "PostgreSQL URL per service" });
  const migration = text(values, "database.migrationSecretName");
  if (migration && text(values, "database.migrationJob") === "true")
    needs.push({ secret: migration, keys: names, purpose: "migration PostgreSQL URL per service" });
  const eventKeys = text(values, "eventKeys.secretName");
  const generate = `npx snapmesh keys events --name ${eventKeys} -n ${ns} | kubectl apply -f -`;
  needs.push({
    secret: eventKeys,
    keys: [...names.map((n) => `${n}.json`), "trust.json"],
    purpose: "event-signing keys and trust map",
    create: generate,
    // A new key set is trusted only through trust.json, so the whole Secret is made again.
    addKeys: generate,
  });
  if (enabled.has("auth")) {
    const secret = text(values, "auth.signingKeysSecret");
    needs.push({
      secret,
      keys: ["keys.json"],
      purpose: "auth's session-signing JWK set",
      create: `kubectl create secret generic ${secret} -n ${ns} --from-file=keys.json=<private JWK set file> (k8s/README.md shows how to make one)`,
    });
  }
  if (enabled.has("storage")) {
    const secret = text(values, "storage.signingKeysSecret");
    needs.push({
      secret,
      keys: ["keys"],
      purpose: "storage's URL-signing keys",
      create: `kubectl create secret generic ${secret} -n ${ns} --from-literal=keys=k1:$(openssl rand -hex 32)`,
    });
  }
  const wechat = text(values, "auth.wechat.secretName");
  if (wechat && (enabled.has("auth") || enabled.has("shareCode")))
    needs.push({ secret: wechat, keys: ["appId", "appSecret"], purpose: "WeChat app credentials" });
  const legacy = text(values, "auth.legacy.authHeaderSecret");
  if (legacy && text(values, "auth.legacy.permissionUrl") && enabled.has("auth"))
    needs.push({ secret: legacy, keys: ["header"], purpose: "legacy backend's auth header" });
  const s3 = text(values, "storage.s3.credentialsSecret");
  if (s3 && text(values, "storage.backend") === "s3" && enabled.has("storage"))
    needs.push({ secret: s3, keys: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], purpose: "S3 credentials" });
  return needs;
}

/** One probe per Secret name: values may point two needs (say WeChat and S3) at one Secret. */
export function secretProbes(ctx: DoctorContext): Probe[] {
  const bySecret = new Map<string, SecretNeed[]>();
  for (const need of secretNeeds(ctx)) bySecret.set(need.secret, [...(bySecret.get(need.secret) ?? []), need]);
  return [...bySecret].map(([secret, needs]) => secretProbe(ctx, secret, needs));
}

function secretProbe(ctx: DoctorContext, secret: string, needs: SecretNeed[]): Probe {
  const ns = ctx.namespace;
  const name = `secret ${secret}`;
  const keys = [...new Set(needs.flatMap((n) => n.keys))];
  const purpose = needs.map((n) => n.purpose).join("; ");
  const only = needs.length === 1 ? needs[0] : undefined;
  const placeholders = (ks: string[]) => ks.map((k) => `--from-literal=${k}=…`).join(" ");
  const create = only?.create ?? `kubectl create secret generic ${secret} -n ${ns} ${placeholders(keys)}`;
  const addKeys = (missing: string[]) =>
    only?.addKeys ??
    `kubectl patch secret ${secret} -n ${ns} --type merge -p '${JSON.stringify({ stringData: Object.fromEntries(missing.map((k) => [k, "…"])) })}'`;
  return {
    name,
    needs: `get secrets in ${ns}`,
    async run(read) {
      const found = await read(`reading Secret ${ns}/${secret}`, () =>
        ctx.cluster.core.readNamespacedSecret({ name: secret, namespace: ns }),
      );
      if (!found) return [fail(name, `not found; keys needed: ${keys.join(", ")} (${purpose})`, create)];
      // Values are only looked at, never shown: a key is missing, empty, or still the example's placeholder.
      const data = found.data ?? {};
      const value = (k: string) => Buffer.from(data[k] ?? "", "base64").toString("utf8");
      const missing = keys.filter((k) => data[k] === undefined);
      const empty = keys.filter((k) => data[k] !== undefined && value(k).trim() === "");
      const placeholder = keys.filter((k) => value(k).includes("REPLACE"));
      const problems = [
        missing.length ? `missing key${missing.length > 1 ? "s" : ""} ${missing.join(", ")}` : "",
        empty.length ? `empty: ${empty.join(", ")}` : "",
        placeholder.length ? `still the example's REPLACE placeholder: ${placeholder.join(", ")}` : "",
      ].filter(Boolean);
      if (problems.length)
        return [fail(name, `${problems.join("; ")} (${purpose})`, addKeys([...missing, ...empty, ...placeholder]))];
      return [pass(name, `keys ${keys.join(", ")} (${purpose})`)] satisfies Check[];
    },
  };
}
