// `npm run build` (after the type check): each service bundled into one ESM file for its container image,
// dist/<service>/bin/main.mjs, with its migrations beside it (dist/<service>/migrations, found as
// ../migrations from the bundle, as from src/main.ts). PGlite stays external (it loads its WASM files).
import { cpSync, existsSync } from "node:fs";
import { build } from "esbuild";

const services = ["auth", "social", "share-code", "storage"];
for (const name of services) {
  const result = await build({
    entryPoints: [`services/${name}/src/main.ts`],
    outfile: `dist/${name}/bin/main.mjs`,
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
  console.log(`dist/${name}/bin/main.mjs  ${(bytes / 1024).toFixed(0)} KiB`);
}
