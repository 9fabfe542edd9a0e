// `nadguard lint --state DIR [--config FILE] [--output text|json]`: the findings of every
// MultiNetworkPolicy of the state directory (src/policy/lint.ts), each with its severity, object,
// place and what to do. Exit 0 with no error finding, 3 with one, 2 on bad input.
import { loadStateDir } from "../cluster/state-dir.js";
import { loadConfig } from "../config/config.js";
import { type Finding, lintPolicies } from "../policy/lint.js";
import { buildModel } from "../policy/model.js";
import { reportStateProblems } from "./env.js";
import { EXIT, checkStateDir } from "./io.js";

export interface LintOptions {
  state: string;
  config?: string | undefined;
  output: "text" | "json";
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

export function findingText(f: Finding): string {
  return `${f.severity.padEnd(7)}  ${f.object}  ${f.path}: ${f.message} (${f.code})`;
}

export async function runLint(options: LintOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  await checkStateDir(options.state);
  const config = await loadConfig(options.config);
  const snapshot = await loadStateDir(options.state);
  reportStateProblems(snapshot, err);
  const findings = lintPolicies({ snapshot, config, model: buildModel(snapshot, config) });
  const errors = findings.filter((f) => f.severity === "error").length;
  const warnings = findings.length - errors;
  if (options.output === "json") out(JSON.stringify({ policies: snapshot.policies.size, errors, warnings, findings }, null, 2));
  else {
    for (const f of findings) out(findingText(f));
    out(`${plural(errors, "error")}, ${plural(warnings, "warning")} in ${plural(snapshot.policies.size, "policy").replace("policys", "policies")}`);
  }
  return errors > 0 ? EXIT.denied : EXIT.ok;
}
