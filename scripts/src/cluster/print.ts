import { stringify } from "yaml";
import { CliError, EXIT } from "./errors.js";

export type OutputFormat = "table" | "wide" | "json" | "yaml";

export function outputFormat(value: string | undefined, json: boolean): OutputFormat {
  const format = value ?? (json ? "json" : "table");
  if (format === "table" || format === "wide" || format === "json" || format === "yaml") return format;
  throw new CliError(`unknown output format '${format}' (one of: table, wide, json, yaml)`, EXIT.usage);
}

export interface Column<R> {
  header: string;
  value: (row: R) => string;
  /** Shown only with -o wide. */
  wide?: boolean;
}

export interface Table<R> {
  title?: string;
  columns: Column<R>[];
  rows: R[];
}

/** Colour only on a terminal, and never with NO_COLOR. */
export function painter(stream: NodeJS.WriteStream = process.stdout) {
  const on = Boolean(stream.isTTY) && !process.env.NO_COLOR;
  const paint = (code: string) => (text: string) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
  return { green: paint("32"), red: paint("31"), yellow: paint("33"), bold: paint("1"), dim: paint("2") };
}

/** Aligned columns like kubectl's, one table per call. */
export function renderTable<R>(table: Table<R>, wide: boolean): string {
  const columns = table.columns.filter((c) => wide || !c.wide);
  const cells = [columns.map((c) => c.header), ...table.rows.map((r) => columns.map((c) => c.value(r)))];
  // biome-ignore lint/suspicious/noControlCharactersInRegex: colour codes are what is stripped to measure a cell
  const visible = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "").length;
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => visible(row[i]!))));
  const lines = cells.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + " ".repeat(widths[i]! - visible(cell))))
      .join("   ")
      .trimEnd(),
  );
  return `${table.title ? `${table.title}\n` : ""}${lines.join("\n")}\n`;
}

/**
 * Writes a command's result: `data` (the documented, stable shape) as JSON or YAML, or else the tables made
 * from it for a person.
 */
export function printResult(format: OutputFormat, data: unknown, tables: () => Table<never>[], stream = process.stdout): void {
  if (format === "json") stream.write(`${JSON.stringify(data, null, 2)}\n`);
  else if (format === "yaml") stream.write(stringify(data));
  else
    stream.write(
      tables()
        .map((t) => renderTable(t, format === "wide"))
        .join("\n"),
    );
}
