import { describe, expect, it } from "vitest";
import { z } from "zod";
import { baseConfigSchema, ConfigError, parseConfig, splitList } from "../src/config.ts";

describe("config", () => {
  it("applies defaults and coerces numbers", () => {
    const c = parseConfig(baseConfigSchema, { DATABASE_URL: "pglite://memory", PORT: "9000" });
    expect(c.PORT).toBe(9000);
    expect(c.EVENT_SINK).toBe("nats");
    expect(c.MAX_BODY_BYTES).toBe(1024 * 1024);
  });

  it("names every bad or missing variable at once", () => {
    const schema = baseConfigSchema.extend({ STORAGE_DIR: z.string() });
    let err: unknown;
    try {
      parseConfig(schema, { PORT: "-1", DATABASE_URL: "mysql://x", LOG_LEVEL: "loud" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toMatch(/^PORT:/m);
    expect(problems).toMatch(/^DATABASE_URL: must start with postgres/m);
    expect(problems).toMatch(/^LOG_LEVEL:/m);
    expect(problems).toMatch(/^STORAGE_DIR: required but not set/m);
  });

  it("treats empty variables as unset", () => {
    const c = parseConfig(baseConfigSchema, { DATABASE_URL: "pglite://memory", PORT: "" });
    expect(c.PORT).toBe(8080);
  });

  it("splits lists", () => {
    expect(splitList(" a, b ,,c ")).toEqual(["a", "b", "c"]);
    expect(splitList(undefined)).toEqual([]);
  });
});
