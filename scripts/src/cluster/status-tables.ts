import { painter, type Table } from "./print.js";
import type {
  BrokerStatus,
  MigrationStatus,
  PingSourceStatus,
  Problem,
  ReleaseStatus,
  ServiceStatus,
  SinkBindingStatus,
  TriggerStatus,
} from "./status-model.js";

const paint = painter();
const dash = (v: string | number | null | undefined) => (v === null || v === undefined || v === "" ? "-" : String(v));
const readyCell = (r: { ready: boolean; condition: string }) =>
  r.ready ? paint.green("True") : r.condition === "False" ? paint.red("False") : paint.yellow(r.condition);

// A Revision is named after its Service: "<service>-00002" reads as "00002" in the Service's row.
const short = (service: string, revision: string | null) =>
  revision?.startsWith(`${service}-`) ? revision.slice(service.length + 1) : dash(revision);

function revisions(s: ServiceStatus): string {
  const created = short(s.name, s.latestCreatedRevision);
  const ready = short(s.name, s.latestReadyRevision);
  return created === ready ? created : `${created}/${ready}`;
}

function traffic(s: ServiceStatus): string {
  if (!s.traffic.length) return "-";
  return s.traffic.map((t) => `${short(s.name, t.revision)}=${t.percent}%${t.tag ? `(${t.tag})` : ""}`).join(",");
}

function prewarm(s: ServiceStatus): string {
  if (!s.prewarm) return "";
  const p = s.prewarm;
  const min = `min ${dash(p.min)}`;
  if (!p.until) return min;
  return p.expired ? paint.yellow(`${min}, expired ${p.until}`) : `${min} until ${p.until}`;
}

const since = <R extends { since: string | null }>() => ({ header: "SINCE", value: (r: R) => dash(r.since), wide: true });

const asTable = <R>(table: Table<R>) => table as unknown as Table<never>;

/** A release as the tables a person reads: empty sections are left out. */
export function releaseTables(r: ReleaseStatus, namespace: string): Table<never>[] {
  const verdict = r.ready ? paint.green("Ready") : paint.red(`NOT READY (${r.problems.length} problem(s))`);
  const tables: Table<never>[] = [];
  tables.push(
    asTable<ServiceStatus>({
      title: paint.bold(`Release ${r.release} in namespace ${namespace}: `) + verdict,
      columns: [
        { header: "KSVC", value: (s) => s.name },
        { header: "READY", value: readyCell },
        { header: "REASON", value: (s) => dash(s.reason) },
        { header: "REVISION", value: revisions },
        { header: "TRAFFIC", value: traffic },
        { header: "REPLICAS", value: (s) => dash(s.replicas) },
        { header: "MIN", value: (s) => dash(s.minScale) },
        { header: "MAX", value: (s) => dash(s.maxScale) },
        { header: "PREWARM", value: prewarm },
        since<ServiceStatus>(),
        { header: "URL", value: (s) => dash(s.url), wide: true },
      ],
      rows: r.services,
    }),
  );
  if (r.broker)
    tables.push(
      asTable<BrokerStatus>({
        columns: [
          { header: "BROKER", value: (b) => b.name },
          { header: "READY", value: readyCell },
          { header: "REASON", value: (b) => dash(b.reason) },
          { header: "CLASS", value: (b) => dash(b.class) },
          { header: "DEAD-LETTER SINK", value: (b) => dash(b.deadLetterSink) },
          since<BrokerStatus>(),
          { header: "ADDRESS", value: (b) => dash(b.address), wide: true },
        ],
        rows: [r.broker],
      }),
    );
  if (r.triggers.length)
    tables.push(
      asTable<TriggerStatus>({
        columns: [
          { header: "TRIGGER", value: (t) => t.name },
          { header: "READY", value: readyCell },
          { header: "REASON", value: (t) => dash(t.reason) },
          { header: "TYPE", value: (t) => t.type },
          { header: "SUBSCRIBER", value: (t) => dash(t.subscriber) },
          { header: "DEAD-LETTER SINK", value: (t) => dash(t.deadLetterSink) },
          since<TriggerStatus>(),
          { header: "SUBSCRIBER URI", value: (t) => dash(t.subscriberUri), wide: true },
        ],
        rows: r.triggers,
      }),
    );
  if (r.sinkBindings.length)
    tables.push(
      asTable<SinkBindingStatus>({
        columns: [
          { header: "SINKBINDING", value: (b) => b.name },
          { header: "READY", value: readyCell },
          { header: "REASON", value: (b) => dash(b.reason) },
          { header: "SUBJECT", value: (b) => dash(b.subject) },
          { header: "K_SINK", value: (b) => dash(b.sinkUri) },
          since<SinkBindingStatus>(),
          { header: "SINK", value: (b) => dash(b.sink), wide: true },
        ],
        rows: r.sinkBindings,
      }),
    );
  if (r.pingSources.length)
    tables.push(
      asTable<PingSourceStatus>({
        columns: [
          { header: "PINGSOURCE", value: (p) => p.name },
          { header: "READY", value: readyCell },
          { header: "REASON", value: (p) => dash(p.reason) },
          { header: "SCHEDULE", value: (p) => dash(p.schedule) },
          { header: "SINK", value: (p) => dash(p.sinkUri ?? p.sink) },
          since<PingSourceStatus>(),
        ],
        rows: r.pingSources,
      }),
    );
  tables.push(
    asTable<ReleaseStatus>({
      columns: [
        { header: "EGRESS", value: (x) => x.egress.mode },
        { header: "READY", value: (x) => (x.egress.ready ? paint.green("True") : paint.red("False")) },
        { header: "DETAIL", value: (x) => x.egress.detail },
      ],
      rows: [r],
    }),
  );
  if (r.migrations.length)
    tables.push(
      asTable<MigrationStatus>({
        columns: [
          { header: "MIGRATION JOB", value: (m) => m.name },
          { header: "SERVICE", value: (m) => dash(m.service) },
          { header: "STATE", value: (m) => (m.succeeded ? paint.green(m.state) : paint.red(m.state)) },
          { header: "REASON", value: (m) => dash(m.reason) },
        ],
        rows: r.migrations,
      }),
    );
  tables.push(
    asTable<ReleaseStatus>({
      columns: [
        { header: "DEAD LETTERS", value: (x) => (x.deadLetters.count === null ? "n/a" : String(x.deadLetters.count)) },
        { header: "WHERE", value: (x) => x.deadLetters.note },
      ],
      rows: [r],
    }),
  );
  if (r.problems.length)
    tables.push(
      asTable<Problem>({
        title: paint.red("Problems:"),
        columns: [
          { header: "KIND", value: (p) => p.kind },
          { header: "NAME", value: (p) => p.name },
          { header: "REASON", value: (p) => p.reason },
          { header: "MESSAGE", value: (p) => p.message },
        ],
        rows: r.problems,
      }),
    );
  return tables;
}
