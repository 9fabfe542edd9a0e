// `nadguard matrix --state DIR --network NS/NAD [--port P[/PROTO]]… [--namespace NS]… [--selector
// LABELS] [--with FILE]… [--without KIND/NS/NAME]… [--diff] [--output table|json|markdown]`: the
// reachability of every pod pair on one network, from the same model as `verdict` and
// the compiler; with a what-if, as the cluster would be; with `--diff`, only what the what-if
// opens and closes (exit 4 when anything does).
import { InputError, formatProblem } from "../api/errors.js";
import type { LabelSelector } from "../api/objects.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { loadConfig } from "../config/config.js";
import { type Matrix, type MatrixPort, defaultMatrixPorts, reachabilityMatrix } from "../policy/matrix.js";
import { diffMatrices } from "../policy/matrix-diff.js";
import { type PolicyModel, buildModel } from "../policy/model.js";
import type { PodInfo } from "../policy/pods.js";
import { L4_PROTOCOLS } from "../policy/ranges.js";
import { compileSelector } from "../policy/selector.js";
import { reportStateProblems } from "./env.js";
import { EXIT, UsageError } from "./io.js";
import { diffJson, printDiffMarkdown, printDiffText, printJson, printMarkdown, printTable } from "./matrix-format.js";
import { parseObjectRef } from "./render.js";
import { parsePortFlag } from "./verdict.js";
import { type WhatIfFlags, whatIfSnapshot } from "./what-if.js";

export type MatrixOutput = "table" | "json" | "markdown";

export interface MatrixOptions extends WhatIfFlags {
  state: string;
  network: string;
  ports: readonly string[];
  namespaces: readonly string[];
  selector?: string | undefined;
  config?: string | undefined;
  output: MatrixOutput;
  diff: boolean;
}

/**
 * kubectl's label selector syntax: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`,
 * comma-separated (all must hold).
 */
export function parseLabelSelector(text: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: NonNullable<LabelSelector["matchExpressions"]> = [];
  const parts = splitTopLevel(text);
  const bad = (part: string): never => {
    throw new UsageError(`--selector ${text}: cannot read "${part.trim()}"; expected k=v, k!=v, k, !k, k in (a,b) or k notin (a,b), separated by commas`);
  };
  const KEY = "[A-Za-z0-9][-A-Za-z0-9_./]*";
  for (const raw of parts) {
    const part = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^(${KEY})\\s*(==?|!=)\\s*([-A-Za-z0-9_.]*)$`).exec(part))) {
      if (m[2] === "!=") matchExpressions.push({ key: m[1]!, operator: "NotIn", values: [m[3]!] });
      else matchLabels[m[1]!] = m[3]!;
    } else if ((m = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`).exec(part))) {
      const values = m[3]!.split(",").map((v) => v.trim()).filter(Boolean);
      if (values.length === 0) bad(part);
      matchExpressions.push({ key: m[1]!, operator: m[2] === "in" ? "In" : "NotIn", values });
    } else if ((m = new RegExp(`^(!?)(${KEY})$`).exec(part))) {
      matchExpressions.push({ key: m[2]!, operator: m[1] ? "DoesNotExist" : "Exists" });
    } else bad(part);
  }
  return { matchLabels, matchExpressions };
}

/** Splits at commas outside parentheses; unbalanced parentheses keep the rest as one (unreadable) part. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const c of text) {
    if (c === "," && depth === 0) {
      parts.push(current);
      current = "";
      continue;
    }
    if (c === "(") depth++;
    else if (c === ")") depth--;
    current += c;
  }
  parts.push(current);
  return parts;
}

function podFilter(options: MatrixOptions): (pod: PodInfo) => boolean {
  const namespaces = new Set(options.namespaces.map((ns) => ns.trim()));
  const selector = options.selector !== undefined ? compileSelector(parseLabelSelector(options.selector), "--selector", []) : undefined;
  return (pod) => (namespaces.size === 0 || namespaces.has(pod.namespace)) && (!selector || selector.matches(pod.labels));
}

function portsOf(options: MatrixOptions, models: readonly PolicyModel[], network: string, include: (pod: PodInfo) => boolean): MatrixPort[] {
  if (options.ports.length > 0) {
    const seen = new Map<string, MatrixPort>();
    for (const text of options.ports) {
      const port = parsePortFlag(text);
      if (port.port === 0) throw new UsageError(`--port ${text}: 0 is not a port (1-65535)`);
      seen.set(`${port.protocol}/${port.port}`, port);
    }
    return [...seen.values()];
  }
  const byKey = new Map<string, MatrixPort>();
  for (const model of models) {
    const pods = [...model.pods.values()].filter((p) => p.attachments.has(network) && include(p));
    for (const port of defaultMatrixPorts(model, network, pods)) byKey.set(`${port.protocol}/${port.port}`, port);
  }
  return [...byKey.values()].sort((a, b) => L4_PROTOCOLS.indexOf(a.protocol) - L4_PROTOCOLS.indexOf(b.protocol) || a.port - b.port);
}

export async function runMatrix(options: MatrixOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const network = parseObjectRef(options.network, "network");
  const include = podFilter(options);
  const config = await loadConfig(options.config);
  const snapshot = await loadStateDir(options.state);
  reportStateProblems(snapshot, err);
  const changed = await whatIfSnapshot(snapshot, options);
  if (!snapshot.nads.has(network) && !changed.nads.has(network)) {
    const known = [...snapshot.nads.keys()].sort();
    throw new InputError([{ code: "matrix.network", path: "--network", message: `NetworkAttachmentDefinition ${network} is not in the state${known.length > 0 ? ` (NADs: ${known.join(", ")})` : ""}` }]);
  }
  const before = buildModel(snapshot, config);
  const after = changed === snapshot ? before : buildModel(changed, config);
  const ports = portsOf(options, options.diff ? [before, after] : [after], network, include);
  const matrixOf = (model: PolicyModel): Matrix => reachabilityMatrix(model, { network, ports, include });
  if (!options.diff) {
    const matrix = matrixOf(after);
    if (options.output === "json") printJson(matrix, out);
    else if (options.output === "markdown") printMarkdown(matrix, out);
    else printTable(matrix, out);
    if (options.output !== "table") for (const w of matrix.warnings) err(`warning: ${formatProblem(w)}`);
    return EXIT.ok;
  }
  const diff = diffMatrices(matrixOf(before), matrixOf(after));
  const title = `nadguard matrix --diff ${network}, ports ${ports.map((p) => `${p.port}/${p.protocol}`).join(", ")}`;
  if (options.output === "json") out(JSON.stringify(diffJson(network, diff), null, 2));
  else if (options.output === "markdown") printDiffMarkdown(`What-if on \`${network}\``, diff, out);
  else printDiffText(title, diff, out);
  return diff.cells.length > 0 ? EXIT.changes : EXIT.ok;
}
