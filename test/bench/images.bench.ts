// Image benchmarks: cold start inside each service image (spawn `buildah run` -> first 200 on /readyz) beside
// `node -e 0` and an express hello-world bundle copied into the same image, median of 5; image sizes. buildah's own
// start (chroot set-up) is in every figure alike. Needs root, buildah and the images (`npm run images`).
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SERVICES } from "@snapmesh/events";
import { build } from "esbuild";
import { buildah, cmdlineOf, descendants, kill, runEntrypoint, STORAGE } from "../support/buildah.ts";
import { testEventKeysEnv } from "../support/event-keys.ts";
import { freePort } from "../support/index.ts";
import { uniqueName } from "../support/names.ts";
import { freshDatabase } from "../support/postgres.ts";
import { fmt } from "./stats.ts";

const RUNS = 5;
const VERSION = JSON.parse(readFileSync("package.json", "utf8")).version as string;
const SERVICE_ENV: Record<string, Record<string, string>> = {
  auth: { SNAPMESH_DEV_AUTH: "1" },
  "share-code": { SNAPMESH_STORAGE_URL: "http://127.0.0.1:9" },
  storage: { STORAGE_SIGNING_KEYS: `k:${"z".repeat(40)}` },
};
const NODE = "/nodejs/bin/node";
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

export async function imagesBench(natsUrl: string, databaseUrl: string): Promise<void> {
  console.log("\n## images: cold start inside the image (buildah run, chroot; spawn -> first 200 on /readyz), median of 5");
  const image = (s: string) => `localhost/snapmesh-${s}:${VERSION}`;
  if (spawnSync("buildah", ["--version"]).status !== 0 || process.getuid?.() !== 0) {
    console.log("skipped: needs root and buildah (apt-get install -y buildah mmdebstrap)");
    return;
  }
  if (SERVICES.some((s) => spawnSync("buildah", [...STORAGE, "inspect", "--type", "image", image(s)]).status !== 0)) {
    console.log("skipped: no images; run `npm run images` first");
    return;
  }
  // The express hello-world, bundled like the services, bind-mounted into the same image.
  const hello = join(tmpdir(), `snapmesh-hello-${process.pid}.mjs`);
  await build({
    stdin: {
      contents:
        'import express from "express"; const app = express(); app.get("/readyz", (_q, r) => r.send("ok")); app.listen(Number(process.env.PORT), "127.0.0.1");',
      resolveDir: "services/runtime",
    },
    outfile: hello,
    bundle: true,
    platform: "node",
    format: "esm",
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: "warning",
  });

  const ctrs = new Map<string, string>();
  const ctrFor = (s: string) => {
    if (!ctrs.has(s)) {
      const ctr = buildah("from", "--quiet", "--pull=never", image(s));
      buildah("copy", "--quiet", ctr, hello, "/bench/hello.mjs");
      ctrs.set(s, ctr);
    }
    return ctrs.get(s) as string;
  };
  const startToReady = async (ctr: string, args: string[], env: Record<string, string>, port: number): Promise<number> => {
    const t0 = performance.now();
    const run = runEntrypoint(ctr, [NODE], env, args);
    for (;;) {
      if (run.child.exitCode !== null) throw new Error(`exited ${run.child.exitCode}: ${run.stderr()}`);
      if ((await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    const ms = performance.now() - t0;
    const node = descendants(run.child.pid ?? -1).find((pid) => cmdlineOf(pid)[0] === NODE);
    if (node) process.kill(node, "SIGTERM");
    const timer = setTimeout(() => {
      for (const pid of [run.child.pid ?? -1, ...descendants(run.child.pid ?? -1)]) kill(pid);
    }, 10_000);
    await run.exit;
    clearTimeout(timer);
    return ms;
  };

  try {
    const rows: Array<[string, number]> = [];
    const nodeE0: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await runEntrypoint(ctrFor("auth"), [NODE], {}, ["-e", "0"]).exit;
      nodeE0.push(performance.now() - t0);
    }
    rows.push(["node -e 0 (exit)", median(nodeE0)]);
    const helloRuns: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const port = await freePort("127.0.0.1");
      helloRuns.push(await startToReady(ctrFor("auth"), ["/bench/hello.mjs"], { PORT: String(port) }, port));
    }
    const helloMs = median(helloRuns);
    rows.push(["express hello-world", helloMs]);
    for (const s of SERVICES) {
      const env = {
        LOG_LEVEL: "silent",
        DATABASE_URL: await freshDatabase(databaseUrl, "bench"),
        NATS_URL: natsUrl,
        EVENTS_STREAM: uniqueName("BENCH"),
        EVENTS_SUBJECT_PREFIX: uniqueName("bench").toLowerCase(),
        MIGRATE_ON_START: "0",
        ...testEventKeysEnv(),
        ...SERVICE_ENV[s],
      };
      await runEntrypoint(ctrFor(s), [NODE], env, ["/app/bin/main.mjs", "migrate"]).exit;
      const runs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const port = await freePort("127.0.0.1");
        runs.push(await startToReady(ctrFor(s), ["/app/bin/main.mjs"], { ...env, PORT: String(port) }, port));
      }
      rows.push([s, median(runs)]);
    }
    for (const [label, ms] of rows)
      console.log(`${label.padEnd(24)} ${fmt(ms, 0).padStart(6)} ms   ${(ms / helloMs).toFixed(2)}× express hello-world`);
    console.log("\nimage sizes (uncompressed):");
    for (const s of SERVICES) {
      const root = buildah("mount", ctrFor(s));
      const bytes = Number(spawnSync("du", ["-sbx", root], { encoding: "utf8" }).stdout.split("\t")[0]);
      buildah("umount", ctrFor(s));
      console.log(`${image(s).padEnd(36)} ${fmt(bytes / 1e6)} MB`);
    }
  } finally {
    for (const ctr of ctrs.values()) buildah("rm", ctr);
    rmSync(hello, { force: true });
  }
}
