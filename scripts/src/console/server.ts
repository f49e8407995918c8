// The web console's server: the built page (album demo + mesh console) and a read-only API over the mesh: each
// service's health, readiness and version, facts as they pass (server-sent events: from the JetStream stream, or from
// a Knative Trigger checked against the producers' keys), the durable consumers' lag, the dead-letter stream, egress
// calls from the services' metrics. Its one write is a dead-letter replay, which takes the operator token. The album
// talks to the services' public REST APIs itself.
import { timingSafeEqual } from "node:crypto";
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, resolve, sep } from "node:path";
import type { SnapEvent } from "@snapmesh/events";
import {
  appError,
  dlqStream,
  type Exchange,
  fromNatsMessage,
  hasBody,
  natsServerOptions,
  notFound,
  parseCloudEvents,
  Router,
  readBody,
  type StreamNames,
  toAppError,
  unauthorized,
  writeJson,
} from "@snapmesh/runtime/internal";
import { connect, type NatsConnection } from "nats";
import { brokerRepublisher, listDeadLetters, replayDeadLetters } from "../stream.js";

export interface ConsoleOptions {
  port: number;
  host?: string;
  natsUrl: string;
  names: StreamNames;
  /** The services the console watches, by name, with the base URL of each. */
  services: Record<string, string>;
  /** Where a browser reaches each service (the album calls them), when not at `services`' URLs (in a cluster). */
  publicUrls?: Record<string, string>;
  /** The built page (`npm run console:build`); without it the API still serves. */
  publicDir: string;
  /** Required (as `Authorization: Bearer <token>`) to replay dead letters; without one, replay is refused. */
  operatorToken?: string;
  egressProxy?: string;
  /** How many recent facts a page that connects is sent first. */
  history?: number;
  /**
   * Where the facts come from. `stream` (default): the JetStream facts stream, its last facts read by sequence,
   * then its subjects followed.
   * `trigger`: a Knative Trigger delivers them to POST /api/facts/ingest (with Knative Eventing the facts pass
   * through the Broker, not the services' stream); each must carry a producer's valid signature (`verify`).
   */
  facts?: { from: "stream" } | { from: "trigger"; verify: (event: SnapEvent) => string };
  /** With Knative Eventing: the Broker's URL, where a replayed dead letter is posted (else: the facts stream). */
  replayUrl?: string;
}

/** Largest delivery POST /api/facts/ingest reads. */
const MAX_INGEST_BYTES = 1024 * 1024;

export interface RunningConsole {
  url: string;
  server: Server;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
  ".ico": "image/x-icon",
};

