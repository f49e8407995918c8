// `npm run build` (after the type check): each service of the manifest bundled for its container image into
// dist/<service>/bin: one CommonJS script, service-<hash>.cjs, which bin/main.mjs runs from V8's code cache
// (scripts/src/service-loader.mjs; the image's build writes the cache), and what it loads on first use in bin/lazy; its
// migrations beside it (dist/<service>/migrations, found as ../migrations from main.mjs, as from src/main.ts). The
// console's server: an ES module with chunks, dist/console/bin/main.mjs. PGlite stays external (it loads its WASM files).
import { cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename } from "node:path";
import { SERVICES } from "@snapmesh/events";
import { type BuildOptions, build, type Plugin } from "esbuild";

// zod's namespace export carries every locale (358 KiB); snapmesh speaks English only, and zod registers `en` itself.
const englishOnly: Plugin = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]zod[\\/]v4[\\/]classic[\\/]/.test(args.importer) ? { path: args.importer, namespace: "zod-locales" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "zod-locales" }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(new URL("../locales/en.js", `file://${args.path}`).pathname)};`,
      loader: "js",
      resolveDir: "/",
    }));
  },
};

// nats.js loads node:tls at import for TLS connections (~4 ms), and reads globalThis.ReadableStream to polyfill it on
// Node 14 (the read alone loads Node's web streams, ~1.5 ms). snapmesh runs on Node 20+: the check goes, and tls loads
// on the first TLS connection. A TLS socket is told from a plain one by its `encrypted` flag, not by instanceof (which
// would load tls). The build fails if nats.js no longer has these lines.
const NATS_EDITS: Array<{ file: RegExp; edits: Array<[from: string, to: string]> }> = [
  {
    file: /[\\/]nats[\\/]lib[\\/]src[\\/]mod\.js$/,
    edits: [['typeof globalThis.ReadableStream === "undefined"', "false"]],
  },
  {
    file: /[\\/]nats[\\/]lib[\\/]src[\\/]node_transport\.js$/,
    edits: [
      [
        'const tls_1 = require("tls");',
        'let tlsModule; const tls_1 = { get connect() { return (tlsModule ??= require("tls")).connect; } };',
      ],
      ["this.socket instanceof tls_1.TLSSocket", "this.socket?.encrypted === true"],
    ],
  },
];
const natsOnNode20: Plugin = {
  name: "nats-on-node20",
  setup(b) {
    for (const { file, edits } of NATS_EDITS) {
      b.onLoad({ filter: file }, (args) => {
        let contents = readFileSync(args.path, "utf8");
        for (const [from, to] of edits) {
          if (!contents.includes(from)) throw new Error(`${args.path} no longer has ${JSON.stringify(from)}: review NATS_EDITS`);
          contents = contents.replace(from, to);
        }
        return { contents, loader: "js" };
      });
    }
  },
};

// Modules loaded at import for what snapmesh never or rarely calls. Each becomes a stand-in with the same exports that
// loads the real module on first use.
// - prom-client's Pushgateway (with zlib, http and https) and cluster aggregation (with node:cluster), the OpenTelemetry
//   API it reads only for exemplars, and its default metrics (perf_hooks, v8 heap spaces), which a service starts
//   collecting after its first answers (see metrics.ts);
// - nats.js's nkeys (NKey and JWT credentials) and the SHA-256 of its object store;
// - pino's redaction and worker-thread transports (snapmesh configures neither), and node:assert, which pino's
//   destination loads for its argument checks.
const LAZY: Array<{ path: RegExp; importer?: RegExp }> = [
  { path: /^(@opentelemetry\/api|nkeys\.js)$/ },
  { path: /^\.\/lib\/(pushgateway|cluster|defaultMetrics)$/, importer: /[\\/]prom-client[\\/]index\.js$/ },
  { path: /^\.\.\/nats-base-client\/js-sha256$/, importer: /[\\/]nats[\\/]lib[\\/]jetstream[\\/]objectstore\.js$/ },
  { path: /^@pinojs\/redact$/, importer: /[\\/]pino[\\/]lib[\\/]redaction\.js$/ },
  { path: /^thread-stream$/, importer: /[\\/]pino[\\/]lib[\\/]transport\.js$/ },
  { path: /^(node:)?assert$/, importer: /[\\/](sonic-boom|thread-stream)[\\/]index\.js$/ },
];
const requireHere = createRequire(import.meta.url);
const lazyModules: Plugin = {
  name: "lazy-modules",
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === "real" || !LAZY.some((l) => l.path.test(args.path) && (l.importer?.test(args.importer) ?? true)))
        return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: "real" });
      return { path: real.path, namespace: "lazy-module" };
    });
    b.onLoad({ filter: /.*/, namespace: "lazy-module" }, (args) => {
      const real = requireHere(args.path) as Record<string, unknown>;
      const names = Object.keys(real);
      // Functions are forwarded (an importer may copy one at load); values are getters.
      const functions = names.filter((n) => typeof real[n] === "function");
      return {
        contents: `let real;
          const load = () => (real ??= require(${JSON.stringify(args.path)}));
          const call = (f, self, a, target) => (target ? Reflect.construct(f, a, target) : f.apply(self, a));
          function lazy(...a) { return call(load(), this, a, new.target); }
          for (const name of ${JSON.stringify(functions)})
            lazy[name] = function (...a) { return call(load()[name], this, a, new.target); };
          for (const name of ${JSON.stringify(names.filter((n) => !functions.includes(n)))})
            Object.defineProperty(lazy, name, { get: () => load()[name], enumerable: true });
          module.exports = lazy;`,
        loader: "js",
        resolveDir: "/",
      };
    });
  },
};

const builtinsByRequire: Plugin = {
  name: "builtins-by-require",
  setup(b) {
    b.onResolve({ filter: /^(node:)?https?$/ }, (args) =>
      args.namespace === "builtin-by-require"
        ? { path: args.path, external: true }
        : { path: args.path, namespace: "builtin-by-require" },
    );
    b.onLoad({ filter: /.*/, namespace: "builtin-by-require" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path.startsWith("node:") ? args.path : `node:${args.path}`)});`,
      loader: "js",
    }));
  },
};

