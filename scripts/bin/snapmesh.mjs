#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npx snapmesh` works from a checkout without a build step.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const { status, signal } = spawnSync(process.execPath, ["--import", "tsx", cli, ...process.argv.slice(2)], { stdio: "inherit" });
process.exit(status ?? (signal ? 1 : 0));
