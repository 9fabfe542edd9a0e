// Builds what a decision reads from a state directory and a config file, for one-shot commands.
import { formatProblem } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import type { AdmissionEnv } from "../admission/decision.js";
import { offlineReviewer } from "../authz/nad-access.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { type Config, loadConfig } from "../config/config.js";

export function envFor(snapshot: Snapshot, config: Config): AdmissionEnv {
  return { snapshot, config, access: offlineReviewer(snapshot.rbac) };
}

export async function loadEnv(state: string, configFile: string | undefined, err: (line: string) => void): Promise<AdmissionEnv> {
  const config = await loadConfig(configFile);
  const snapshot = await loadStateDir(state);
  reportStateProblems(snapshot, err);
  return envFor(snapshot, config);
}

/** Prints what the state source could not read; ignored kinds are not worth a line each. */
export function reportStateProblems(snapshot: Snapshot, err: (line: string) => void): void {
  for (const problem of snapshot.problems) {
    if (problem.code !== "state.kind-ignored") err(`state: ${formatProblem(problem)}`);
  }
}
