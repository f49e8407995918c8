import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Service } from "../src/service.ts";
import { notesService } from "./fixture/notes.ts";
import { isolatedConfig } from "./helpers.ts";

let service: Service;
let base: string;

beforeAll(async () => {
  service = await notesService(await isolatedConfig({ CORS_ORIGINS: "http://127.0.0.1:5173, http://localhost:5174" }));
  const server: Server = await service.start({ host: "127.0.0.1" });
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

afterAll(async () => {
  await service?.stop();
});

describe("CORS for browser apps", () => {
  it("answers an allowed origin's preflight with the methods and headers a REST call uses", async () => {
    const res = await fetch(`${base}/v1/notes`, {
      method: "OPTIONS",
      headers: {
        origin: "http://127.0.0.1:5173",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:5173");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
    expect(res.headers.get("access-control-allow-headers")).toContain("idempotency-key");
  });

  it("says on /healthz which service and version it is", async () => {
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({
      status: "ok",
      service: "notes",
      version: "unknown",
      revision: "unknown",
    });
  });

  it("marks an allowed origin's answers, errors included, and no other origin's", async () => {
    const ok = await fetch(`${base}/healthz`, { headers: { origin: "http://localhost:5174" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("http://localhost:5174");
    expect(ok.headers.get("access-control-expose-headers")).toContain("etag");
    const missing = await fetch(`${base}/nowhere`, { headers: { origin: "http://127.0.0.1:5173" } });
    expect(missing.status).toBe(404);
    expect(missing.headers.get("access-control-allow-origin")).toBe("http://127.0.0.1:5173");
    const other = await fetch(`${base}/healthz`, { headers: { origin: "http://127.0.0.66:666" } });
    expect(other.status).toBe(200);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
    const preflight = await fetch(`${base}/v1/notes`, {
      method: "OPTIONS",
      headers: { origin: "http://127.0.0.66:666", "access-control-request-method": "POST" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    expect(preflight.status).toBe(404);
  });
});
