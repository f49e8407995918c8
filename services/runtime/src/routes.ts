import { createHash, randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import type { CommandDef, SnapEvent } from "@snapmesh/events";
import { parseJson } from "./cloudevents-http.js";
import type { Queryable } from "./db.js";
import { unauthorized } from "./errors.js";
import { hasBody, readBody, writeJson } from "./http-body.js";
import type { Logger } from "./logger.js";
import type { EffectsContext, ReplyData, User } from "./registry.js";
import type { Exchange, HttpMethod, Router } from "./router.js";

export type { HttpMethod };

/** What a route sees of its HTTP request: no Node objects reach a service. */
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
  dispatch(event: SnapEvent, x: Exchange): Promise<unknown>;
}

export function mountRoute<D>(app: Router, host: RouteHost<D>, route: Route<D>): void {
  switch (route.kind) {
    case "command":
      mountCommand(app, host, route);
      return;
    case "query":
      app.on("get", route.path, async (x) => {
        const user = callerOf(host, x);
        const ctx: QueryContext = {
          log: host.log,
          user,
          requireUser: async () => (await user()) ?? throwUnauthorized(),
          read: (fn) => host.read(fn),
        };
        await send(x, await route.run(routeRequest(x), ctx, host.deps()), 200);
      });
      return;
    case "upload":
      app.on(route.method, route.path, async (x) => {
        try {
          const user = callerOf(host, x);
          const ctx: UploadContext = {
            log: host.log,
            requireUser: async () => (await user()) ?? throwUnauthorized(),
            effects: (caller, fn) => host.effects(caller, x.header("traceparent"), fn),
          };
          const upload: UploadRequest = { ...routeRequest(x), stream: x.req };
          await send(x, await route.run(upload, ctx, host.deps()), 201);
        } catch (err) {
          // A refusal before the whole body arrived closes the connection: its socket is not held for the rest.
          if (!x.req.complete) x.res.setHeader("connection", "close");
          throw err;
        }
      });
      return;
  }
}

function mountCommand<D>(app: Router, host: RouteHost<D>, route: CommandRoute<D>): void {
  app.on(route.method, route.path, async (x) => {
    let body: unknown;
    if (hasBody(x.req)) {
      const bytes = await readBody(x.req, host.maxBodyBytes);
      body = bytes.length === 0 ? {} : parseJson(bytes);
    }
    const event = restEvent(host.name, route.def.type, route.input(routeRequest(x, body)), x);
    const data = await host.dispatch(event, x);
    await send(x, route.body ? route.body(data as never, host.deps()) : data, route.status ?? 200);
  });
}

async function send({ req, res }: Exchange, result: unknown, okStatus: number): Promise<void> {
  if (!isReply(result)) {
    if (result === undefined) res.writeHead(okStatus === 200 ? 204 : okStatus).end();
    else writeJson(res, okStatus, result);
    return;
  }
  if (result.json !== undefined) {
    writeJson(res, result.status, result.json, result.headers);
    return;
  }
  res.statusCode = result.status;
  for (const [name, value] of Object.entries(result.headers ?? {})) res.setHeader(name, value);
  if (!result.stream || req.method === "HEAD") {
    res.end();
    return;
  }
  const stream = await result.stream();
  stream.on("error", () => res.destroy());
  stream.pipe(res);
}

function routeRequest(x: Exchange, body?: unknown): RouteRequest {
  return { method: x.req.method ?? "", path: x.path, params: x.params, query: x.query, body, header: x.header };
}

/** The request's caller, resolved on first ask (once). */
function callerOf<D>(host: RouteHost<D>, x: Exchange): () => Promise<User | undefined> {
  let caller: Promise<User | undefined> | undefined;
  return () => {
    caller ??= host.userFrom(x.header("authorization"));
    return caller;
  };
}

function throwUnauthorized(): never {
  throw unauthorized();
}

/** The event a REST call becomes: its id from Idempotency-Key (so retries dedupe), its source per caller. */
function restEvent(service: string, type: string, data: unknown, x: Exchange): SnapEvent {
  const key = x.header("idempotency-key");
  const caller = createHash("sha256")
    .update(x.header("authorization") ?? "anonymous")
    .digest("hex")
    .slice(0, 16);
  const traceparent = x.header("traceparent");
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
