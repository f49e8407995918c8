import { fileURLToPath } from "node:url";
import { envStem, manifest, SERVICES, type ServiceName } from "@snapmesh/events";

export interface MeshService {
  name: ServiceName;
  port: number;
  portVariable: string;
  main: string;
  /** The URLs of the services it calls, as the variables it reads them from (SNAPMESH_<PEER>_URL). */
  calls: readonly ServiceName[];
}

const main = (name: string) => fileURLToPath(new URL(`../../services/${name}/src/main.ts`, import.meta.url));

/** The services of the manifest with the fixed local ports of the public contract, overridable by env. */
export function meshServices(env: NodeJS.ProcessEnv = process.env): MeshService[] {
  return SERVICES.map((name) => {
    const portVariable = `SNAPMESH_${envStem(name)}_PORT`;
    return {
      name,
      port: Number(env[portVariable] ?? manifest[name].port),
      portVariable,
      main: main(name),
      calls: manifest[name].calls as readonly ServiceName[],
    };
  });
}

/** SNAPMESH_<PEER>_URL for every service one of them calls: what `snapmesh dev` hands each process. */
export function peerUrls(services: MeshService[], urls: Record<string, string>): Record<string, string> {
  const peers = new Set(services.flatMap((s) => s.calls));
  return Object.fromEntries([...peers].map((peer) => [`SNAPMESH_${envStem(peer)}_URL`, urls[peer]!]));
}

export function serviceUrl(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const s = meshServices(env).find((x) => x.name === name);
  if (!s) throw new Error(`unknown service '${name}' (one of: ${SERVICES.join(", ")})`);
  return `http://127.0.0.1:${s.port}`;
}
