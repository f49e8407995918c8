// A service's process entry in its image, dist/<service>/bin/main.mjs (scripts/src/bundle.ts writes it, with the
// bundle's name for BUNDLE): runs the service's bundle, a CommonJS script, from V8's code cache of it when the image
// has one. The image's build fills that cache with writeCodeCache() after a warm-up start, so it holds what a start
// compiles, not only what loading the bundle compiles (Node's compile cache holds the latter).
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { constants, Script } from "node:vm";

const bundle = fileURLToPath(new URL("./BUNDLE", import.meta.url));
// Named after the bundle, whose name carries its content's hash: V8 checks a cache only against the source's length.
const cacheFile = `${bundle}.code-cache`;

/** Runs the bundle; `entryUrl` is its import.meta.url, the process's script for the service to start. */
function run(cachedData, entryUrl) {
  // The bundle is one function expression, like Node's CommonJS wrapper; ASCII only, so latin1 reads it faster than utf8.
  const script = new Script(readFileSync(bundle, "latin1"), {
    filename: bundle,
    cachedData,
    importModuleDynamically: constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachedData && script.cachedDataRejected) {
    process.stderr.write(`${cacheFile} was made by another Node or V8 flags: starting without it\n`);
  }
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, dirname(bundle), entryUrl);
  return { script, exports: module.exports };
}

/** Loads the bundle without starting the service, warms it up, and writes the code cache. */
export async function writeCodeCache() {
  const { script, exports } = run(undefined, pathToFileURL(bundle).href);
  await exports.warmUp();
  writeFileSync(cacheFile, script.createCachedData());
  return cacheFile;
}

/** The code cache, read where nothing keeps it once V8 has taken its code. */
function readCodeCache() {
  try {
    return readFileSync(cacheFile);
  } catch (err) {
    // Without a cache (a bundle run outside its image) V8 compiles as it goes.
    if (err.code !== "ENOENT") process.stderr.write(`${cacheFile}: ${err.message}: starting without it\n`);
    return undefined;
  }
}

const script = process.argv[1];
if (script && realpathSync(script) === realpathSync(fileURLToPath(import.meta.url))) run(readCodeCache(), import.meta.url);