// The entry a service's bundle is built from: its main (which starts it when its bundle is the process's script) and
// the warm-up the image's build runs before it writes the code cache.
const serviceEntry: Plugin = {
  name: "service-entry",
  setup(b) {
    b.onResolve({ filter: /^service-entry:/ }, (args) => ({
      path: args.path.slice("service-entry:".length),
      namespace: "service-entry",
    }));
    b.onLoad({ filter: /.*/, namespace: "service-entry" }, (args) => ({
      contents: `import "./services/${args.path}/src/main.ts"; export { warmUp } from "./services/runtime/src/warm-up.ts";`,
      loader: "ts",
      resolveDir: process.cwd(),
    }));
  },
};

// What a service loads only when it is used (egress, the QR renderer, an S3 backend): each its own script in
// bin/lazy, required on first use, so a start neither reads nor keeps it.
const SEPARATE: Array<{ name: string; entry: string; imported: RegExp; importer?: RegExp }> = [
  { name: "undici", entry: "undici", imported: /^undici$/ },
  { name: "qrcode", entry: "qrcode", imported: /^qrcode$/ },
  { name: "aws-sdk", entry: "services/storage/src/backends/aws-sdk.ts", imported: /^\.\/aws-sdk\.js$/, importer: /[\\/]s3\.ts$/ },
];
const separate: Plugin = {
  name: "separate",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const s = SEPARATE.find((x) => x.imported.test(args.path) && (x.importer?.test(args.importer) ?? true));
      return s ? { path: s.name, namespace: "separate" } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: "separate" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(`./lazy/${args.path}.cjs`)});`,
      loader: "js",
    }));
    b.onResolve({ filter: /^\.\/lazy\// }, (args) => ({ path: args.path, external: true }));
  },
};

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap: true,
  // Whitespace out, and ASCII only: one non-Latin-1 character makes V8 keep the whole source at two bytes a character.
  minifyWhitespace: true,
  charset: "ascii",
  external: ["@electric-sql/pglite", "pg-native"],
  logLevel: "warning",
  metafile: true,
} satisfies BuildOptions;
const LOADER = readFileSync(new URL("./service-loader.mjs", import.meta.url), "utf8");
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;

// Each service: one CommonJS script, service-<hash>.cjs (code loaded on first use, such as undici for egress or the AWS
// SDK, is compiled only then), started by bin/main.mjs from V8's code cache of it (scripts/src/service-loader.mjs).
if (!LOADER.includes('"./BUNDLE"')) throw new Error('scripts/src/service-loader.mjs no longer names its bundle "./BUNDLE"');
for (const name of SERVICES) {
  // esbuild never removes outputs: bundles of an earlier build (other hashes) would otherwise end up in the image.
  rmSync(`dist/${name}/bin`, { recursive: true, force: true });
  const result = await build({
    ...common,
    entryPoints: { service: `service-entry:${name}` },
    entryNames: "[name]-[hash]",
    outdir: `dist/${name}/bin`,
    outExtension: { ".js": ".cjs" },
    format: "cjs",
    // A function the loader calls with CommonJS's arguments and __entryUrl, the process's script when the service is
    // to start.
    banner: { js: "(function (exports, require, module, __filename, __dirname, __entryUrl) {" },
    footer: { js: "})" },
    define: { "import.meta.url": "__entryUrl" },
    plugins: [serviceEntry, separate, englishOnly, natsOnNode20, lazyModules],
  });
  const used = SEPARATE.filter((x) => Object.keys(result.metafile.inputs).includes(`separate:${x.name}`));
  if (used.length > 0)
    await build({
      ...common,
      entryPoints: Object.fromEntries(used.map((x) => [x.name, x.entry])),
      outdir: `dist/${name}/bin/lazy`,
      outExtension: { ".js": ".cjs" },
      format: "cjs",
    });
  const [bundle, { bytes }] = Object.entries(result.metafile.outputs).find(([path]) => path.endsWith(".cjs"))!;
  const file = basename(bundle);
  writeFileSync(`dist/${name}/bin/main.mjs`, LOADER.replace('"./BUNDLE"', JSON.stringify(`./${file}`)));
  cpSync(`services/${name}/migrations`, `dist/${name}/migrations`, { recursive: true });
  console.log(`dist/${name}/bin/${file}  ${kib(bytes)}`);
}

// The console's server (its image adds the page, dist/console/public: `npm run console:build`), an ES module with
// chunks, started from Node's compile cache.
rmSync("dist/console/bin", { recursive: true, force: true });
const consoleBuild = await build({
  ...common,
  entryPoints: { main: "scripts/src/console/main.ts" },
  outdir: "dist/console/bin",
  outExtension: { ".js": ".mjs" },
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  format: "esm",
  plugins: [englishOnly, natsOnNode20, lazyModules, builtinsByRequire],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
});
const consoleBytes = Object.values(consoleBuild.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
console.log(`dist/console/bin/main.mjs  ${kib(consoleBytes)} with chunks`);
