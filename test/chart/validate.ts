import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [k: string]: unknown };
  [k: string]: unknown;
};

/** The upstream CRDs vendored into k8s/crds by scripts/sync-crds.sh (or SNAPMESH_CRDS). */
export const CRD_ROOT = process.env.SNAPMESH_CRDS ?? fileURLToPath(new URL("../../k8s/crds", import.meta.url));

/** The openAPIV3Schema of every served version of every vendored CRD (k8s/crds), by `apiVersion/kind`. */
export function crdValidators(): Map<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const out = new Map<string, ValidateFunction>();
  if (!existsSync(CRD_ROOT)) throw new Error(`no CRDs at ${CRD_ROOT}: run scripts/sync-crds.sh, or set SNAPMESH_CRDS`);
  for (const dir of readdirSync(CRD_ROOT, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const file of readdirSync(join(CRD_ROOT, dir.name)).filter((f) => f.endsWith(".yaml"))) {
      for (const doc of parseAllDocuments(readFileSync(join(CRD_ROOT, dir.name, file), "utf8"))) {
        const crd = doc.toJS() as {
          kind?: string;
          spec?: {
            group: string;
            names: { kind: string };
            versions: Array<{ name: string; served: boolean; schema?: { openAPIV3Schema: object } }>;
          };
        };
        if (crd?.kind !== "CustomResourceDefinition" || !crd.spec) continue;
        for (const v of crd.spec.versions) {
          if (v.served && v.schema)
            out.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, ajv.compile(v.schema.openAPIV3Schema));
        }
      }
    }
  }
  return out;
}

/** Validates core Kubernetes objects with kubernetes-models (its JSON schemas of the API). */
export async function validateCore(obj: K8sObject): Promise<void> {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${obj.kind}` : `kubernetes-models/${version}/${obj.kind}`;
  const mod = (await import(path)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[obj.kind] ?? mod.default;
  if (!Model) throw new Error(`kubernetes-models has no ${obj.apiVersion} ${obj.kind}`);
  new Model(obj).validate();
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o === "object" && "kind" in o);
}
