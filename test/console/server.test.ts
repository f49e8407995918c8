// The console server's own doors, without a browser: static files stay inside the page's folder, and the one write
// (dead-letter replay) takes the operator token.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningConsole, startConsole } from "../../scripts/src/console/server.ts";
import { testNatsUrl } from "../support/index.ts";
import { uniqueName } from "../support/names.ts";
import { scratchDir } from "../support/service.ts";

let web: RunningConsole;
let locked: RunningConsole;

beforeAll(async () => {
  const root = scratchDir("console-server");
  const publicDir = join(root, "public");
  mkdirSync(join(publicDir, "assets"), { recursive: true });
  writeFileSync(join(publicDir, "index.html"), "<!doctype html><title>page</title>");
  writeFileSync(join(publicDir, "assets", "app.js"), "console.log(1)");
  writeFileSync(join(root, "secret.txt"), "outside the page");
  const names = { stream: uniqueName("CONSOLE"), subjectPrefix: uniqueName("console").toLowerCase() };
  const common = { port: 0, natsUrl: testNatsUrl(), names, services: { auth: "http://127.0.0.1:9" }, publicDir };
  web = await startConsole({ ...common, operatorToken: "op-token-123" });
  locked = await startConsole(common);
});

afterAll(async () => {
  await Promise.all([web?.close(), locked?.close()]);
});

describe("the console server", () => {
  it("serves the page's files and index.html for page routes, never a file outside its folder", async () => {
    const js = await fetch(`${web.url}/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("text/javascript");
    expect(js.headers.get("cache-control")).toContain("immutable");
    expect(await (await fetch(`${web.url}/album`)).text()).toContain("<title>page</title>");
    for (const path of ["/..%2fsecret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt", "/%E0%A4%A"]) {
      const res = await fetch(`${web.url}${path}`);
      expect({ path, body: await res.text() }).not.toEqual({ path, body: "outside the page" });
      expect([200, 404]).toContain(res.status);
    }
  });

  it("reports each service's health, an unreachable one as down", async () => {
    const mesh = (await (await fetch(`${web.url}/api/mesh`)).json()) as {
      services: Array<{ name: string; healthy: boolean; ready: boolean }>;
      replay: string;
    };
    expect(mesh.services).toEqual([expect.objectContaining({ name: "auth", healthy: false, ready: false })]);
    expect(mesh.replay).toBe("operator token");
  });

  it("replays a dead letter only with the operator token, and not at all without one configured", async () => {
    const replay = (base: string, token?: string) =>
      fetch(`${base}/api/dead-letters/1/replay`, {
        method: "POST",
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    expect((await replay(web.url)).status).toBe(401);
    expect((await replay(web.url, "op-token-12")).status).toBe(401);
    expect((await replay(web.url, "op-token-123")).status).toBe(404);
    const off = await replay(locked.url, "op-token-123");
    expect(off.status).toBe(403);
    expect(((await off.json()) as { error: { code: string } }).error.code).toBe("forbidden");
  });
});
