import { createServer, type Server } from "node:http";
import type { SnapEvent } from "@snapmesh/events";
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from "express";
import { parseCloudEvents, toBinary } from "./cloudevents-http.js";
import { AppError, badRequest, toAppError, tooLarge } from "./errors.js";
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
}

/** The express app: CloudEvents on `POST /`, health, metrics; REST routes are added by the service. */
export function createApp(deps: HttpServerDeps): express.Express {
  const { registry, metrics } = deps;
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  if (deps.trustProxyHops > 0) app.set("trust proxy", deps.trustProxyHops);
  app.use(observe(metrics));
  app.use((_req, res, next) => {
    if (!deps.draining()) return next();
    res.setHeader("connection", "close");
    next(new AppError(503, "shutting_down", "the service is shutting down; retry"));
  });

  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", async (_req, res) => {
    const ok = await Promise.resolve(deps.ready()).catch(() => false);
    res.status(ok ? 200 : 503).json({ status: ok ? "ready" : "not_ready" });
  });
  app.get("/metrics", async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  app.post("/", express.raw({ type: () => true, limit: deps.maxBodyBytes }), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const { mode, events } = parseCloudEvents(req.headers, body);
    // Check every entry of a batch before applying any, so a bad entry leaves nothing half-done.
    for (const [index, event] of events.entries()) {
      try {
        registry.validate(event);
      } catch (err) {
        if (err instanceof AppError && mode === "batch") {
          throw new AppError(err.status, err.code, `batch entry ${index}: ${err.message}`, { ...err.details, index });
        }
        throw err;
      }
    }
    const authorization = req.headers.authorization;
    const results: DispatchResult[] = [];
    for (const event of events) {
      const result = await registry.dispatch(event, authorization ? { authorization } : {});
      metrics.eventsHandled.inc({ type: event.type, door: "http", outcome: result.duplicate ? "duplicate" : "ok" });
      results.push(result);
    }
    sendReplies(res, mode, results);
  });

  return app;
}

function sendReplies(res: Response, mode: string, results: DispatchResult[]): void {
  const replies = results.map((r) => r.reply).filter((r): r is SnapEvent => r !== undefined);
  if (mode === "batch") {
    res.status(200).type("application/cloudevents-batch+json").send(JSON.stringify(replies));
    return;
  }
  const reply = replies[0];
  if (!reply) {
    res.status(202).end();
    return;
  }
  if (mode === "structured") {
    res.status(200).type("application/cloudevents+json").send(JSON.stringify(reply));
    return;
  }
  const { headers, body } = toBinary(reply);
  res.status(200).set(headers).send(body);
}

/** Last in the chain: the public error model; never a stack trace, never a 500 for bad input. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const appErr = fromExpressError(err) ?? toAppError(err);
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
  if (e?.type === "request.aborted") return new AppError(400, "request_aborted", "the client aborted the request");
  if (typeof e?.status === "number" && e.status >= 400 && e.status < 500 && !(err instanceof AppError)) {
    return new AppError(e.status, "bad_request", e.message ?? "bad request");
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
  return (req, _res, next) => next(new AppError(404, "route_not_found", `no route for ${req.method} ${req.path}`));
}

export function listen(app: express.Express, port: number, host?: string): Promise<Server> {
  const server = createServer(app);
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
