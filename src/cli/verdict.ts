// `nadguard verdict --state DIR --from NS/POD --to NS/POD --network NS/NAD --port PORT[/PROTO]`:
// would a new connection be allowed, and which policies and rules decided it on each side (egress
// of the source, ingress of the destination). Exit 0 allowed, 3 denied, 2 bad input. With `--with
// FILE` / `--without KIND/NS/NAME`, as the cluster would be after that change; with `--diff`, only
// what the change opens and closes for the pair (exit 0 nothing, 4 something).
import { type Result, formatProblem } from "../api/errors.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { loadConfig } from "../config/config.js";
import { buildModel } from "../policy/model.js";
import type { L4Protocol } from "../policy/ranges.js";
import { type SideVerdict, type Verdict, matchText, verdictOf } from "../policy/verdict.js";
import { type CellChange, familyChange, groupChanges } from "../policy/matrix-diff.js";
import { reportStateProblems } from "./env.js";
import { diffJson, printDiffText } from "./matrix-format.js";
import { type WhatIfFlags, whatIfSnapshot } from "./what-if.js";
import { EXIT, UsageError } from "./io.js";
import { parseObjectRef } from "./render.js";

export interface VerdictOptions extends Partial<WhatIfFlags> {
  /** Print only what the what-if changes (exit 0 nothing, 4 something). */
  diff?: boolean;
  state: string;
  from: string;
  to: string;
  /** `ns/nad`, or a bare NAD name in the source pod's namespace. */
  network: string;
  /** `PORT` or `PORT/PROTO` (tcp, udp, sctp; default tcp). */
  port: string;
  output: "human" | "json";
  config?: string | undefined;
}

/** `80`, `53/udp`, `9/SCTP`. */
export function parsePortFlag(value: string): { port: number; protocol: L4Protocol } {
  const match = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/i.exec(value.trim());
  const port = Number(match?.[1]);
  if (!match || port > 65535) throw new UsageError(`--port ${value}: expected PORT or PORT/PROTO, e.g. 80 or 53/udp (PROTO tcp, udp or sctp)`);
  return { port, protocol: (match[2]?.toUpperCase() ?? "TCP") as L4Protocol };
}

function sideText(s: SideVerdict): string {
  const head = `${s.direction.padEnd(7)} ${s.pod} ${s.interface ?? "?"}:`;
  if (!s.managed) return `${head} not enforced (${s.unmanagedReason ?? "not managed"}): allowed`;
  if (!s.isolated) return `${head} not isolated: allowed`;
  const by = `isolated by ${s.isolatedBy.join(", ")}`;
  return s.allowed ? `${head} ${by}; allowed by ${s.allowedBy.map((m) => matchText(s.direction, m)).join(", ")}` : `${head} ${by}; no rule allows it: DENIED`;
}

function printHuman(v: Verdict, out: (line: string) => void): void {
  const p = v.probe;
  out(`${v.allowed ? "ALLOWED" : "DENIED"}  ${p.from} -> ${p.to} on ${p.network} port ${p.port}/${p.protocol}`);
  for (const f of v.families) {
    out(`  IPv${f.family} ${f.source} -> ${f.destination}: ${f.allowed ? "allowed" : "denied"}`);
    if (f.samePod) out("    same pod: traffic to its own address stays on lo and is never blocked");
    else for (const s of [f.egress, f.ingress]) out(`    ${sideText(s)}`);
  }
  for (const w of v.warnings) out(`warning: ${formatProblem(w)}`);
}

export async function runVerdict(options: VerdictOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const from = parseObjectRef(options.from, "from");
  const to = parseObjectRef(options.to, "to");
  const network = options.network.includes("/") ? parseObjectRef(options.network, "network") : `${from.split("/")[0]}/${options.network.trim()}`;
  const { port, protocol } = parsePortFlag(options.port);
  const config = await loadConfig(options.config);
  const snapshot = await loadStateDir(options.state);
  reportStateProblems(snapshot, err);
  const flags = { with: options.with ?? [], without: options.without ?? [] };
  const changed = await whatIfSnapshot(snapshot, flags);
  const probe = { from, to, network, port, protocol };
  const result = verdictOf(buildModel(changed, config), probe);
  if (options.diff) return verdictDiff(verdictOf(buildModel(snapshot, config), probe), result, options.output, out, err);
  if (!result.ok) {
    for (const problem of result.error) err(`nadguard verdict: ${formatProblem(problem)}`);
    return EXIT.usage;
  }
  if (options.output === "json") out(JSON.stringify(result.value, null, 2));
  else printHuman(result.value, out);
  return result.value.allowed ? EXIT.ok : EXIT.denied;
}

/** `--diff`: the families of the pair whose verdict the what-if changes, with the rules responsible. */
function verdictDiff(before: Result<Verdict>, after: Result<Verdict>, output: "human" | "json", out: (line: string) => void, err: (line: string) => void): number {
  if (!before.ok && !after.ok) {
    for (const problem of after.error) err(`nadguard verdict: ${formatProblem(problem)}`);
    return EXIT.usage;
  }
  const probe = (after.ok ? after.value : (before as { value: Verdict }).value).probe;
  const why = (r: Result<Verdict>): string => (r.ok ? "" : r.error.map((p) => p.message).join("; "));
  const cells: CellChange[] = [];
  for (const family of [4, 6] as const) {
    const b = before.ok ? before.value.families.find((f) => f.family === family) : undefined;
    const a = after.ok ? after.value.families.find((f) => f.family === family) : undefined;
    const found = familyChange(b, a, () => (before.ok ? `after the change: ${why(after)}` : `before the change: ${why(before)}`));
    if (!found) continue;
    cells.push({ from: probe.from, to: probe.to, port: { port: probe.port, protocol: probe.protocol }, family, ...found, ...(b && { before: b }), ...(a && { after: a }) });
  }
  const diff = { ...groupChanges(cells), cells };
  if (output === "json") out(JSON.stringify(diffJson(probe.network, diff), null, 2));
  else printDiffText(`nadguard verdict --diff ${probe.from} -> ${probe.to} on ${probe.network} port ${probe.port}/${probe.protocol}`, diff, out);
  return cells.length > 0 ? EXIT.changes : EXIT.ok;
}
