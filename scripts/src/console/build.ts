// `npm run console:build`: the console's page (scripts/console, TypeScript, no view library) built by Vite into
// dist/console/public, every asset bundled (no CDN). The console image holds it beside the server's bundle
// (dist/console/bin, scripts/src/bundle.ts).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Output } from "../output.js";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const PAGE = `${ROOT}dist/console/public`;

export async function buildConsolePage(): Promise<void> {
  const { build } = await import("vite");
  await build({
    root: `${ROOT}scripts/console`,
    base: "./",
    logLevel: "warn",
    build: { outDir: PAGE, emptyOutDir: true, target: "es2022" },
  });
}

/** The built page's folder for `snapmesh dev` and `snapmesh console`; built first when missing (a fresh clone). */
export async function consolePage(out: Output): Promise<string> {
  if (!existsSync(`${PAGE}/index.html`)) {
    out.info("building the console page (dist/console/public)…");
    await buildConsolePage();
  }
  return PAGE;
}

if (import.meta.url === `file://${process.argv[1]}`) await buildConsolePage();
