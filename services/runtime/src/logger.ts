import { type Logger, pino } from "pino";

export type { Logger };

export function createLogger(service: string, level = "info"): Logger {
  return pino({
    name: service,
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/** Fields that tie a log line to a CloudEvent and its trace. */
export function eventFields(event: { id?: unknown; type?: unknown; source?: unknown; traceparent?: unknown }) {
  return { eventId: event.id, eventType: event.type, eventSource: event.source, traceparent: event.traceparent };
}
