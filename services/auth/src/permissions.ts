import { createHash } from "node:crypto";
import { appError, type EgressClient, type Logger } from "@snapmesh/runtime";
import type { KV, NatsConnection } from "nats";

export interface PermissionQuery {
  userId: string;
  action: string;
  resource: string;
}

export interface Decision {
  allowed: boolean;
  reason: string;
}

/**
 * Where decisions come from when local rules do not settle them. The default asks the legacy album
 * backend over HTTP; a team with another backend implements this interface and passes it in.
 */
export interface PermissionBackend {
  decide(q: PermissionQuery): Promise<Decision>;
}

export interface LegacyHttpOptions {
  url: string;
  method: "POST" | "GET";
  /** `Name: value`, e.g. `Authorization: Bearer …`. */
  authHeader?: string;
  allowedField: string;
  timeoutMs: number;
}

/** The legacy backend over HTTP, through the egress client (proxy, allow-list, timeout, circuit breaker). */
export class LegacyHttpBackend implements PermissionBackend {
  constructor(
    private readonly egress: EgressClient,
    private readonly opts: LegacyHttpOptions,
  ) {}

  async decide(q: PermissionQuery): Promise<Decision> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.opts.authHeader) {
      const i = this.opts.authHeader.indexOf(":");
      headers[this.opts.authHeader.slice(0, i).trim().toLowerCase()] = this.opts.authHeader.slice(i + 1).trim();
    }
    let url = this.opts.url;
    let body: string | undefined;
    if (this.opts.method === "GET") {
      const u = new URL(url);
      for (const [k, v] of Object.entries(q)) u.searchParams.set(k, v);
      url = u.toString();
    } else {
      headers["content-type"] = "application/json";
      body = JSON.stringify(q);
    }
    const res = await this.egress.request(url, {
      method: this.opts.method,
      headers,
      ...(body ? { body } : {}),
      idempotent: true, // a permission question changes nothing: safe to retry
      timeoutMs: this.opts.timeoutMs,
    });
    if (res.status >= 400) throw appError("legacy_unavailable", `the legacy backend answered ${res.status}`);
    const answer = res.json<Record<string, unknown>>();
    const allowed = answer[this.opts.allowedField];
    if (typeof allowed !== "boolean") {
      throw appError("legacy_unavailable", `the legacy backend's answer has no boolean '${this.opts.allowedField}'`);
    }
    return { allowed, reason: typeof answer.reason === "string" ? answer.reason : allowed ? "legacy_allowed" : "legacy_denied" };
  }
}

/** Decisions shared by every replica: a NATS KV bucket whose entries expire after the TTL. */
export interface DecisionCache {
  get(q: PermissionQuery): Promise<Decision | undefined>;
  set(q: PermissionQuery, d: Decision): Promise<void>;
}

const cacheKey = (q: PermissionQuery) => createHash("sha256").update(`${q.userId}\n${q.action}\n${q.resource}`).digest("hex");

export class KvDecisionCache implements DecisionCache {
  private kv: Promise<KV> | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly bucket: string,
    private readonly ttlMs: number,
  ) {}

  private store(): Promise<KV> {
    this.kv ??= this.nc.jetstream().views.kv(this.bucket, { ttl: this.ttlMs, history: 1 });
    return this.kv;
  }

  async get(q: PermissionQuery): Promise<Decision | undefined> {
    const entry = await (await this.store()).get(cacheKey(q));
    if (entry?.operation !== "PUT" || entry.length === 0) return undefined;
    return entry.json<Decision>();
  }

  async set(q: PermissionQuery, d: Decision): Promise<void> {
    await (await this.store()).put(cacheKey(q), JSON.stringify(d));
  }
}

/** Per-replica cache for runs without NATS. */
export class MemoryDecisionCache implements DecisionCache {
  private readonly map = new Map<string, { d: Decision; until: number }>();
  constructor(private readonly ttlMs: number) {}
  async get(q: PermissionQuery) {
    const hit = this.map.get(cacheKey(q));
    return hit && hit.until > Date.now() ? hit.d : undefined;
  }
  async set(q: PermissionQuery, d: Decision) {
    this.map.set(cacheKey(q), { d, until: Date.now() + this.ttlMs });
  }
}

export type LocalRule = (q: PermissionQuery) => Decision | undefined;

/** Rules auth settles without asking anyone: a user may act on themself; configured admins may do anything. */
export function localRules(admins: string[]): LocalRule[] {
  return [
    (q) => (q.resource === `user:${q.userId}` ? { allowed: true, reason: "self" } : undefined),
    (q) => (admins.includes(q.userId) ? { allowed: true, reason: "admin" } : undefined),
  ];
}

/** Local rules, then the cache, then the backend; an unreachable backend gives the configured default, uncached. */
export class PermissionService {
  constructor(
    private readonly rules: LocalRule[],
    private readonly backend: PermissionBackend | undefined,
    private readonly cache: () => DecisionCache,
    private readonly failOpen: boolean,
    private readonly log: Logger,
  ) {}

  async check(q: PermissionQuery): Promise<Decision> {
    const decision = await this.decide(q);
    this.log.info({ ...q, ...decision }, "permission decided");
    return decision;
  }

  private async decide(q: PermissionQuery): Promise<Decision> {
    for (const rule of this.rules) {
      const d = rule(q);
      if (d) return d;
    }
    if (!this.backend) return { allowed: this.failOpen, reason: "no_backend_configured" };
    const cached = await this.cache()
      .get(q)
      .catch(() => undefined);
    if (cached) return cached;
    let d: Decision;
    try {
      d = await this.backend.decide(q);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, ...q }, "legacy backend unavailable");
      return { allowed: this.failOpen, reason: "legacy_unavailable" };
    }
    await this.cache()
      .set(q, d)
      .catch((err) => this.log.warn({ err: (err as Error).message }, "could not cache a decision"));
    return d;
  }
}
