import type { Dispatcher } from "undici";
import { type BaseConfig, splitList } from "./config.js";
import { type AppError, appError } from "./errors.js";
import type { Metrics } from "./metrics.js";

export interface EgressOptions {
  /** Forward proxy for every call (the egress gateway); `EGRESS_PROXY`, else `HTTPS_PROXY`/`HTTP_PROXY`. */
  proxy?: string;
  /** Hosts reached without the proxy (`NO_PROXY`): exact names, `.suffix` / `*.suffix`, or `*`. */
  noProxy?: string[];
  /** Destinations allowed at all; anything else is refused before a connection is made. */
  allowHosts: string[];
  timeoutMs: number;
  retries: number;
  /** Refuse every call when no proxy is configured (nothing may leave around the egress gateway). */
  requireProxy?: boolean;
  breakerThreshold?: number;
  breakerCooldownMs?: number;
  metrics?: Metrics;
}

export interface EgressRequest {
  method?: "GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "PATCH";
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Retried on failure; defaults to true for GET/HEAD/PUT/DELETE. */
  idempotent?: boolean;
  timeoutMs?: number;
}

export interface EgressResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json<T = unknown>(): T;
}

const RETRYABLE_STATUS = new Set([408, 429, 502, 503, 504]);

/** The one way out of a service: proxy-aware, allow-listed, with timeouts, retries with jitter and a circuit breaker. */
export class EgressClient {
  private readonly breakers = new Map<string, CircuitBreaker>();
  // undici is loaded on the first call: most services never call out, and it is a large part of a bundle's
  // start-up (cold start matters under scale to zero).
  private http: Promise<{ request: typeof import("undici").request; direct: Dispatcher; proxied?: Dispatcher }> | undefined;

  constructor(private readonly opts: EgressOptions) {}

  private transport() {
    this.http ??= import("undici").then(({ Agent, ProxyAgent, request }) => ({
      request,
      direct: new Agent({ connect: { timeout: 5_000 } }),
      ...(this.opts.proxy ? { proxied: new ProxyAgent({ uri: this.opts.proxy }) } : {}),
    }));
    return this.http;
  }

