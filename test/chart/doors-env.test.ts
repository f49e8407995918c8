import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { SERVICES } from "@snapmesh/events";
import { describe, expect, it } from "vitest";
import { findBinary, goBinDirs } from "../../scripts/src/processes.ts";
import { type K8sObject, parseManifests } from "./validate.ts";

const CHART = fileURLToPath(new URL("../../charts/snapmesh", import.meta.url));
const HELM = findBinary("helm", goBinDirs());

type Ksvc = K8sObject & { spec: { template: { spec: { containers: Array<{ env: Array<{ name: string; value?: string }> }> } } } };

function serviceEnvs(sets: string[] = []): Record<string, Record<string, string | undefined>> {
  if (!HELM) throw new Error("helm is not installed");
  const out = execFileSync(
    HELM,
    ["template", "photos", CHART, "--namespace", "photos", "--kube-version", "1.30.0", ...sets.flatMap((s) => ["--set", s])],
    { encoding: "utf8" },
  );
  const ksvcs = parseManifests(out).filter((o) => o.kind === "Service" && o.apiVersion.startsWith("serving")) as Ksvc[];
  return Object.fromEntries(
    ksvcs.map((k) => [
      k.metadata.name.replace("photos-snapmesh-", ""),
      Object.fromEntries(k.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value])),
    ]),
  );
}

describe("helm chart: what every service's doors are told", () => {
  it("every service refuses dev tokens unless auth.devAuth, and trusts the Knative proxy hops for client addresses", () => {
    const envs = serviceEnvs();
    expect(Object.keys(envs).sort()).toEqual([...SERVICES].sort());
    for (const [name, env] of Object.entries(envs)) {
      expect({ name, env }).toMatchObject({
        name,
        env: { SNAPMESH_DEV_AUTH: "0", TRUST_PROXY_HOPS: "3", HEADERS_TIMEOUT_MS: "20000", REQUEST_TIMEOUT_MS: "300000" },
      });
    }
    const dev = serviceEnvs(["auth.devAuth=true", "http.trustProxyHops=4"]);
    for (const env of Object.values(dev)) expect(env).toMatchObject({ SNAPMESH_DEV_AUTH: "1", TRUST_PROXY_HOPS: "4" });
  });
});
