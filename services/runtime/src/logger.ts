import { type Logger, pino } from "pino";

export type { Logger };

/** A logger writing JSON lines to stdout, or to the file `destination`. */
export function createLogger(service: string, level = "info", destination?: string): Logger {
  const options = {
    name: service,
    level,
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return destination ? pino(options, pino.destination({ dest: destination, sync: true })) : pino(options);
}
