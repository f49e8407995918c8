// `npm run console:build`: the console's page (scripts/console, TypeScript, no view library) built by Vite into
// dist/console, every asset bundled (no CDN).
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export async function buildConsolePage(): Promise<void> {
  const { build } = await import("vite");
  await build({
    root: `${ROOT}scripts/console`,
    base: "./",
    logLevel: "warn",
    build: { outDir: `${ROOT}dist/console`, emptyOutDir: true, target: "es2022" },
  });
}

if (import.meta.url === `file://${process.argv[1]}`) await buildConsolePage();
