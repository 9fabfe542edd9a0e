// The benchmarks' shared arithmetic and tables: percentiles by nearest rank, summaries over
// repeated runs, ratios taken run by run, and tables rendered for the terminal and for Markdown.
// Nothing here judges a number: benchmarks report, they never fail on a figure.

/** Nearest-rank percentile (p in 0..100) of ascending `sorted`; NaN for an empty list. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Summary {
  readonly n: number;
  readonly median: number;
  readonly p99: number;
  readonly p999: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
}

/** Median, p99, p99.9, min, max and mean of samples (any order); NaNs when there are none. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const mean = sorted.length === 0 ? Number.NaN : sorted.reduce((s, x) => s + x, 0) / sorted.length;
  return {
    n: sorted.length,
    median: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean,
  };
}

/**
 * Ratios a[i]/b[i] of figures measured side by side in the same repetition, then summarized: a
 * comparison never divides numbers taken at different times.
 */
export function pairedRatios(a: readonly number[], b: readonly number[]): Summary {
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (b[i]! > 0 && Number.isFinite(a[i]!)) out.push(a[i]! / b[i]!);
  }
  return summarize(out);
}

/** Milliseconds with a precision that suits the magnitude. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return "–";
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  if (value >= 1) return `${value.toFixed(2)} ms`;
  return `${(value * 1000).toFixed(0)} µs`;
}

/** "median (p99)" of millisecond samples. */
export function msPair(s: Summary): string {
  return s.n === 0 ? "–" : s.n === 1 ? ms(s.median) : `${ms(s.median)} (${ms(s.p99)})`;
}

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}×` : "–";
}

/** "median (p99)" of ratio samples. */
export function ratioPair(s: Summary): string {
  return s.n === 0 ? "–" : s.n === 1 ? ratio(s.median) : `${ratio(s.median)} (${ratio(s.p99)})`;
}

/** A rate or count, with k/M suffixes. */
export function count(value: number, unit = ""): string {
  if (!Number.isFinite(value)) return "–";
  const suffix = unit ? ` ${unit}` : "";
  if (Math.abs(value) >= 1e6) return `${(value / 1e6).toFixed(2)} M${suffix}`;
  if (Math.abs(value) >= 1e4) return `${(value / 1e3).toFixed(1)} k${suffix}`;
  if (Math.abs(value) >= 100) return `${value.toFixed(0)}${suffix}`;
  return `${Number.isInteger(value) ? value : value.toFixed(1)}${suffix}`;
}

/** An exact size with thousands separators (10,000), for the sizes a table is indexed by. */
export function size(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–";
}

export function bytes(value: number): string {
  if (!Number.isFinite(value)) return "–";
  if (value >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(1)} MiB`;
  if (value >= 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${value} B`;
}

/** A table row of a process's memory: label, RSS, heap used, external (array buffers included). */
export function memoryRow(label: string, m: NodeJS.MemoryUsage): string[] {
  return [label, bytes(m.rss), bytes(m.heapUsed), bytes(m.external + m.arrayBuffers)];
}

export function percent(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(0)}%` : "–";
}

export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Lines printed under the table (how a figure was taken, what a column means). */
  readonly notes?: readonly string[];
}

/** Aligned plain text, for the terminal. */
export function tableText(table: Table): string {
  const widths = table.columns.map((c, i) => Math.max(c.length, ...table.rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  const out = [`  ${table.title}`, `  ${line(table.columns)}`, `  ${widths.map((w) => "-".repeat(w)).join("  ")}`];
  for (const row of table.rows) out.push(`  ${line(row)}`);
  for (const note of table.notes ?? []) out.push(`  · ${note}`);
  return out.join("\n");
}

/** A Markdown table with its title in bold and notes as a list. */
export function tableMarkdown(table: Table): string {
  const escape = (cell: string): string => cell.replace(/\|/g, "\\|");
  const out = [`**${table.title}**`, "", `| ${table.columns.map(escape).join(" | ")} |`, `|${table.columns.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`];
  for (const row of table.rows) out.push(`| ${row.map(escape).join(" | ")} |`);
  if (table.notes?.length) out.push("", ...table.notes.map((n) => `- ${n}`));
  return out.join("\n");
}
