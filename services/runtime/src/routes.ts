import { createHash, randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { CommandDef, SnapEvent } from "@snapmesh/events";
import type express from "express";
import type { Request, Response } from "express";
import { parseJson } from "./cloudevents-http.js";
import type { Queryable } from "./db.js";
import { unauthorized } from "./errors.js";
import { hasBody, readBody, writeJson } from "./http-body.js";
import type { Logger } from "./logger.js";
import type { EffectsContext, ReplyData, User } from "./registry.js";

export type HttpMethod = "get" | "post" | "put" | "delete" | "patch";

/** What a route sees of its HTTP request: no express objects reach a service. */
export interface RouteRequest {
  readonly method: string;
  readonly path: string;
  /** Path parameters; a wildcard (`*key`) is joined with `/`. */
  readonly params: Readonly<Record<string, string>>;
  /** Query parameters (the first value of each). */
  readonly query: Readonly<Record<string, string | undefined>>;
  /** The parsed JSON body (command routes only). */
  readonly body: unknown;
  header(name: string): string | undefined;
}

/** An answer with its own status and headers; `stream` is opened after the read transaction has ended. */
export interface HttpReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly json?: unknown;
  readonly stream?: () => Promise<Readable>;
}

const REPLY = Symbol("snapmesh.httpReply");

/** Marks a route's result as a whole HTTP answer rather than a JSON body. */
export function httpReply(reply: HttpReply): HttpReply {
  return Object.assign({ [REPLY]: true }, reply);
}

function isReply(value: unknown): value is HttpReply {
  return typeof value === "object" && value !== null && REPLY in value;
}

export interface QueryContext {
  readonly log: Logger;
  /** The caller, when the request carries a session token (a bad token is a 401); a route that never asks ignores the header. */
  user(): Promise<User | undefined>;
  /** The caller, or a 401. */
  requireUser(): Promise<User>;
  /** Runs `fn` in a read-only transaction: a query sees one snapshot and can change nothing. */
  read<T>(fn: (db: Queryable) => Promise<T>): Promise<T>;
}

export interface UploadRequest extends RouteRequest {
  /** The request body as it arrives; nothing has read it yet. */
  readonly stream: Readable;
}

export interface UploadContext {
  readonly log: Logger;
  /** The caller, or a 401 (the route decides when to ask, e.g. after checking the path). */
  requireUser(): Promise<User>;
  /** One transaction with the handler effects (emit to the outbox, onRollback) for `user`, without an inbox record. */
  effects<T>(user: User, fn: (ctx: EffectsContext) => Promise<T>): Promise<T>;
}

/** A REST route that turns the request into a command event; the reply's data is the body. */
export interface CommandRoute<D = unknown> {
  readonly kind: "command";
  readonly method: HttpMethod;
  readonly path: string;
  readonly def: CommandDef;
  readonly input: (req: RouteRequest) => unknown;
  readonly status?: number;
  readonly body?: (reply: never, deps: D) => unknown;
}

export interface QueryRoute<D = unknown> {
  readonly kind: "query";
  readonly path: string;
  readonly run: (req: RouteRequest, ctx: QueryContext, deps: D) => Promise<unknown>;
}

export interface UploadRoute<D = unknown> {
  readonly kind: "upload";
  readonly method: "put" | "post";
  readonly path: string;
  readonly run: (req: UploadRequest, ctx: UploadContext, deps: D) => Promise<unknown>;
}

export type Route<D = unknown> = CommandRoute<D> | QueryRoute<D> | UploadRoute<D>;

/** The three kinds of REST route a service declares. */
export const rest = {
  /** Maps a request to the command `def` (the same handler as on the CloudEvents door, with the inbox). */
  command<C extends CommandDef, D = unknown>(
    method: HttpMethod,
    path: string,
    def: C,
    input: (req: RouteRequest) => unknown,
    options: { status?: number; body?: (reply: ReplyData<C>, deps: D) => unknown } = {},
  ): CommandRoute<D> {
    return { kind: "command", method, path, def, input, ...(options as Pick<CommandRoute<D>, "status" | "body">) };
  },
  /** A read (GET, and HEAD): no inbox, no effects, one read-only transaction when it touches the database. */
  query<D = unknown>(path: string, run: QueryRoute<D>["run"]): QueryRoute<D> {
    return { kind: "query", path, run };
  },
  /** A streamed body (an upload): the route reads it as it arrives, then commits its effects. */
  upload<D = unknown>(method: "put" | "post", path: string, run: UploadRoute<D>["run"]): UploadRoute<D> {
    return { kind: "upload", method, path, run };
  },
};

