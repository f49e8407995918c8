// The layering rules, checked on the sources: a service declares every library it imports, never imports express
// or another service, and uses only the runtime's public entry (no registry, no app, no internals).
import { readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SERVICES } from "@snapmesh/events";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function sources(dir: string): Array<{ file: string; text: string }> {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => {
      const file = join(e.parentPath, e.name);
      return { file: file.slice(ROOT.length), text: readFileSync(file, "utf8") };
    });
}

/** Every module specifier a file imports statically or dynamically. */
function imports(text: string): string[] {
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)["']([^"']+)["']/g)].map((m) => m[1]!);
}

const packageOf = (specifier: string) =>
  specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0]!;

describe.each(SERVICES)("%s", (name) => {
  const dir = join(ROOT, "services", name);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
  const files = sources(join(dir, "src"));

  it("declares every library its sources import", () => {
    const undeclared = files.flatMap(({ file, text }) =>
      imports(text)
        .filter((s) => !s.startsWith(".") && !s.startsWith("node:") && !builtinModules.includes(s))
        .map(packageOf)
        .filter((p) => !pkg.dependencies?.[p])
        .map((p) => `${file}: ${p}`),
    );
    expect(undeclared).toEqual([]);
  });

  it("imports neither express nor another service nor the runtime's internals", () => {
    const crossing = files.flatMap(({ file, text }) =>
      imports(text)
        .filter((s) => s === "express" || s.startsWith("@snapmesh/runtime/") || /^(\.\.\/)+(\.\.\/)?[a-z-]+\/src\//.test(s))
        .map((s) => `${file}: ${s}`),
    );
    expect(crossing).toEqual([]);
  });

  it("reaches into no registry or HTTP app", () => {
    const reaching = files.filter(({ text }) => /\.(registry|app)\b[.[(]/.test(text)).map(({ file }) => file);
    expect(reaching).toEqual([]);
  });
});
