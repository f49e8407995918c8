// The error catalogue (issue 13 §4): every code the services throw is listed, with the status it is thrown with.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { AppError, appError, type ErrorCode, errorCatalogue, toAppError } from "../src/errors.ts";

const SERVICES = fileURLToPath(new URL("../../", import.meta.url));

function sources(): Array<{ file: string; text: string }> {
  const out: Array<{ file: string; text: string }> = [];
  for (const service of readdirSync(SERVICES)) {
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith(".ts")) out.push({ file: relative(SERVICES, path), text: readFileSync(path, "utf8") });
      }
    };
    try {
      walk(join(SERVICES, service, "src"));
    } catch {
      // not a service folder
    }
  }
  return out;
}

/** The text of the call starting at `open` (the index of its `(`), up to the matching `)`. */
function callArgs(text: string, open: number): string {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'" || ch === "`") quote = ch;
    else if (ch === "(") depth++;
    else if (ch === ")" && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

const HELPER_STATUS: Record<string, number> = {
  badRequest: 400,
  unauthorized: 401,
  forbidden: 403,
  notFound: 404,
  conflict: 409,
  gone: 410,
  tooLarge: 413,
  unavailable: 503,
};

/** A code-shaped string literal (`"snake_case"` or a template such as `` `missing_${name}` ``). */
const CODE_LITERAL = /(["'`])([a-z][a-z0-9]*(?:_(?:[a-z0-9]+|\$\{\w+\}))*)\1/g;

interface Thrown {
  file: string;
  code: string;
  status?: number;
}

function thrownCodes(): Thrown[] {
  const found: Thrown[] = [];
  for (const { file, text } of sources()) {
    if (file.endsWith("runtime/src/errors.ts") || file.endsWith("runtime/src/error-codes.ts")) continue;
    for (const m of text.matchAll(/\b(appError|relayedError|new AppError|[a-zA-Z]+)\(/g)) {
      const fn = m[1]!;
      if (fn !== "appError" && fn !== "relayedError" && fn !== "new AppError" && !Object.hasOwn(HELPER_STATUS, fn)) continue;
      const args = callArgs(text, m.index! + m[0].length - 1);
      const codes = [...args.matchAll(CODE_LITERAL)].map((c) => c[2]!);
      for (const code of codes)
        found.push({ file, code, ...(Object.hasOwn(HELPER_STATUS, fn) ? { status: HELPER_STATUS[fn] } : {}) });
    }
    // codes handed on in data (`error: { code: "object_not_found" }` in a batch reply, a URL verdict)
    for (const m of text.matchAll(/(?:error: \{ |ok: false, )code: (["'])([a-z][a-z0-9_]*)\1/g))
      found.push({ file, code: m[2]! });
  }
  return found;
}

const matchesCatalogue = (code: string): ErrorCode[] => {
  const pattern = new RegExp(`^${code.replace(/\$\{\w+\}/g, "[a-z0-9]+")}$`);
  return (Object.keys(errorCatalogue) as ErrorCode[]).filter((c) => pattern.test(c));
};

describe("the error catalogue", () => {
  it("lists every code thrown in services/*/src, with the status it is thrown with", () => {
    const thrown = thrownCodes();
    expect(thrown.length).toBeGreaterThan(80);
    const problems: string[] = [];
    for (const { file, code, status } of thrown) {
      // a template (`missing_${name}`) must match at least one entry of the right status; TypeScript checks the rest
      const entries = matchesCatalogue(code).filter((c) => status === undefined || errorCatalogue[c].status === status);
      if (entries.length === 0) problems.push(`${file}: '${code}' is not in the catalogue with status ${status ?? "any"}`);
    }
    expect(problems).toEqual([]);
  });

  it("constructs no AppError with a literal code outside the catalogue's factories", () => {
    const literal = sources().filter(({ file, text }) => !file.endsWith("errors.ts") && /new AppError\(\s*\d/.test(text));
    expect(literal.map((s) => s.file)).toEqual([]);
  });

  it("marks as retryable exactly what Knative retries (5xx, 408, 429)", () => {
    for (const [code, spec] of Object.entries(errorCatalogue)) {
      const knativeRetries = spec.status >= 500 || spec.status === 408 || spec.status === 429;
      expect({ code, retryable: spec.retryable }).toEqual({ code, retryable: knativeRetries });
      expect({ code, terminal: appError(code as ErrorCode).terminal }).toEqual({ code, terminal: !knativeRetries });
      expect(code).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
      expect(spec.message.length).toBeGreaterThan(0);
    }
  });

  it("factories take the status and default message from the catalogue and keep the cause", () => {
    const cause = new Error("ECONNREFUSED");
    const err = appError("storage_unavailable", undefined, { cause, details: { attempt: 1 } });
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 503, code: "storage_unavailable", message: errorCatalogue.storage_unavailable.message });
    expect(err.cause).toBe(cause);
    expect(err.toBody()).toEqual({ error: { code: "storage_unavailable", message: err.message, details: { attempt: 1 } } });
    const internal = toAppError(cause);
    expect(internal).toMatchObject({ status: 500, code: "internal", message: "internal error" });
    expect(internal.cause).toBe(cause);
  });
});