  async request(url: string, req: EgressRequest = {}): Promise<EgressResponse> {
    const target = new URL(url);
    const host = target.hostname;
    if (!hostMatches(host, target.host, this.opts.allowHosts)) {
      this.count(host, "refused");
      throw appError("egress_host_not_allowed", `outbound calls to '${target.host}' are not allowed`, {
        details: { host: target.host },
      });
    }
    if (this.opts.requireProxy && !this.opts.proxy) {
      this.count(host, "refused");
      throw appError(
        "egress_proxy_required",
        "outbound calls must go through the egress proxy, and none is configured (EGRESS_PROXY)",
      );
    }
    const breaker = this.breaker(target.host);
    if (!breaker.allows()) {
      this.count(host, "circuit_open");
      throw appError("egress_circuit_open", `calls to '${target.host}' are paused after repeated failures`);
    }
    const method = req.method ?? "GET";
    const idempotent = req.idempotent ?? ["GET", "HEAD", "PUT", "DELETE"].includes(method);
    const attempts = 1 + (idempotent ? this.opts.retries : 0);
    const { request, direct, proxied } = await this.transport();
    const dispatcher = proxied && !hostMatches(host, target.host, this.opts.noProxy ?? []) ? proxied : direct;
    let lastError: AppError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await sleep(jitter(attempt));
      try {
        const res = await request(target, {
          method,
          headers: req.headers,
          body: req.body,
          dispatcher,
          signal: AbortSignal.timeout(req.timeoutMs ?? this.opts.timeoutMs),
        });
        const body = Buffer.from(await res.body.arrayBuffer());
        if (RETRYABLE_STATUS.has(res.statusCode) || res.statusCode >= 500) {
          breaker.failure();
          lastError = appError("egress_upstream_error", `${target.host} answered ${res.statusCode}`, {
            details: { status: res.statusCode },
          });
          if (attempt < attempts) continue;
          this.count(host, "upstream_error", res.statusCode);
          return toResponse(res.statusCode, res.headers, body);
        }
        breaker.success();
        this.count(host, "ok", res.statusCode);
        return toResponse(res.statusCode, res.headers, body);
      } catch (err) {
        breaker.failure();
        const timedOut = (err as Error).name === "TimeoutError" || (err as Error).name === "AbortError";
        lastError = appError(
          timedOut ? "egress_timeout" : "egress_unreachable",
          timedOut ? `${target.host} did not answer in time` : `${target.host} could not be reached: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    this.count(host, lastError?.code ?? "failed");
    throw lastError ?? appError("egress_unreachable", `${target.host} could not be reached`);
  }

  async close(): Promise<void> {
    if (!this.http) return;
    const { direct, proxied } = await this.http;
    await Promise.all([direct.close(), proxied?.close()]);
  }

  private breaker(key: string): CircuitBreaker {
    let b = this.breakers.get(key);
    if (!b) {
      b = new CircuitBreaker(this.opts.breakerThreshold ?? 5, this.opts.breakerCooldownMs ?? 10_000);
      this.breakers.set(key, b);
    }
    return b;
  }

  /** Counts a call, and notes when the last one with this outcome and status (0: no answer) ended. */
  private count(host: string, outcome: string, status = 0): void {
    this.opts.metrics?.egressRequests.inc({ host, outcome });
    this.opts.metrics?.egressLastCall.set({ host, outcome, status: String(status) }, Date.now() / 1000);
  }
}

/** The egress client a service's environment describes. */
export function egressFromConfig(config: BaseConfig, metrics?: Metrics): EgressClient {
  const proxy = config.EGRESS_PROXY ?? config.HTTPS_PROXY ?? config.HTTP_PROXY;
  return new EgressClient({
    ...(proxy ? { proxy } : {}),
    noProxy: splitList(config.NO_PROXY),
    allowHosts: splitList(config.EGRESS_ALLOW_HOSTS),
    timeoutMs: config.EGRESS_TIMEOUT_MS,
    retries: config.EGRESS_RETRIES,
    requireProxy: config.EGRESS_REQUIRE_PROXY === "1",
    ...(metrics ? { metrics } : {}),
  });
}

/** Opens after `threshold` failures in a row; after `cooldownMs` lets one trial call through (half-open). */
export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): "closed" | "open" | "half-open" {
    if (this.openedAt === undefined) return "closed";
    return this.now() - this.openedAt >= this.cooldownMs ? "half-open" : "open";
  }

  allows(): boolean {
    const state = this.state;
    if (state === "half-open") this.openedAt = this.now(); // one trial; others wait for its outcome
    return state !== "open";
  }

  success(): void {
    this.failures = 0;
    this.openedAt = undefined;
  }

  failure(): void {
    this.failures++;
    if (this.failures >= this.threshold) this.openedAt = this.now();
  }
}

export function hostMatches(hostname: string, hostWithPort: string, patterns: string[]): boolean {
  const name = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return patterns.some((raw) => {
    const p = raw.trim().toLowerCase();
    if (!p) return false;
    if (p === "*") return true;
    if (p.startsWith("*.") || p.startsWith(".")) {
      const suffix = p.replace(/^\*/, "");
      return name.endsWith(suffix);
    }
    return p === name || p === hostWithPort.toLowerCase();
  });
}

function toResponse(status: number, headers: EgressResponse["headers"], body: Buffer): EgressResponse {
  return {
    status,
    headers,
    body,
    json<T>() {
      try {
        return JSON.parse(body.toString("utf8")) as T;
      } catch {
        throw appError("egress_bad_response", "the upstream answered with invalid JSON");
      }
    },
  };
}

function jitter(attempt: number): number {
  const base = Math.min(2_000, 100 * 2 ** (attempt - 2));
  return Math.round(base / 2 + Math.random() * base);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
