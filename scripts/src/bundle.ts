// `npm run build` (after the type check): each service of the manifest bundled into an ESM entry for its container image,
// dist/<service>/bin/main.mjs (plus chunks/ it loads on demand), with its migrations beside it (dist/<service>/migrations, found as
// ../migrations from the bundle, as from src/main.ts). PGlite stays external (it loads its WASM files).
import { cpSync, existsSync } from "node:fs";
import { SERVICES } from "@snapmesh/events";
import { build } from "esbuild";

for (const name of SERVICES) {
  const result = await build({
    entryPoints: { main: `services/${name}/src/main.ts` },
    outdir: `dist/${name}/bin`,
    outExtension: { ".js": ".mjs" },
    // Code loaded on first use (undici for egress, the AWS SDK) goes into chunks the start does not parse.
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    sourcemap: true,
    external: ["@electric-sql/pglite", "pg-native"],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: "warning",
    metafile: true,
  });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  if (existsSync(`services/${name}/migrations`))
    cpSync(`services/${name}/migrations`, `dist/${name}/migrations`, { recursive: true });
  const entry = result.metafile.outputs[`dist/${name}/bin/main.mjs`]?.bytes ?? 0;
  console.log(`dist/${name}/bin/main.mjs  ${(entry / 1024).toFixed(0)} KiB (${(bytes / 1024).toFixed(0)} KiB with chunks)`);
}
