import { createServer, type Server, type ServerResponse } from "node:http";
import { BlockList, isIP, type Socket } from "node:net";
import type { SnapEvent } from "@snapmesh/events";
import { parseCloudEvents, toBinary } from "./cloudevents-http.js";
import { type AppError, appError, badRequest, toAppError, tooLarge } from "./errors.js";
import { hasBody, readBody, writeBody, writeJson } from "./http-body.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import type { DispatchResult, Registry } from "./registry.js";
import { type ErrorHandler, type Exchange, type Handler, Router } from "./router.js";

export interface HttpServerDeps {
  registry: Registry;
  log: Logger;
  metrics: Metrics;
  maxBodyBytes: number;
  trustProxyHops: number;
  ready: () => Promise<boolean> | boolean;
  /** True once shutdown began: new requests get 503 and `Connection: close`. */
  draining: () => boolean;
  /** Browser origins whose requests get CORS headers (`*`: any); none when empty. */
  corsOrigins?: readonly string[];
  /** Read by `listen()`: how long a client may take to send its headers, and its whole request. */
  timeouts?: ServerTimeouts;
  /** What GET /healthz says it is: the service's name, and the version and revision of the image it runs. */
  identity?: { service: string; version: string; revision: string };
}

export interface ServerTimeouts {
  headersMs: number;
  requestMs: number;
}

const DEFAULT_TIMEOUTS: ServerTimeouts = { headersMs: 20_000, requestMs: 300_000 };

// Addresses a proxy hop inside the cluster or on this host can have: loopback, link-local, private and CGNAT ranges.
const INTERNAL = new BlockList();
INTERNAL.addSubnet("127.0.0.0", 8, "ipv4");
INTERNAL.addSubnet("10.0.0.0", 8, "ipv4");
INTERNAL.addSubnet("172.16.0.0", 12, "ipv4");
INTERNAL.addSubnet("192.168.0.0", 16, "ipv4");
INTERNAL.addSubnet("169.254.0.0", 16, "ipv4");
INTERNAL.addSubnet("100.64.0.0", 10, "ipv4");
INTERNAL.addAddress("::1", "ipv6");
INTERNAL.addSubnet("fc00::", 7, "ipv6");
INTERNAL.addSubnet("fe80::", 10, "ipv6");

/**
 * Which proxies to believe: at most `hops` proxies, and only proxies with an internal address. Knative puts
 * the activator in the path only some of the time (cold, or short of burst capacity), so the number of
 * hops varies; stopping at the first public address keeps a client from choosing its own address by
 * sending X-Forwarded-For when fewer proxies than `hops` are in the path.
 */
export function trustedHops(hops: number): (addr: string, index: number) => boolean {
  return (addr, index) => index < hops && isInternal(addr);
}

function isInternal(addr: string): boolean {
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr)?.[1];
  if (v4mapped) return INTERNAL.check(v4mapped, "ipv4");
  const family = isIP(addr);
  return family === 4 ? INTERNAL.check(addr, "ipv4") : family === 6 ? INTERNAL.check(addr, "ipv6") : false;
}

/** A service's HTTP app: its router, and what `listen()` needs to make the server. */
export class HttpApp extends Router {
  constructor(
    readonly timeouts: ServerTimeouts,
    readonly metrics: Metrics,
    options: ConstructorParameters<typeof Router>[0],
  ) {
    super(options);
  }
}

/** The app: CloudEvents on `POST /`, health, metrics; REST routes are added by the service. */
export function createApp(deps: HttpServerDeps): HttpApp {
  const { registry, metrics } = deps;
  const app = new HttpApp(deps.timeouts ?? DEFAULT_TIMEOUTS, metrics, {
    onError: errorHandler(deps.log, metrics),
    notFound: notFoundHandler(),
    ...(deps.trustProxyHops > 0 ? { trustProxy: trustedHops(deps.trustProxyHops) } : {}),
    before: (x) => {
      observe(metrics, x);
      if (deps.corsOrigins?.length && !cors(deps.corsOrigins, x)) return false;
      if (!deps.draining()) return true;
      x.res.setHeader("connection", "close");
      throw appError("shutting_down", "the service is shutting down; retry");
    },
  });

  app.on("get", "/healthz", ({ res }) => {
    writeJson(res, 200, { status: "ok", ...deps.identity });
  });
  app.on("get", "/readyz", async ({ res }) => {
    const ok = await Promise.resolve(deps.ready()).catch(() => false);
    writeJson(res, ok ? 200 : 503, { status: ok ? "ready" : "not_ready" });
  });
  app.on("get", "/metrics", async ({ res }) => {
    metrics.collectProcessMetrics();
    writeBody(res, 200, metrics.registry.contentType, await metrics.registry.metrics());
  });

  app.on("post", "/", async ({ req, res, ip }) => {
    const body = hasBody(req) ? await readBody(req, deps.maxBodyBytes) : Buffer.alloc(0);
    const { mode, events } = parseCloudEvents(req.headers, body);
    const authorization = req.headers.authorization;
    const options = { ...(authorization ? { authorization } : {}), clientIp: ip };
    // A batch is all-or-nothing: one transaction, so a failing entry leaves nothing of the others applied.
    const results =
      mode === "batch" ? await registry.dispatchBatch(events, options) : [await registry.dispatch(events[0]!, options)];
    for (const [index, result] of results.entries()) {
      metrics.eventsHandled.inc({ type: events[index]!.type, door: "http", outcome: result.duplicate ? "duplicate" : "ok" });
    }
    sendReplies(res, mode, results);
  });

  return app;
}

