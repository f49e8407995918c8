import type { Cluster } from "./connect.js";
import type { ChartService, Values } from "./doctor-values.js";

export type Status = "pass" | "warn" | "fail";

export interface Check {
  name: string;
  status: Status;
  detail: string;
  /** One line: the command to run or the doc to follow. */
  fix?: string;
}

/**
 * Reads one object: undefined when it does not exist (404). A 403 becomes `Forbidden`, so only the probe that
 * needed the object fails; anything else (no server, refused credentials) is a CliError that ends the run.
 */
export type Reader = <T>(doing: string, fn: () => Promise<T>) => Promise<T | undefined>;

/** One question to the API server, answered by one or more checks. */
export interface Probe {
  /** The check's name when the probe cannot run (forbidden). */
  name: string;
  /** What RBAC must grant for it: "get configmaps in knative-serving". */
  needs: string;
  run(read: Reader): Promise<Check[]>;
}

export interface DoctorContext {
  cluster: Cluster;
  namespace: string;
  values: Values;
  services: ChartService[];
}

export class Forbidden extends Error {
  override name = "Forbidden";
}

export const pass = (name: string, detail: string): Check => ({ name, status: "pass", detail });
export const warn = (name: string, detail: string, fix?: string): Check => ({
  name,
  status: "warn",
  detail,
  ...(fix ? { fix } : {}),
});
export const fail = (name: string, detail: string, fix: string): Check => ({ name, status: "fail", detail, fix });
