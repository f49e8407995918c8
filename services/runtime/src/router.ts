import type { IncomingMessage, ServerResponse } from "node:http";
import { badRequest } from "./errors.js";

/** One request as a route handler sees it: Node's own request and response, plus what routing found. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The request target's path, as sent (not decoded). */
  readonly path: string;
  /** The first value of each query parameter. */
  readonly query: Readonly<Record<string, string>>;
  /** Path parameters, decoded; a wildcard (`*key`) is its segments joined with `/`. */
  readonly params: Readonly<Record<string, string>>;
  /** The pattern of the route that matched (`/v1/photos/:photoId/like`), for metrics; undefined when none did. */
  readonly route: string | undefined;
  /** The client's address: the socket's, or the first untrusted one in X-Forwarded-For (see `trustProxy`). */
  readonly ip: string;
  header(name: string): string | undefined;
}

export type Handler = (x: Exchange) => unknown;
export type ErrorHandler = (err: unknown, x: Exchange) => void;
export type HttpMethod = "get" | "post" | "put" | "delete" | "patch";

interface Route {
  method: string;
  pattern: string;
  /** Literal segments as strings; `:name` and `*name` as parameters. */
  segments: Array<string | { name: string; rest: boolean }>;
  handler: Handler;
}

/**
 * The HTTP router every service runs behind: exact path patterns with `:param` and a final `*rest`, GET routes
 * answering HEAD, one error handler, and an optional hook run before routing (metrics, draining). A route's
 * handler may return a promise; a rejection reaches the error handler like a throw.
 */
export class Router {
  private readonly routes: Route[] = [];

  constructor(
    private readonly opts: {
      onError: ErrorHandler;
      /** Runs before routing; may throw (the error handler answers) or return false (it answered itself). */
      before?: (x: Exchange) => boolean;
      /** Which X-Forwarded-For hops to trust, by address and distance; none when absent. */
      trustProxy?: (addr: string, index: number) => boolean;
      /** Answers requests no route matches (usually by throwing). */
      notFound: Handler;
    },
  ) {}

  on(method: HttpMethod, pattern: string, handler: Handler): void {
    const segments = pattern
      .split("/")
      .slice(1)
      .map((s) => (s.startsWith(":") || s.startsWith("*") ? { name: s.slice(1), rest: s.startsWith("*") } : s));
    this.routes.push({ method: method.toUpperCase(), pattern, segments, handler });
  }

  /** The request listener for `http.createServer`. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const x: { -readonly [K in keyof Exchange]: Exchange[K] } = {
      req,
      res,
      path,
      query: q === -1 ? {} : firstValues(url.slice(q + 1)),
      params: {},
      route: undefined,
      ip: clientAddress(req, this.opts.trustProxy),
      header: (name) => headerValue(req, name),
    };
    try {
      if (this.opts.before && !this.opts.before(x)) return;
      const found = this.match(req.method === "HEAD" ? "GET" : (req.method ?? ""), path);
      if (found) {
        x.route = found.route.pattern;
        x.params = found.params;
      }
      const result = found ? found.route.handler(x) : this.opts.notFound(x);
      if (result instanceof Promise) result.catch((err: unknown) => this.opts.onError(err, x));
    } catch (err) {
      this.opts.onError(err, x);
    }
  };

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    if (!path.startsWith("/")) return undefined;
    // One trailing slash is ignored, as express does by default.
    const parts = (path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path).split("/").slice(1);
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const params = matchSegments(route.segments, parts);
      if (params) return { route, params };
    }
    return undefined;
  }
}

function matchSegments(segments: Route["segments"], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (typeof segment === "string") {
      if (parts[i] !== segment) return undefined;
      continue;
    }
    if (segment.rest) {
      // Empty segments too (`a//b`): the route judges what it was given.
      const rest = parts.slice(i);
      if (rest.length === 0 || (rest.length === 1 && rest[0] === "")) return undefined;
      params[segment.name] = rest.map(decodeParam).join("/");
      return params;
    }
    if (parts[i] === undefined || parts[i] === "") return undefined;
    params[segment.name] = decodeParam(parts[i]!);
  }
  return parts.length === segments.length ? params : undefined;
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw badRequest("bad_request", `the path segment '${raw.slice(0, 100)}' is not valid percent-encoding`);
  }
}

function firstValues(search: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(search)) if (!(k in out)) out[k] = v;
  return out;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(", ") : v;
}

/**
 * The client's address behind proxies: walking from the socket's address back through X-Forwarded-For, the first
 * hop `trust` refuses (or the farthest one given); the socket's address when nothing is trusted.
 */
export function clientAddress(req: IncomingMessage, trust?: (addr: string, index: number) => boolean): string {
  const socket = req.socket.remoteAddress ?? "";
  if (!trust) return socket;
  const forwarded = headerValue(req, "x-forwarded-for");
  const hops = [
    socket,
    ...(forwarded
      ? forwarded
          .split(",")
          .map((a) => a.trim())
          .reverse()
      : []),
  ];
  for (let i = 0; i < hops.length - 1; i++) if (!trust(hops[i]!, i)) return hops[i]!;
  return hops[hops.length - 1]!;
}
