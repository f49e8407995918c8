export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summary(samplesMs: number[]): { p50: number; p99: number; n: number } {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length };
}

export const fmt = (n: number, digits = 1) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

export function row(label: string, value: string, baseline?: string, ratio?: number): void {
  const r = ratio === undefined ? "" : `  ratio ${ratio.toFixed(2)}`;
  console.log(`${label.padEnd(52)} ${value.padStart(16)}${baseline ? `  (baseline ${baseline})` : ""}${r}`);
}
