import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ForwardProxy, forwardProxy } from "../../../scripts/src/proxy.ts";
import { CircuitBreaker, EgressClient, hostMatches } from "../src/egress.ts";

let upstream: Server;
let upstreamUrl: string;
let proxy: ForwardProxy;
let flaky = 0;
let requests = 0;

beforeAll(async () => {
  // Stands in for an outside API: it reports which address the call came from.
  upstream = createServer((req, res) => {
    requests++;
    if (req.url === "/flaky" && flaky > 0) {
      flaky--;
      res.writeHead(503).end();
      return;
    }
    if (req.url === "/slow") {
      setTimeout(() => res.end("late"), 2_000);
      return;
    }
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ from: req.socket.remoteAddress, via: req.headers.via ?? null }));
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  proxy = await forwardProxy("127.0.0.2");
});

afterAll(async () => {
  await proxy?.stop();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
});

const client = (extra: Partial<ConstructorParameters<typeof EgressClient>[0]> = {}) =>
  new EgressClient({ allowHosts: ["127.0.0.1"], timeoutMs: 1_000, retries: 2, ...extra });

describe("egress client", () => {
  it("goes through the forward proxy when one is configured: the upstream sees the egress address", async () => {
    const viaProxy = await client({ proxy: proxy.url }).request(`${upstreamUrl}/who`);
    expect(viaProxy.json<{ from: string; via: string | null }>()).toMatchObject({ from: "127.0.0.2" });
    const direct = await client().request(`${upstreamUrl}/who`);
    expect(direct.json<{ from: string; via: string | null }>()).toEqual({ from: "127.0.0.1", via: null });
  });

  it("bypasses the proxy for NO_PROXY hosts", async () => {
    const res = await client({ proxy: proxy.url, noProxy: ["127.0.0.1"] }).request(`${upstreamUrl}/who`);
    expect(res.json<{ from: string }>().from).toBe("127.0.0.1");
  });

  it("refuses hosts outside the allow-list before connecting", async () => {
    await expect(client().request("http://localhost:1/anything")).rejects.toMatchObject({ code: "egress_host_not_allowed" });
    await expect(client({ allowHosts: [] }).request(`${upstreamUrl}/who`)).rejects.toMatchObject({
      code: "egress_host_not_allowed",
    });
  });

  it("refuses a host off the allow-list with a terminal status, so Knative does not retry it", async () => {
    // The allow-list is the operator's configuration: a retry cannot help, and Knative retries every 5xx.
    const refused = await client()
      .request("http://localhost:1/anything")
      .catch((err: unknown) => err);
    expect(refused).toMatchObject({ code: "egress_host_not_allowed", status: 403, terminal: true });
  });

  it("with requireProxy and no proxy, refuses to send anything", async () => {
    const before = requests;
    await expect(client({ requireProxy: true }).request(`${upstreamUrl}/who`)).rejects.toMatchObject({
      code: "egress_proxy_required",
    });
    expect(requests).toBe(before);
    const viaProxy = await client({ requireProxy: true, proxy: proxy.url }).request(`${upstreamUrl}/who`);
    expect(viaProxy.json<{ from: string }>().from).toBe("127.0.0.2");
  });

  it("retries idempotent calls on 503 and succeeds", async () => {
    flaky = 2;
    const res = await client().request(`${upstreamUrl}/flaky`);
    expect(res.status).toBe(200);
    expect(flaky).toBe(0);
  });

  it("does not retry non-idempotent calls", async () => {
    flaky = 1;
    const res = await client().request(`${upstreamUrl}/flaky`, { method: "POST", body: "{}" });
    expect(res.status).toBe(503);
    flaky = 0;
  });

  it("times out per call", async () => {
    await expect(client({ retries: 0 }).request(`${upstreamUrl}/slow`, { timeoutMs: 100 })).rejects.toMatchObject({
      code: "egress_timeout",
    });
  });

  it("opens the circuit after repeated failures and fails fast", async () => {
    const c = client({ retries: 0, breakerThreshold: 2, breakerCooldownMs: 60_000 });
    await expect(c.request("http://127.0.0.1:1/down")).rejects.toMatchObject({ code: "egress_unreachable" });
    await expect(c.request("http://127.0.0.1:1/down")).rejects.toMatchObject({ code: "egress_unreachable" });
    await expect(c.request("http://127.0.0.1:1/down")).rejects.toMatchObject({ code: "egress_circuit_open" });
  });
});

describe("circuit breaker", () => {
  it("half-opens after the cool-down and closes on success", () => {
    let now = 0;
    const b = new CircuitBreaker(2, 1000, () => now);
    b.failure();
    expect(b.state).toBe("closed");
    b.failure();
    expect(b.allows()).toBe(false);
    now = 1000;
    expect(b.allows()).toBe(true);
    expect(b.allows()).toBe(false);
    b.success();
    expect(b.state).toBe("closed");
  });
});

describe("host matching", () => {
  it("matches exact names, ports and suffixes", () => {
    expect(hostMatches("api.weixin.qq.com", "api.weixin.qq.com", ["*.qq.com"])).toBe(true);
    expect(hostMatches("legacy", "legacy:8080", ["legacy:8080"])).toBe(true);
    expect(hostMatches("evil.com", "evil.com", ["*.qq.com", "legacy"])).toBe(false);
  });
});
