import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { renderCatalog } from "../src/docs.ts";

const target = fileURLToPath(new URL("../docs/events.md", import.meta.url));
writeFileSync(target, renderCatalog());
console.log(`wrote ${target}`);
