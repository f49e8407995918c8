import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route">;
  errors: Counter<"code" | "status">;
  eventsHandled: Counter<"type" | "door" | "outcome">;
  eventsPublished: Counter<"type" | "sink" | "outcome">;
  outboxPending: Gauge<never>;
  deadLettered: Counter<"type">;
  eventsRefused: Counter<"type" | "reason">;
  egressRequests: Counter<"host" | "outcome">;
  egressLastCall: Gauge<"host" | "outcome" | "status">;
  /**
   * Starts collecting Node's process metrics (CPU, memory, event loop lag, GC); once, whoever calls first. A serving
   * service calls it shortly after it listens and at the first scrape: loading and setting them up is off the cold start.
   */
  collectProcessMetrics(): void;
}

export function createMetrics(service: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  let collecting = false;
  const registers = [registry];
  return {
    registry,
    collectProcessMetrics() {
      if (collecting) return;
      collecting = true;
      collectDefaultMetrics({ register: registry });
    },
    httpRequests: new Counter({
      name: "snapmesh_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    httpDuration: new Histogram({
      name: "snapmesh_http_request_duration_seconds",
      help: "HTTP request duration",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    errors: new Counter({
      name: "snapmesh_errors_total",
      help: "HTTP error answers by error code and status",
      labelNames: ["code", "status"],
      registers,
    }),
    eventsHandled: new Counter({
      name: "snapmesh_events_handled_total",
      help: "CloudEvents handled, by type, door (http, rest, jetstream) and outcome (ok, duplicate, rejected, failed)",
      labelNames: ["type", "door", "outcome"],
      registers,
    }),
    eventsPublished: new Counter({
      name: "snapmesh_events_published_total",
      help: "Facts relayed from the outbox to the sink",
      labelNames: ["type", "sink", "outcome"],
      registers,
    }),
    outboxPending: new Gauge({
      name: "snapmesh_outbox_pending",
      help: "Facts in the outbox not yet published (as of the relay's last drain)",
      registers,
    }),
    deadLettered: new Counter({
      name: "snapmesh_events_dead_lettered_total",
      help: "Events moved to the dead-letter stream",
      labelNames: ["type"],
      registers,
    }),
    eventsRefused: new Counter({
      name: "snapmesh_events_refused_total",
      help: "Events refused because their producer was not proven (reason: unsigned, producer_unknown, signature_invalid, …)",
      labelNames: ["type", "reason"],
      registers,
    }),
    egressRequests: new Counter({
      name: "snapmesh_egress_requests_total",
      help: "Outbound HTTP calls by destination host and outcome",
      labelNames: ["host", "outcome"],
      registers,
    }),
    egressLastCall: new Gauge({
      name: "snapmesh_egress_last_call_timestamp_seconds",
      help: "When the last outbound call to a host ended with this outcome and HTTP status (status 0: no answer)",
      labelNames: ["host", "outcome", "status"],
      registers,
    }),
  };
}