function sendReplies(res: ServerResponse, mode: string, results: DispatchResult[]): void {
  const replies = results.map((r) => r.reply).filter((r): r is SnapEvent => r !== undefined);
  if (mode === "batch") {
    writeBody(res, 200, "application/cloudevents-batch+json; charset=utf-8", JSON.stringify(replies));
    return;
  }
  const reply = replies[0];
  if (!reply) {
    res.writeHead(202).end();
    return;
  }
  if (mode === "structured") {
    writeBody(res, 200, "application/cloudevents+json; charset=utf-8", JSON.stringify(reply));
    return;
  }
  const { headers, body } = toBinary(reply);
  const { "content-type": contentType, ...rest } = headers;
  writeBody(res, 200, contentType!, body, rest);
}

/** The public error model: never a stack trace, never a 500 for bad input. */
export function errorHandler(log: Logger, metrics?: Metrics): ErrorHandler {
  return (err, { res, path }) => {
    const appErr = toAppError(err);
    metrics?.errors.inc({ code: appErr.code, status: String(appErr.status) });
    if (appErr.status >= 500) log.error({ err, path }, "request failed");
    else log.info({ code: appErr.code, status: appErr.status, path }, "request refused");
    if (res.headersSent) {
      res.end();
      return;
    }
    writeJson(res, appErr.status, appErr.toBody(), appErr.headers);
  };
}

const CORS_HEADERS = "authorization, content-type, idempotency-key, traceparent, if-none-match, range";
const CORS_EXPOSED = "etag, location, retry-after, content-length, content-range";

/**
 * CORS for browser apps on the allowed origins: their requests carry Access-Control-Allow-Origin, and a preflight
 * (OPTIONS with Access-Control-Request-Method) is answered here with 204. Returns false when it answered.
 */
function cors(origins: readonly string[], { req, res }: Exchange): boolean {
  const origin = req.headers.origin;
  if (!origin || !(origins.includes("*") || origins.includes(origin))) return true;
  res.setHeader("access-control-allow-origin", origin);
  res.setHeader("vary", "origin");
  res.setHeader("access-control-expose-headers", CORS_EXPOSED);
  if (req.method !== "OPTIONS" || !req.headers["access-control-request-method"]) return true;
  res.writeHead(204, {
    "access-control-allow-methods": "GET, HEAD, POST, PUT, DELETE, PATCH",
    "access-control-allow-headers": CORS_HEADERS,
    "access-control-max-age": "600",
  });
  res.end();
  return false;
}

function observe(metrics: Metrics, x: Exchange): void {
  const end = metrics.httpDuration.startTimer();
  x.res.on("finish", () => {
    const route = x.route ?? (x.path === "/" ? "/" : "unmatched");
    const method = x.req.method ?? "";
    metrics.httpRequests.inc({ method, route, status: String(x.res.statusCode) });
    end({ method, route });
  });
}

export function notFoundHandler(): Handler {
  return ({ req, path }) => {
    throw appError("route_not_found", `no route for ${req.method} ${path}`);
  };
}

export function listen(app: HttpApp, port: number, host?: string): Promise<Server> {
  const { timeouts, metrics } = app;
  const requestMs = timeouts.requestMs;
  const headersMs = Math.min(timeouts.headersMs, requestMs);
  const server = createServer(
    {
      headersTimeout: headersMs,
      requestTimeout: requestMs,
      // Node checks the timeouts on this interval (default 30 s); keep it below the shortest timeout.
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(headersMs / 4))),
    },
    app.listener,
  );
  server.keepAliveTimeout = 65_000;
  server.on("clientError", (err: Error & { code?: string }, socket: Socket) => answerClientError(err, socket, metrics));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * Errors Node's HTTP parser raises before a request reaches the router (oversized headers, timeouts, garbage)
 * get the same JSON error shape as every other error, instead of Node's bare status line.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket, metrics?: Metrics): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const appErr = clientErrorToAppError(err);
  // Never reaches the router, so neither `observe` nor the error handler sees it.
  metrics?.httpRequests.inc({ method: "unparsed", route: "unmatched", status: String(appErr.status) });
  metrics?.errors.inc({ code: appErr.code, status: String(appErr.status) });
  const body = JSON.stringify(appErr.toBody());
  const reason = STATUS_TEXT[appErr.status] ?? "Bad Request";
  socket.end(
    `HTTP/1.1 ${appErr.status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  408: "Request Timeout",
  413: "Payload Too Large",
  431: "Request Header Fields Too Large",
};

function clientErrorToAppError(err: Error & { code?: string }): AppError {
  switch (err.code) {
    case "HPE_HEADER_OVERFLOW":
      return appError("headers_too_large", "the request headers are too large");
    case "ERR_HTTP_REQUEST_TIMEOUT":
    case "ERR_HTTP_HEADERS_TIMEOUT":
      return appError("request_timeout", "the request was not received in time");
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return tooLarge("the chunk extensions are too large", "payload_too_large");
    default:
      return badRequest("bad_http_request", "the request is not valid HTTP");
  }
}
