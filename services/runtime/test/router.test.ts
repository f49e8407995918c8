import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { notFound, toAppError } from "../src/errors.ts";
import { writeJson } from "../src/http-body.ts";
import { Router } from "../src/internal.ts";

let server: Server;
let base: string;
const errors: string[] = [];

beforeAll(async () => {
  const router = new Router({
    onError: (err, { res }) => {
      const e = toAppError(err);
      errors.push(e.code);
      writeJson(res, e.status, e.toBody());
    },
    notFound: () => {
      throw notFound("no route", "route_not_found");
    },
  });
  const echo = (tag: string) => (x: Parameters<Parameters<Router["on"]>[2]>[0]) =>
    writeJson(x.res, 200, { tag, params: x.params, query: x.query, route: x.route, path: x.path });
  router.on("get", "/v1/photos/:photoId/like", echo("like"));
  router.on("put", "/v1/photos/:photoId/like", echo("put-like"));
  router.on("get", "/v1/objects/*key", echo("object"));
  router.on("get", "/fails", async () => {
    await Promise.resolve();
    throw notFound("gone away", "object_not_found");
  });
  server = createServer(router.listener);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

const get = async (path: string, init?: RequestInit) => {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
};

describe("Router", () => {
  it("matches by method and pattern, decodes each parameter, and reports the pattern", async () => {
    const res = await get("/v1/photos/a%2Fb%20c/like?first=1&first=2&x=y");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tag: "like",
      params: { photoId: "a/b c" },
      query: { first: "1", x: "y" },
      route: "/v1/photos/:photoId/like",
      path: "/v1/photos/a%2Fb%20c/like",
    });
    expect((await get("/v1/photos/p1/like", { method: "PUT" })).body.tag).toBe("put-like");
  });

  it("gives a wildcard every remaining segment, empty ones included, and ignores one trailing slash", async () => {
    expect((await get("/v1/objects/a/b%20c/d.png")).body.params).toEqual({ key: "a/b c/d.png" });
    expect((await get("/v1/objects/a//b.png")).body.params).toEqual({ key: "a//b.png" });
    expect((await get("/v1/photos/p1/like/")).body.params).toEqual({ photoId: "p1" });
  });

  it("answers HEAD with the GET route and no body", async () => {
    const res = await fetch(`${base}/v1/photos/p1/like`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });

  it("sends a path no route matches, a missing parameter or another method to notFound", async () => {
    for (const [path, method] of [
      ["/v1/photos//like", "GET"],
      ["/v1/photos/p1/like/extra", "GET"],
      ["/v1/objects/", "GET"],
      ["/v1/photos/p1/like", "DELETE"],
    ] as const) {
      const res = await get(path, { method });
      expect({ path, method, status: res.status, code: res.body.error.code }).toEqual({
        path,
        method,
        status: 404,
        code: "route_not_found",
      });
    }
  });

  it("answers bad percent-encoding with 400, and a rejected handler through onError", async () => {
    const bad = await get("/v1/photos/%E0%A4%A/like");
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("bad_request");
    const failed = await get("/fails");
    expect(failed.status).toBe(404);
    expect(failed.body.error.code).toBe("object_not_found");
    expect(errors).toContain("object_not_found");
  });
});
