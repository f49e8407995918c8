import { createServer, type Server } from "node:http";
import { BlockList, isIP, type Socket } from "node:net";
import type { SnapEvent } from "@snapmesh/events";
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from "express";
import { parseCloudEvents, toBinary } from "./cloudevents-http.js";
import { AppError, appError, badRequest, relayedError, toAppError, tooLarge } from "./errors.js";
import { hasBody, readBody, writeBody, writeJson } from "./http-body.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import type { DispatchResult, Registry } from "./registry.js";

export interface HttpServerDeps {
  registry: Registry;
  log: Logger;
  metrics: Metrics;
  maxBodyBytes: number;
  trustProxyHops: number;
  ready: () => Promise<boolean> | boolean;
  /** True once shutdown began: new requests get 503 and `Connection: close`. */
  draining: () => boolean;
  /** Read by `listen()`: how long a client may take to send its headers, and its whole request. */
  timeouts?: ServerTimeouts;
}

export interface ServerTimeouts {
  headersMs: number;
  requestMs: number;
}

const DEFAULT_TIMEOUTS: ServerTimeouts = { headersMs: 20_000, requestMs: 300_000 };
const SERVER_TIMEOUTS = "snapmesh server timeouts";
const SERVER_METRICS = "snapmesh server metrics";

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
 * Express's `trust proxy`: at most `hops` proxies, and only proxies with an internal address. Knative puts
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

/** The express app: CloudEvents on `POST /`, health, metrics; REST routes are added by the service. */
export function createApp(deps: HttpServerDeps): express.Express {
  const { registry, metrics } = deps;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  if (deps.trustProxyHops > 0) app.set("trust proxy", trustedHops(deps.trustProxyHops));
  app.set(SERVER_TIMEOUTS, deps.timeouts ?? DEFAULT_TIMEOUTS);
  app.set(SERVER_METRICS, metrics);
  app.use(observe(metrics));
  app.use((_req, res, next) => {
    if (!deps.draining()) return next();
    res.setHeader("connection", "close");
    next(appError("shutting_down", "the service is shutting down; retry"));
  });

  app.get("/healthz", (_req, res) => {
    writeJson(res, 200, { status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    const ok = await Promise.resolve(deps.ready()).catch(() => false);
    writeJson(res, ok ? 200 : 503, { status: ok ? "ready" : "not_ready" });
  });
  app.get("/metrics", async (_req, res) => {
    writeBody(res, 200, metrics.registry.contentType, await metrics.registry.metrics());
  });

  app.post("/", async (req, res) => {
    const body = hasBody(req) ? await readBody(req, deps.maxBodyBytes) : Buffer.alloc(0);
    const { mode, events } = parseCloudEvents(req.headers, body);
    const authorization = req.headers.authorization;
    const options = { ...(authorization ? { authorization } : {}), clientIp: req.ip };
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

function sendReplies(res: Response, mode: string, results: DispatchResult[]): void {
  const replies = results.map((r) => r.reply).filter((r): r is SnapEvent => r !== undefined);
  if (mode === "batch") {
    writeBody(res, 200, "application/cloudevents-batch+json; charset=utf-8", JSON.stringify(replies));
    return;
  }
  const reply = replies[0];
  if (!reply) {
    res.status(202).end();
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

/** Last in the chain: the public error model; never a stack trace, never a 500 for bad input. */
export function errorHandler(log: Logger, metrics?: Metrics): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const appErr = fromExpressError(err) ?? toAppError(err);
    metrics?.errors.inc({ code: appErr.code, status: String(appErr.status) });
    if (appErr.status >= 500) log.error({ err, path: req.path }, "request failed");
    else log.info({ code: appErr.code, status: appErr.status, path: req.path }, "request refused");
    if (res.headersSent) {
      res.end();
      return;
    }
    res
      .status(appErr.status)
      .set(appErr.headers ?? {})
      .json(appErr.toBody());
  };
}

function fromExpressError(err: unknown): AppError | undefined {
  const e = err as { type?: string; status?: number; limit?: number; message?: string };
  if (e?.type === "entity.too.large") {
    return tooLarge(`the body exceeds the limit of ${e.limit} bytes`, "payload_too_large", { limit: e.limit });
  }
  if (e?.type === "entity.parse.failed") return badRequest("malformed_json", `the body is not valid JSON`);
  if (e?.type === "request.aborted") return appError("request_aborted", "the client aborted the request");
  if (typeof e?.status === "number" && e.status >= 400 && e.status < 500 && !(err instanceof AppError)) {
    return relayedError(e.status, undefined, "bad_request", e.message ?? "bad request");
  }
  return undefined;
}

function observe(metrics: Metrics): RequestHandler {
  return (req: Request, res: Response, next) => {
    const end = metrics.httpDuration.startTimer();
    res.on("finish", () => {
      const route = req.route?.path ? String(req.route.path) : req.path === "/" ? "/" : "unmatched";
      metrics.httpRequests.inc({ method: req.method, route, status: String(res.statusCode) });
      end({ method: req.method, route });
    });
    next();
  };
}

export function notFoundHandler(): RequestHandler {
  return (req, _res, next) => next(appError("route_not_found", `no route for ${req.method} ${req.path}`));
}

export function listen(app: express.Express, port: number, host?: string): Promise<Server> {
  const timeouts = (app.get(SERVER_TIMEOUTS) as ServerTimeouts | undefined) ?? DEFAULT_TIMEOUTS;
  const requestMs = timeouts.requestMs;
  const headersMs = Math.min(timeouts.headersMs, requestMs);
  const server = createServer(
    {
      headersTimeout: headersMs,
      requestTimeout: requestMs,
      // Node checks the timeouts on this interval (default 30 s); keep it below the shortest timeout.
      connectionsCheckingInterval: Math.max(50, Math.min(30_000, Math.floor(headersMs / 4))),
    },
    app,
  );
  server.keepAliveTimeout = 65_000;
  const metrics = app.get(SERVER_METRICS) as Metrics | undefined;
  server.on("clientError", (err: Error & { code?: string }, socket: Socket) => answerClientError(err, socket, metrics));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}

/**
 * Errors Node's HTTP parser raises before a request reaches express (oversized headers, timeouts, garbage)
 * get the same JSON error shape as every other error, instead of Node's bare status line.
 */
function answerClientError(err: Error & { code?: string }, socket: Socket, metrics?: Metrics): void {
  if (err.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const appErr = clientErrorToAppError(err);
  // Never reaches express, so neither `observe` nor the error handler sees it.
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
