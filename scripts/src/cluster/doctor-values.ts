import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { CliError, EXIT } from "./errors.js";

const CHART = fileURLToPath(new URL("../../../charts/snapmesh/", import.meta.url));

export type Values = Record<string, unknown>;

/** One of the chart's services, as files/services.yaml (generated from the service manifest) lists it. */
export interface ChartService {
  /** The name in object names and Secret keys (`share-code`). */
  name: string;
  /** The key under `services` in the values (`shareCode`). */
  key: string;
}

/** The values Helm would render with: the chart's defaults, then the `-f` file over them. */
export function chartValues(valuesFile: string | undefined): Values {
  const defaults = readYaml(`${CHART}values.yaml`, "the chart's values.yaml");
  if (!valuesFile) return defaults;
  if (!existsSync(valuesFile)) throw new CliError(`no values file at ${valuesFile}`, EXIT.usage);
  return merge(defaults, readYaml(valuesFile, valuesFile));
}

/** The chart's services that these values enable. */
export function enabledServices(values: Values): ChartService[] {
  const listed = parse(readFileSync(`${CHART}files/services.yaml`, "utf8")) as ChartService[];
  return listed.filter((s) => valueAt(values, `services.${s.key}.enabled`) === true);
}

export function valueAt(values: Values, path: string): unknown {
  let at: unknown = values;
  for (const part of path.split(".")) {
    if (!isMap(at)) return undefined;
    at = at[part];
  }
  return at;
}

export const text = (values: Values, path: string): string => {
  const v = valueAt(values, path);
  return v === undefined || v === null ? "" : String(v);
};

export const integer = (values: Values, path: string): number => Number.parseInt(text(values, path) || "0", 10);

function readYaml(file: string, what: string): Values {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new CliError(`cannot read ${what}: ${(err as Error).message.split("\n")[0]?.replace(/:$/, "")}`, EXIT.usage);
  }
  if (doc === null || doc === undefined) return {};
  if (!isMap(doc)) throw new CliError(`${what} is not a map of values`, EXIT.usage);
  return doc;
}

/** Helm's coalescing: maps merge key by key, anything else replaces, and null removes the default. */
function merge(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === null) delete out[key];
    else if (isMap(value) && isMap(out[key])) out[key] = merge(out[key] as Values, value);
    else out[key] = value;
  }
  return out;
}

function isMap(v: unknown): v is Values {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
