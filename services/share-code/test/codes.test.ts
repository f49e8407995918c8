import { describe, expect, it } from "vitest";
import { ALPHABET, CODE_LENGTH, isCode, newCode, normaliseCode } from "../src/codes.ts";

describe("share codes", () => {
  it("100,000 codes: no collisions, all of the alphabet and length, no look-alike characters", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      const code = newCode();
      expect(isCode(code)).toBe(true);
      seen.add(code);
    }
    expect(seen.size).toBe(100_000);
    expect(CODE_LENGTH).toBeLessThanOrEqual(32);
    for (const c of "0O1IL") expect(ALPHABET).not.toContain(c);
    const used = new Set([...seen].join(""));
    expect(used.size).toBe(ALPHABET.length);
  });

  it("forgives case, spaces and dashes in typed codes", () => {
    expect(normaliseCode(" ab-cd efgh23 ")).toBe("ABCDEFGH23");
  });
});
