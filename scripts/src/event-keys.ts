import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateEventKey, type PrivateJwk, publicJwk, type TrustMap } from "../../services/runtime/src/event-proof.js";
import { meshServices } from "./services.js";

export interface MeshEventKeys {
  /** Each service's private key set, `{"keys":[…]}`. */
  signing: Record<string, { keys: PrivateJwk[] }>;
  /** Every service's public keys: the trust map each service is given. */
  trust: TrustMap;
}

/** A fresh Ed25519 key per mesh service and the trust map that lists their public halves. */
export function generateMeshEventKeys(): MeshEventKeys {
  const signing: MeshEventKeys["signing"] = {};
  const trust: TrustMap = {};
  for (const { name } of meshServices()) {
    const key = generateEventKey(`${name}-${randomUUID().slice(0, 8)}`);
    signing[name] = { keys: [key] };
    trust[name] = { keys: [publicJwk(key)] };
  }
  return { signing, trust };
}

/** The local mesh's keys, made once under the data folder (so restarts keep verifying stored facts). */
export function devEventKeyFiles(dataDir: string): { signingFile: (service: string) => string; trustFile: string } {
  const dir = join(dataDir, "event-keys");
  const trustFile = join(dir, "trust.json");
  const signingFile = (service: string) => join(dir, `${service}.json`);
  if (!existsSync(trustFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keys = generateMeshEventKeys();
    for (const [service, set] of Object.entries(keys.signing)) {
      writeFileSync(signingFile(service), JSON.stringify(set), { mode: 0o600 });
    }
    writeFileSync(trustFile, JSON.stringify(keys.trust));
  }
  return { signingFile, trustFile };
}

/**
 * A Kubernetes Secret with every service's event key (`<service>.json`) and the trust map (`trust.json`);
 * the chart mounts into each service only its own key and the trust map.
 */
export function eventKeysSecret(name: string, namespace: string | undefined, keys = generateMeshEventKeys()): string {
  const data: Record<string, string> = { "trust.json": JSON.stringify(keys.trust) };
  for (const [service, set] of Object.entries(keys.signing)) data[`${service}.json`] = JSON.stringify(set);
  const lines = [
    "apiVersion: v1",
    "kind: Secret",
    "metadata:",
    `  name: ${name}`,
    ...(namespace ? [`  namespace: ${namespace}`] : []),
    "type: Opaque",
    "stringData:",
    ...Object.entries(data).map(([k, v]) => `  ${k}: '${v}'`),
  ];
  return `${lines.join("\n")}\n`;
}
