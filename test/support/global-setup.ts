import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { buildConsolePage } from "../../scripts/src/console/build.ts";
import { nats } from "./nats.ts";
import { postgres } from "./postgres.ts";

declare module "vitest" {
  export interface ProvidedContext {
    natsUrl: string;
    databaseUrl: string;
    scratch: string;
  }
}

/** One NATS and one PostgreSQL server per test run; every test isolates itself inside them. */
export default async function setup(project: TestProject) {
  // The web console's page, built from this checkout (the mesh tests' `snapmesh dev` serves it).
  const [n, p] = await Promise.all([nats(), postgres(), buildConsolePage()]);
  // Every temporary folder a test makes lives under this one, removed at the end of the run.
  const scratch = mkdtempSync(join(tmpdir(), "snapmesh-test-"));
  process.env.SNAPMESH_TEST_SCRATCH = scratch;
  project.provide("scratch", scratch);
  process.env.NATS_URL = n.url;
  process.env.DATABASE_URL = p.url;
  project.provide("natsUrl", n.url);
  project.provide("databaseUrl", p.url);
  return async () => {
    await Promise.all([n.stop(), p.stop()]);
    rmSync(scratch, { recursive: true, force: true });
  };
}
