/**
 * The services of the mesh, in one place: what the CLI (`snapmesh dev`, `send`), the bundler, the chart
 * generator (`npm run chart:manifest`) and the test mesh read. Adding a service starts here (CONTRIBUTING.md).
 */
export interface ServiceManifest {
  /** The fixed local port of `npm start` (overridable with SNAPMESH_<NAME>_PORT). */
  readonly port: number;
  /** The PostgreSQL schema the service owns (its tables, inbox and outbox). */
  readonly schema: string;
  /** The service's key in the chart's values (`services.<key>`, `<key>.*`). */
  readonly valuesKey: string;
  /** Facts of other services it consumes: its fact handlers must match (defineService checks). */
  readonly subscribes: readonly string[];
  /** Services it calls over HTTP; it gets SNAPMESH_<PEER>_URL for each. */
  readonly calls: readonly string[];
  /** Tasks its process runs as `main <task>`; the chart runs each on a CronJob schedule. */
  readonly tasks: readonly string[];
}

export const manifest = {
  auth: { port: 8081, schema: "auth", valuesKey: "auth", subscribes: [], calls: [], tasks: [] },
  social: {
    port: 8082,
    schema: "social",
    valuesKey: "social",
    subscribes: ["snapmesh.storage.object.created", "snapmesh.storage.object.deleted"],
    calls: ["auth"],
    tasks: [],
  },
  "share-code": {
    port: 8083,
    schema: "sharecode",
    valuesKey: "shareCode",
    subscribes: ["snapmesh.storage.object.deleted"],
    calls: ["storage"],
    tasks: ["purge"],
  },
  storage: { port: 8084, schema: "storage", valuesKey: "storage", subscribes: [], calls: ["auth"], tasks: [] },
} as const satisfies Record<string, ServiceManifest>;

export type ServiceName = keyof typeof manifest;
export const SERVICES = Object.keys(manifest) as ServiceName[];

export function isServiceName(name: string): name is ServiceName {
  return Object.hasOwn(manifest, name);
}

/** `share-code` -> `SHARE_CODE`: the stem of the service's variables (SNAPMESH_SHARE_CODE_PORT, _URL, _DATABASE_URL). */
export function envStem(name: string): string {
  return name.toUpperCase().replace(/-/g, "_");
}
