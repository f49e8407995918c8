import { fileURLToPath } from "node:url";

export interface MeshService {
  name: "auth" | "social" | "share-code" | "storage";
  port: number;
  portVariable: string;
  main: string;
}

const main = (name: string) => fileURLToPath(new URL(`../../services/${name}/src/main.ts`, import.meta.url));

/** The four services with the fixed local ports of the public contract, overridable by env. */
export function meshServices(env: NodeJS.ProcessEnv = process.env): MeshService[] {
  const entry = (name: MeshService["name"], port: number, portVariable: string): MeshService => ({
    name,
    port: Number(env[portVariable] ?? port),
    portVariable,
    main: main(name),
  });
  return [
    entry("auth", 8081, "SNAPMESH_AUTH_PORT"),
    entry("social", 8082, "SNAPMESH_SOCIAL_PORT"),
    entry("share-code", 8083, "SNAPMESH_SHARE_CODE_PORT"),
    entry("storage", 8084, "SNAPMESH_STORAGE_PORT"),
  ];
}

export function serviceUrl(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const s = meshServices(env).find((x) => x.name === name);
  if (!s)
    throw new Error(
      `unknown service '${name}' (one of: ${meshServices(env)
        .map((x) => x.name)
        .join(", ")})`,
    );
  return `http://127.0.0.1:${s.port}`;
}
