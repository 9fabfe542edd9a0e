// What a benchmark family returns and how the results become the terminal output and BENCHMARKS.md.
import type { Cleanup, Machine } from "./system.js";
import { type Table, tableMarkdown, tableText } from "./stats.js";

export interface BenchContext {
  /** `--full`: every size, longer runs, more repetitions; otherwise the quick smoke mode. */
  readonly full: boolean;
  readonly cleanup: Cleanup;
  /** Progress lines (stderr), never part of the results. */
  log(line: string): void;
}

export type SectionStatus = "done" | "skipped" | "failed";

export interface SectionResult {
  readonly id: string;
  readonly title: string;
  readonly status: SectionStatus;
  /** Why it was skipped or what failed. */
  readonly why?: string;
  readonly tables: readonly Table[];
  /** How it was measured (setup, tools, what a figure includes). */
  readonly method: readonly string[];
  /** What the numbers say, written from the numbers of this run (including where nadguard loses). */
  readonly reading: readonly string[];
  readonly seconds: number;
  /** 1/5/15-minute load average when the section started (a busy machine makes noisy numbers). */
  readonly load: string;
}

export interface Section {
  readonly id: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<SectionOutcome>;
}

export type SectionOutcome = Omit<SectionResult, "id" | "title" | "seconds" | "load">;

export function skipped(why: string): SectionOutcome {
  return { status: "skipped", why, tables: [], method: [], reading: [] };
}

export function sectionText(result: SectionResult): string {
  const head = `== ${result.title} [${result.status}${result.why ? `: ${result.why}` : ""}] (${result.seconds.toFixed(1)} s, load ${result.load} at start)`;
  const body = result.tables.map(tableText);
  const reading = result.reading.length > 0 ? [`  reading:\n${result.reading.map((r) => `  - ${r}`).join("\n")}`] : [];
  return [head, ...body, ...reading].join("\n\n");
}

export interface ReportInput {
  readonly machine: Machine;
  readonly command: string;
  readonly startedAt: Date;
  readonly seconds: number;
  readonly results: readonly SectionResult[];
}

export function benchmarksMarkdown(input: ReportInput): string {
  const m = input.machine;
  const out: string[] = [
    "# nadguard benchmarks",
    "",
    `Produced by \`${input.command}\` on ${input.startedAt.toISOString()} in ${(input.seconds / 60).toFixed(1)} min. ` +
      "Every figure is the median over repeated runs with the p99 in brackets, unless a table says otherwise; every comparison is a ratio " +
      "of two figures measured in the same repetition (then summarized the same way). Numbers are reported, never judged: nothing here fails CI. " +
      "`npm run bench` (quick mode) runs the same code with small sizes as a smoke test.",
    "",
    "## Machine",
    "",
    "| | |",
    "| --- | --- |",
    `| CPUs (nproc) | ${m.cpus} |`,
    `| CPU model | ${m.cpuModel} |`,
    `| memory | ${m.memory} |`,
    `| kernel | ${m.kernel} |`,
    `| node | ${m.node} |`,
    `| nft | ${m.nft} |`,
    `| iptables | ${m.iptables} |`,
    `| python (load clients) | ${m.python} |`,
    `| load average at start | ${m.loadAtStart} |`,
    "",
  ];
  for (const r of input.results) {
    out.push(`## ${r.title}`, "");
    if (r.status !== "done") {
      out.push(`**${r.status}**: ${r.why ?? ""}`, "");
      continue;
    }
    if (r.method.length > 0) out.push("How:", "", ...r.method.map((line) => `- ${line}`), "");
    for (const table of r.tables) out.push(tableMarkdown(table), "");
    if (r.reading.length > 0) out.push("Reading:", "", ...r.reading.map((line) => `- ${line}`), "");
    out.push(`_Section time: ${r.seconds.toFixed(0)} s; load average at its start: ${r.load}._`, "");
  }
  return out.join("\n");
}
