// `npm start` runs this first, with plain Node (no dependencies yet): on a fresh clone it installs the
// npm packages, so `npm start` is the only command a newcomer needs.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
if (!existsSync(`${root}/node_modules/.bin/tsx`)) {
  console.log("snapmesh: first run on this clone: installing npm packages (npm ci)…");
  const { status } = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit" });
  if (status !== 0) {
    console.error("snapmesh: `npm ci` failed; fix the error above and run `npm start` again");
    process.exit(status ?? 1);
  }
}
