// How `nadguard matrix` prints a reachability matrix and a what-if diff: a grid for a terminal
// (one mark per cell, columns numbered and grouped by namespace, wrapped in blocks), markdown for a
// pull-request comment, and JSON (a contract read by checks outside the repository: one object
// with `network` and `cells`, one cell per source, destination, port, protocol and family, with
// both sides' deciding policies and rules as `verdict --output json` gives them).
import { formatProblem } from "../api/errors.js";
import { familyName } from "../networks/cni-fields.js";
import { type Matrix, type PortGrid, cellStates, cellVerdict } from "../policy/matrix.js";
import { type FlowChange, type MatrixDiff, diffSummary } from "../policy/matrix-diff.js";
import type { FamilyVerdict } from "../policy/verdict.js";

type Out = (line: string) => void;

/** Columns per block of the terminal grid: 100 pods print as two blocks of at most 60 columns. */
const BLOCK = 60;

export const LEGEND =
  "A allowed · x denied by both sides · e denied by the source's egress only · i denied by the destination's ingress only · " +
  "4 / 6 allowed over IPv4 / IPv6 only (the families disagree) · = the pod itself (never blocked) · blank: no common address family";

/** The mark of one cell (see LEGEND). */
export function cellMark(matrix: Matrix, grid: PortGrid, from: number, to: number): string {
  const states = cellStates(matrix, grid, from, to);
  if (states.length === 0) return " ";
  if (from === to) return "=";
  const allowed = states.filter((s) => s.allowed);
  if (allowed.length === states.length) return "A";
  if (allowed.length > 0) return String(allowed[0]!.family);
  if (states.every((s) => s.egress)) return "i";
  if (states.every((s) => s.ingress)) return "e";
  return "x";
}

/** Pairs of two different pods with a common family: allowed in every family, or not. */
export function pairCounts(matrix: Matrix, grid: PortGrid): { allowed: number; denied: number } {
  const n = matrix.members.length;
  let allowed = 0;
  let denied = 0;
  for (let from = 0; from < n; from++) {
    for (let to = 0; to < n; to++) {
      if (from === to) continue;
      const states = cellStates(matrix, grid, from, to);
      if (states.length === 0) continue;
      if (states.every((s) => s.allowed)) allowed++;
      else denied++;
    }
  }
  return { allowed, denied };
}

export const portText = (grid: PortGrid): string => `${grid.port.port}/${grid.port.protocol}`;

function heading(matrix: Matrix, grid: PortGrid): string {
  const { allowed, denied } = pairCounts(matrix, grid);
  return `${matrix.network} port ${portText(grid)}: ${allowed} allowed, ${denied} denied of ${allowed + denied} pairs`;
}

/** `1-4 tenant-a, 5-7 tenant-b`: which column numbers are which namespace. */
function namespaceRanges(matrix: Matrix): string {
  const out: string[] = [];
  let start = 0;
  matrix.members.forEach((m, i) => {
    const next = matrix.members[i + 1];
    if (next && next.namespace === m.namespace) return;
    out.push(`${start + 1 === i + 1 ? `${i + 1}` : `${start + 1}-${i + 1}`} ${m.namespace}`);
    start = i + 1;
  });
  return out.join(", ");
}

/** The terminal grid: rows are sources, columns destinations, numbered as the rows; a space between namespaces. */
export function printTable(matrix: Matrix, out: Out): void {
  const n = matrix.members.length;
  if (n === 0) out(`nadguard matrix ${matrix.network}: no pod with an address on it takes part (attached pods are chosen by --namespace and --selector)`);
  else out(`nadguard matrix ${matrix.network}: ${n} pods (rows: from, columns: to, numbered as the rows; columns by namespace: ${namespaceRanges(matrix)})`);
  for (const { pod, reason } of matrix.excluded) out(`  not in the matrix: ${pod} (${reason})`);
  if (n === 0) return;
  const digits = String(n).length;
  const labels = matrix.members.map((m, i) => `${String(i + 1).padStart(digits)} ${m.key}`);
  const width = Math.max(...labels.map((l) => l.length));
  for (const grid of matrix.grids) {
    out("");
    out(heading(matrix, grid));
    for (let start = 0; start < n; start += BLOCK) {
      const columns = Array.from({ length: Math.min(BLOCK, n - start) }, (_, k) => start + k);
      const gapBefore = (j: number): string => (j > columns[0]! && matrix.members[j]!.namespace !== matrix.members[j - 1]!.namespace ? " " : "");
      for (let d = 0; d < digits; d++) {
        const line = columns.map((j) => gapBefore(j) + (String(j + 1).padStart(digits)[d] ?? " ")).join("");
        out(`${" ".repeat(width)}  ${line}`.trimEnd());
      }
      labels.forEach((label, i) => out(`${label.padEnd(width)}  ${columns.map((j) => gapBefore(j) + cellMark(matrix, grid, i, j)).join("")}`.trimEnd()));
    }
  }
  out("");
  out(`legend: ${LEGEND}`);
  for (const w of matrix.warnings) out(`warning: ${formatProblem(w)}`);
}

