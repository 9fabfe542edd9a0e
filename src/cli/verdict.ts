// `nadguard verdict --state DIR --from NS/POD --to NS/POD --network NS/NAD --port PORT[/PROTO]`:
// would a new connection be allowed, and which policies and rules decided it on each side (egress
// of the source, ingress of the destination). Exit 0 allowed, 3 denied, 2 bad input.
import { formatProblem } from "../api/errors.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { loadConfig } from "../config/config.js";
import { buildModel } from "../policy/model.js";
import type { L4Protocol } from "../policy/ranges.js";
import { type SideVerdict, type Verdict, matchText, verdictOf } from "../policy/verdict.js";
import { reportStateProblems } from "./env.js";
import { EXIT, UsageError } from "./io.js";
import { parseObjectRef } from "./render.js";

export interface VerdictOptions {
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
  const result = verdictOf(buildModel(snapshot, config), { from, to, network, port, protocol });
  if (!result.ok) {
    for (const problem of result.error) err(`nadguard verdict: ${formatProblem(problem)}`);
    return EXIT.usage;
  }
  if (options.output === "json") out(JSON.stringify(result.value, null, 2));
  else printHuman(result.value, out);
  return result.value.allowed ? EXIT.ok : EXIT.denied;
}