/** What the routes need from the service that mounts them. */
export interface RouteHost<D> {
  readonly name: string;
  readonly log: Logger;
  readonly maxBodyBytes: number;
  readonly deps: () => D;
  userFrom(authorization: string | undefined): Promise<User | undefined>;
  read<T>(fn: (db: Queryable) => Promise<T>): Promise<T>;
  effects<T>(user: User, traceparent: string | undefined, fn: (ctx: EffectsContext) => Promise<T>): Promise<T>;
  /** Runs a command event through the registry; the reply's data. */
  dispatch(event: SnapEvent, req: Request): Promise<unknown>;
}

export function mountRoute<D>(app: express.Express, host: RouteHost<D>, route: Route<D>): void {
  switch (route.kind) {
    case "command":
      mountCommand(app, host, route);
      return;
    case "query":
      app.get(route.path, async (req, res) => {
        const user = callerOf(host, req);
        const ctx: QueryContext = {
          log: host.log,
          user,
          requireUser: async () => (await user()) ?? throwUnauthorized(),
          read: (fn) => host.read(fn),
        };
        await send(req, res, await route.run(routeRequest(req), ctx, host.deps()), 200);
      });
      return;
    case "upload":
      app[route.method](route.path, async (req, res) => {
        try {
          const user = callerOf(host, req);
          const ctx: UploadContext = {
            log: host.log,
            requireUser: async () => (await user()) ?? throwUnauthorized(),
            effects: (caller, fn) => host.effects(caller, req.header("traceparent"), fn),
          };
          const upload: UploadRequest = Object.assign(routeRequest(req), { stream: req as Readable });
          await send(req, res, await route.run(upload, ctx, host.deps()), 201);
        } catch (err) {
          // A refusal before the whole body arrived closes the connection: its socket is not held for the rest.
          if (!req.complete) res.setHeader("connection", "close");
          throw err;
        }
      });
      return;
  }
}

function mountCommand<D>(app: express.Express, host: RouteHost<D>, route: CommandRoute<D>): void {
  app[route.method](route.path, async (req: Request, res: Response) => {
    if (hasBody(req)) {
      const bytes = await readBody(req, host.maxBodyBytes);
      req.body = bytes.length === 0 ? {} : parseJson(bytes);
    }
    const event = restEvent(host.name, route.def.type, route.input(routeRequest(req)), req);
    const data = await host.dispatch(event, req);
    const body = route.body ? route.body(data as never, host.deps()) : data;
    await send(req, res, body, route.status ?? 200);
  });
}

async function send(req: Request, res: Response, result: unknown, okStatus: number): Promise<void> {
  if (!isReply(result)) {
    if (result === undefined) res.status(okStatus === 200 ? 204 : okStatus).end();
    else writeJson(res, okStatus, result);
    return;
  }
  if (result.json !== undefined) {
    writeJson(res, result.status, result.json, result.headers);
    return;
  }
  res.status(result.status).set(result.headers ?? {});
  if (!result.stream || req.method === "HEAD") {
    res.end();
    return;
  }
  const stream = await result.stream();
  stream.on("error", () => res.destroy());
  stream.pipe(res);
}

function routeRequest(req: Request): RouteRequest {
  const params: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.params as Record<string, string | string[]>)) {
    params[k] = Array.isArray(v) ? v.join("/") : String(v);
  }
  const query: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.query)) {
    const first = Array.isArray(v) ? v[0] : v;
    query[k] = typeof first === "string" ? first : undefined;
  }
  return { method: req.method, path: req.path, params, query, body: req.body, header: (name) => req.header(name) };
}

/** The request's caller, resolved on first ask (once). */
function callerOf<D>(host: RouteHost<D>, req: Request): () => Promise<User | undefined> {
  let caller: Promise<User | undefined> | undefined;
  return () => {
    caller ??= host.userFrom(req.header("authorization"));
    return caller;
  };
}

function throwUnauthorized(): never {
  throw unauthorized();
}

/** The event a REST call becomes: its id from Idempotency-Key (so retries dedupe), its source per caller. */
function restEvent(service: string, type: string, data: unknown, req: Request): SnapEvent {
  const key = req.header("idempotency-key");
  const caller = createHash("sha256")
    .update(req.header("authorization") ?? "anonymous")
    .digest("hex")
    .slice(0, 16);
  const traceparent = req.header("traceparent");
  return {
    specversion: "1.0",
    id: key ? `idem-${key}` : randomUUID(),
    source: `/snapmesh/${service}/rest/${caller}`,
    type,
    time: new Date().toISOString(),
    datacontenttype: "application/json",
    data,
    ...(traceparent ? { traceparent } : {}),
  };
}