/** A GitHub-flavoured markdown table per port, for a pull-request comment. */
export function printMarkdown(matrix: Matrix, out: Out): void {
  out(`### Reachability on \`${matrix.network}\``);
  out("");
  const n = matrix.members.length;
  if (n === 0) {
    out(`No pod with an address on \`${matrix.network}\`.`);
    return;
  }
  out(`Rows are sources, columns destinations (numbered as the rows). ${LEGEND}.`);
  for (const grid of matrix.grids) {
    out("");
    out(`**${heading(matrix, grid).replace(`${matrix.network} `, "")}**`);
    out("");
    out(`| from \\ to | ${matrix.members.map((_, j) => String(j + 1)).join(" | ")} |`);
    out(`| --- | ${matrix.members.map(() => ":-:").join(" | ")} |`);
    matrix.members.forEach((m, i) => {
      const marks = matrix.members.map((_, j) => {
        const mark = cellMark(matrix, grid, i, j);
        return mark === " " ? "" : mark;
      });
      out(`| ${i + 1} \`${m.key}\` | ${marks.join(" | ")} |`);
    });
  }
  if (matrix.excluded.length > 0) {
    out("");
    out(`Not in the matrix: ${matrix.excluded.map((e) => `\`${e.pod}\` (${e.reason})`).join(", ")}.`);
  }
}

/** One cell as JSON: the probe, the outcome and both sides as `verdict --output json` has them. */
export function cellJson(from: string, to: string, grid: PortGrid, v: FamilyVerdict): Record<string, unknown> {
  return {
    from,
    to,
    port: grid.port.port,
    protocol: grid.port.protocol,
    family: familyName(v.family),
    source: v.source,
    destination: v.destination,
    allowed: v.allowed,
    samePod: v.samePod,
    egress: v.egress,
    ingress: v.ingress,
  };
}

/** The JSON object, written a cell per line so that a million cells never make one huge string. */
export function printJson(matrix: Matrix, out: Out): void {
  const head = {
    network: matrix.network,
    ports: matrix.grids.map((g) => g.port),
    pods: matrix.members.map((m) => m.key),
    excluded: matrix.excluded,
    summary: matrix.grids.map((g) => ({ ...g.port, ...pairCounts(matrix, g) })),
    warnings: matrix.warnings,
  };
  out(`${JSON.stringify(head).slice(0, -1)},`);
  out('"cells": [');
  const n = matrix.members.length;
  let first = true;
  for (const grid of matrix.grids) {
    for (let from = 0; from < n; from++) {
      for (let to = 0; to < n; to++) {
        for (const state of cellStates(matrix, grid, from, to)) {
          const cell = cellJson(matrix.members[from]!.key, matrix.members[to]!.key, grid, cellVerdict(matrix, grid, from, to, state.family));
          out(`${first ? "" : ","}${JSON.stringify(cell)}`);
          first = false;
        }
      }
    }
  }
  out("]}");
}

const families = (c: FlowChange): string => c.families.map(familyName).join(", ");
const flowPort = (c: FlowChange): string => `${c.port.port}/${c.port.protocol}`;

/** A diff for a terminal: opened, then closed, each flow with its reasons, then the summary line. */
export function printDiffText(title: string, diff: MatrixDiff, out: Out): void {
  out(title);
  for (const [name, list] of [["opened", diff.opened], ["closed", diff.closed]] as const) {
    if (list.length === 0) continue;
    out(`${name} (${list.length}):`);
    for (const c of list) {
      out(`  ${c.from} -> ${c.to}  ${flowPort(c)}  ${families(c)}`);
      for (const b of c.because) out(`    ${b}`);
    }
  }
  out(diffSummary(diff));
}

/** A diff as markdown tables. */
export function printDiffMarkdown(title: string, diff: MatrixDiff, out: Out): void {
  out(`### ${title}: ${diffSummary(diff)}`);
  for (const [name, list] of [["Opened", diff.opened], ["Closed", diff.closed]] as const) {
    if (list.length === 0) continue;
    for (const line of ["", `**${name}**`, "", "| from | to | port | families | because |", "| --- | --- | --- | --- | --- |"]) out(line);
    for (const c of list) out(`| \`${c.from}\` | \`${c.to}\` | ${flowPort(c)} | ${families(c)} | ${c.because.join("; ").replaceAll("|", "\\|")} |`);
  }
}

/** A diff as JSON: the summary, the flows, and per family the cells before and after. */
export function diffJson(network: string, diff: MatrixDiff): Record<string, unknown> {
  const flow = (c: FlowChange): Record<string, unknown> => ({ from: c.from, to: c.to, port: c.port.port, protocol: c.port.protocol, families: c.families.map(familyName), because: c.because });
  return {
    network,
    summary: diffSummary(diff),
    opened: diff.opened.map(flow),
    closed: diff.closed.map(flow),
    cells: diff.cells.map((c) => {
      const grid = { port: c.port } as PortGrid;
      return {
        from: c.from,
        to: c.to,
        port: c.port.port,
        protocol: c.port.protocol,
        family: familyName(c.family),
        change: c.change,
        because: c.because,
        before: c.before ? cellJson(c.from, c.to, grid, c.before) : null,
        after: c.after ? cellJson(c.from, c.to, grid, c.after) : null,
      };
    }),
  };
}