export async function startConsole(opts: ConsoleOptions): Promise<RunningConsole> {
  // The first connect fails fast (a wrong URL is reported at start); after it the client reconnects for ever.
  const nc = await connect({
    ...natsServerOptions(opts.natsUrl),
    name: "snapmesh-console",
    timeout: 3_000,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
  });
  let natsUp = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") natsUp = false;
      else if (status.type === "reconnect") natsUp = true;
    }
  })();
  const streams = { natsUrl: opts.natsUrl, names: opts.names };
  const router = new Router({
    onError: (err, { res }) => {
      const e = toAppError(err);
      if (res.headersSent) res.end();
      else writeJson(res, e.status, e.toBody());
    },
    notFound: (x) => serveFile(opts.publicDir, x),
  });

  // Probes: alive while it serves; ready while its NATS connection is up (facts, consumers and dead letters need it).
  router.on("get", "/healthz", ({ res }) => writeJson(res, 200, { status: "ok" }));
  router.on("get", "/readyz", ({ res }) =>
    !natsUp || nc.isClosed()
      ? writeJson(res, 503, { status: "not ready", reason: `NATS at ${opts.natsUrl} is not connected` })
      : writeJson(res, 200, { status: "ready" }),
  );
  router.on("get", "/api/mesh", async ({ res }) => {
    const services = await Promise.all(
      Object.entries(opts.services).map(async ([name, url]) => ({
        ...(await serviceHealth(name, url)),
        // What the album in the browser calls; the console itself probes `url`.
        url: opts.publicUrls?.[name] ?? url,
      })),
    );
    writeJson(res, 200, {
      services,
      stream: opts.names.stream,
      deadLetterStream: dlqStream(opts.names),
      egress: { proxy: opts.egressProxy ?? null },
      replay: opts.operatorToken ? "operator token" : "disabled",
    });
  });
  router.on("get", "/api/consumers", async ({ res }) => writeJson(res, 200, { consumers: await consumers(nc, opts.names) }));
  router.on("get", "/api/dead-letters", async ({ res }) => writeJson(res, 200, { deadLetters: await listDeadLetters(streams) }));
  router.on("post", "/api/dead-letters/:seq/replay", async (x) => {
    requireOperator(x, opts.operatorToken);
    const seq = Number(x.params.seq);
    const replayed = await replayDeadLetters({
      ...streams,
      dryRun: false,
      seq,
      ...(opts.replayUrl ? { republish: brokerRepublisher(opts.replayUrl, (m) => appError("unavailable", m)) } : {}),
    });
    if (replayed.length === 0) throw notFound(`no dead letter ${seq}`);
    writeJson(x.res, 200, { replayed });
  });
  router.on("get", "/api/egress", async ({ res }) => {
    const egress = await Promise.all(Object.entries(opts.services).map(([name, url]) => egressCalls(name, url)));
    // The most recent first: each (service, host, outcome, status) with when its last call ended.
    const last = egress.flatMap((e) => e.last).sort((x, y) => (x.at < y.at ? 1 : x.at > y.at ? -1 : 0));
    writeJson(res, 200, { proxy: opts.egressProxy ?? null, calls: egress.flatMap((e) => e.calls), last: last.slice(0, 20) });
  });
  const facts = opts.facts ?? { from: "stream" };
  if (facts.from === "trigger") {
    const hub = new FactHub(opts.history ?? 100);
    router.on("get", "/api/facts", (x) => hub.follow(x));
    router.on("post", "/api/facts/ingest", async ({ req, res }) => {
      const body = hasBody(req) ? await readBody(req, MAX_INGEST_BYTES) : Buffer.alloc(0);
      const { events } = parseCloudEvents(req.headers, body);
      // Every event is checked before any is shown: a forged one in a batch refuses the whole delivery.
      for (const event of events) facts.verify(event);
      for (const event of events) hub.add(event);
      res.writeHead(202).end();
    });
  } else router.on("get", "/api/facts", (x) => streamFacts(nc, opts.names, x, opts.history ?? 100));

  const server = createServer(router.listener);
  await new Promise<void>((r, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host ?? "127.0.0.1", r);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${opts.host ?? "127.0.0.1"}:${port}`,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await nc.close();
    },
  };
}

/** Facts a Trigger delivered: the last `history` kept in memory, and every page following them. */
class FactHub {
  private readonly recent: Array<{ seq: number; subject: string; event: SnapEvent }> = [];
  private readonly pages = new Set<ServerResponse>();
  private seq = 0;

  constructor(private readonly history: number) {}

  add(event: SnapEvent): void {
    const entry = { seq: ++this.seq, subject: `broker.${event.type}`, event };
    this.recent.push(entry);
    if (this.recent.length > this.history) this.recent.shift();
    for (const res of this.pages) send(res, "fact", entry);
  }

  follow(x: Exchange): void {
    openEventStream(x, () => this.pages.delete(x.res));
    for (const entry of this.recent) send(x.res, "fact", entry);
    this.pages.add(x.res);
  }
}

function requireOperator(x: Exchange, token: string | undefined): void {
  if (!token) throw appError("forbidden", "dead-letter replay is off: start the console with an operator token");
  const given = Buffer.from(/^Bearer (.+)$/.exec(x.header("authorization") ?? "")?.[1] ?? "");
  const want = Buffer.from(token);
  if (given.length !== want.length || !timingSafeEqual(given, want)) throw unauthorized("an operator token is required");
}

async function serviceHealth(name: string, url: string) {
  const probe = async (path: string) => {
    try {
      const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(2_000) });
      return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
    } catch (err) {
      return { status: 0, body: { error: (err as Error).message } };
    }
  };
  const [health, ready] = await Promise.all([probe("/healthz"), probe("/readyz")]);
  const version = typeof health.body.version === "string" ? health.body.version : null;
  const revision = typeof health.body.revision === "string" ? health.body.revision : null;
  return { name, url, healthy: health.status === 200, ready: ready.status === 200, readiness: ready.body, version, revision };
}

async function consumers(nc: NatsConnection, names: StreamNames) {
  const jsm = await nc.jetstreamManager();
  // With Knative Eventing the services keep no stream of their own: no durable consumers to show.
  if (!(await jsm.streams.info(names.stream).catch(() => undefined))) return [];
  const out = [];
  for await (const c of jsm.consumers.list(names.stream)) {
    if (!c.config.durable_name) continue;
    out.push({
      name: c.name,
      filterSubjects: c.config.filter_subjects ?? (c.config.filter_subject ? [c.config.filter_subject] : []),
      pending: c.num_pending,
      ackPending: c.num_ack_pending,
      redelivered: c.num_redelivered,
      delivered: c.delivered.stream_seq,
    });
  }
  return out;
}

/**
 * The egress metrics each service exposes on /metrics: calls by host and outcome
 * (`snapmesh_egress_requests_total{host,outcome}`), and when the last call with each outcome and HTTP status ended
 * (`snapmesh_egress_last_call_timestamp_seconds{host,outcome,status}`).
 */
async function egressCalls(service: string, url: string) {
  const text = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2_000) })
    .then((r) => r.text())
    .catch(() => "");
  const samples = (metric: string) =>
    [...text.matchAll(new RegExp(`^${metric}\\{([^}]*)\\} ([0-9.e+-]+)$`, "gm"))].map(([, labels, value]) => {
      const label = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(labels!)?.[1] ?? "";
      return { label, value: Number(value) };
    });
  const calls = samples("snapmesh_egress_requests_total").map(({ label, value }) => ({
    service,
    host: label("host"),
    outcome: label("outcome"),
    count: value,
  }));
  const last = samples("snapmesh_egress_last_call_timestamp_seconds").map(({ label, value }) => ({
    service,
    host: label("host"),
    outcome: label("outcome"),
    status: Number(label("status")),
    at: new Date(value * 1000).toISOString(),
    // All calls to the host with this outcome, whatever their status.
    count: calls.find((c) => c.host === label("host") && c.outcome === label("outcome"))?.count ?? 0,
  }));
  return { calls, last };
}

/**
 * Server-sent events: the last `history` facts of the stream (read by sequence), then each one as it is published
 * (a plain subscription to the facts subjects). The console creates no consumer and acknowledges nothing, so its
 * NATS user needs no right to change JetStream (consoleNatsPermissions).
 */
async function streamFacts(nc: NatsConnection, names: StreamNames, x: Exchange, history: number) {
  const { res } = x;
  // Subscribed before the stream's last sequence is read, so no fact falls between the history and the live ones.
  const live = nc.subscribe(`${names.subjectPrefix}.>`);
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(names.stream).catch(() => undefined);
  if (!info) {
    live.unsubscribe();
    throw appError("unavailable", `the stream ${names.stream} does not exist yet`);
  }
  openEventStream(x, () => live.unsubscribe());
  // A plain subscriber sees every publish, also a repeat the stream drops as a duplicate (a relay's retry, a fact
  // both in the history and live): the message ids of the stream's duplicate window are remembered and skipped.
  const seen = new RecentIds(info.config.duplicate_window / 1e6 || 120_000);
  const first = Math.max(info.state.first_seq, info.state.last_seq - history + 1);
  for (let seq = first; info.state.messages > 0 && seq <= info.state.last_seq && !live.isClosed(); seq++) {
    const m = await jsm.streams.getMessage(names.stream, { seq }).catch(() => undefined);
    if (!m) continue;
    seen.add(m.header?.get(MSG_ID));
    sendFact(res, seq, m.subject, m.data, m.header);
  }
  for await (const m of live) {
    const id = m.headers?.get(MSG_ID);
    if (seen.has(id)) continue;
    seen.add(id);
    sendFact(res, null, m.subject, m.data, m.headers);
  }
}

const MSG_ID = "Nats-Msg-Id";

/** Message ids seen within the last `windowMs` (oldest first, so expired ones are dropped from the front). */
class RecentIds {
  private readonly at = new Map<string, number>();

  constructor(private readonly windowMs: number) {}

  has(id: string | undefined): boolean {
    return Boolean(id) && this.at.has(id!);
  }

  add(id: string | undefined): void {
    const now = Date.now();
    for (const [old, t] of this.at) {
      if (now - t < this.windowMs) break;
      this.at.delete(old);
    }
    if (id) this.at.set(id, now);
  }
}

/** Sends one stored or live fact (seq null: live, its sequence unknown to a plain subscriber). */
function sendFact(
  res: ServerResponse,
  seq: number | null,
  subject: string,
  data: Uint8Array,
  headers: Parameters<typeof fromNatsMessage>[1],
): void {
  try {
    send(res, "fact", { seq, subject, event: fromNatsMessage(data, headers) });
  } catch (err) {
    send(res, "undecodable", { seq, subject, error: (err as Error).message });
  }
}

/** Answers with a server-sent event stream, kept alive by a comment every 15 s; `closed` runs when the page leaves. */
function openEventStream({ req, res }: Exchange, closed: () => void): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
  res.write(": snapmesh facts\n\n");
  const keepAlive = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
  req.on("close", () => {
    clearInterval(keepAlive);
    closed();
  });
}

function send(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The built page's files; a path without a file gets index.html (the page routes itself). */
function serveFile(publicDir: string, { req, res, path }: Exchange): void {
  if (req.method !== "GET" && req.method !== "HEAD") throw appError("route_not_found", `no route for ${req.method} ${path}`);
  if (path.startsWith("/api/")) throw appError("route_not_found", `no route for ${req.method} ${path}`);
  const root = resolve(publicDir);
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw appError("route_not_found", `no file ${path}`);
  }
  let file = normalize(join(root, decoded));
  if (file !== root && !file.startsWith(root + sep)) throw appError("route_not_found", `no file ${path}`);
  if (!existsSync(file) || statSync(file).isDirectory()) file = join(root, "index.html");
  if (!existsSync(file)) {
    throw appError("unavailable", "the console page is not built: run `npm run console:build`");
  }
  const immutable = file.includes(`${sep}assets${sep}`);
  res.writeHead(200, {
    "content-type": TYPES[extname(file)] ?? "application/octet-stream",
    "content-length": statSync(file).size,
    "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
    "x-content-type-options": "nosniff",
  });
  if (req.method === "HEAD") res.end();
  else createReadStream(file).pipe(res);
}
