// Regression tests for issue 13 §4: HTTP metrics count every response, and failures are counted by error code.
import type { Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp, createLogger, createMetrics, forbidden, listen } from "../src/internal.ts";
import type { Registry } from "../src/registry.ts";
import type { Service } from "../src/service.ts";
import { notesService } from "./fixture/notes.ts";
import { isolatedConfig } from "./helpers.ts";

let server: Server;
let base: string;

beforeAll(async () => {
  const metrics = createMetrics("metrics-test");
  const log = createLogger("metrics-test", "silent");
  const app = createApp({
    registry: {} as Registry,
    log,
    metrics,
    maxBodyBytes: 1024,
    trustProxyHops: 0,
    ready: () => true,
    draining: () => false,
  });
  app.on("get", "/refused", () => {
    throw forbidden("not for you", "not_allowed");
  });
  server = await listen(app, 0, "127.0.0.1");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const sample = (text: string, name: string, labels: Record<string, string>): number => {
  for (const [, found, value] of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\d+)$`, "gm"))) {
    if (Object.entries(labels).every(([k, v]) => found!.includes(`${k}="${v}"`))) return Number(value);
  }
  return 0;
};

describe("HTTP metrics", () => {
  it("count error responses in snapmesh_http_requests_total and by code in snapmesh_errors_total", async () => {
    expect((await fetch(`${base}/refused`)).status).toBe(403);
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(sample(text, "snapmesh_http_requests_total", { method: "GET", status: "403" })).toBe(1);
    expect(sample(text, "snapmesh_http_requests_total", { method: "GET", status: "404" })).toBe(2);
    expect(sample(text, "snapmesh_errors_total", { code: "not_allowed", status: "403" })).toBe(1);
    expect(sample(text, "snapmesh_errors_total", { code: "route_not_found", status: "404" })).toBe(2);
  });

  it("count errors Node's HTTP parser answers before the router sees the request", async () => {
    const port = (server.address() as AddressInfo).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      const chunks: Buffer[] = [];
      socket.on("data", (d) => chunks.push(d));
      socket.on("error", reject);
      socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
      socket.write(`GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\n\r\n`);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(sample(text, "snapmesh_http_requests_total", { status: "431" })).toBe(1);
    expect(sample(text, "snapmesh_errors_total", { code: "headers_too_large", status: "431" })).toBe(1);
  });
});

describe("a service's /metrics", () => {
  let service: Service;
  afterAll(() => service?.stop());

  it("counts a refused CloudEvent by its code", async () => {
    service = await notesService(await isolatedConfig());
    const server = await service.start({ host: "127.0.0.1", port: 0 });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const res = await fetch(`${url}/`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(res.status).toBe(400);
    const { code } = ((await res.json()) as { error: { code: string } }).error;
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(sample(text, "snapmesh_http_requests_total", { method: "POST", route: "/", status: "400" })).toBe(1);
    expect(sample(text, "snapmesh_errors_total", { code, status: "400" })).toBe(1);
  });
});
