// A pod's desired state: the sets of each of its managed interfaces, read off the policy model, and
// the table and script they render to. What both the full compile and the incremental path make.
import type { Problem } from "../api/errors.js";
import { NADGUARD_TABLE } from "../nft/objects.js";
import { type TableState, freshTableOps } from "../nft/state.js";
import { Transaction } from "../nft/transaction.js";
import type { PolicyModel } from "./model.js";
import type { PodInfo } from "./pods.js";
import { type RulesetOptions, tableFor } from "./ruleset.js";
import { type InterfaceState, type SetsCache, directionSets, sameSets } from "./sets.js";

/** What one pod's netns should hold. */
export interface DesiredState {
  readonly pod: string;
  /** Managed interfaces only (NAD CNI type in enforcement.networkPlugins), in network-status order. */
  readonly interfaces: readonly InterfaceState[];
  /** What the policies ask that could not be expressed for this pod. */
  readonly warnings: readonly Problem[];
  /** Equal fingerprints mean equal tables. */
  readonly fingerprint: string;
}

/** Whether the pod is compiled for `node` (absent: every node). */
export function onNode(pod: PodInfo, node: string | undefined): boolean {
  return !pod.hostNetwork && (node === undefined || pod.node === node);
}

/** The desired state of one pod of the model; undefined when it has no managed interface. `cache`: sets by allow signature. */
export function stateFor(model: PolicyModel, podKey: string, cache: SetsCache): DesiredState | undefined {
  const interfaces: InterfaceState[] = [];
  const warnings: Problem[] = [];
  for (const m of model.podModel(podKey)) {
    if (!m.managed || m.interface === undefined) continue;
    interfaces.push({ name: m.interface, network: m.network, ingress: directionSets(m.ingress, cache), egress: directionSets(m.egress, cache) });
    warnings.push(...m.warnings);
  }
  if (interfaces.length === 0) return undefined;
  // Built on first read: the sets' fingerprints are long, and `recompile` compares states by their sets (`sameState`).
  let fingerprint: string | undefined;
  return {
    pod: podKey,
    interfaces,
    warnings,
    get fingerprint(): string {
      return (fingerprint ??= interfaces.map((i) => `${i.name}\u0000${i.ingress.fingerprint}\u0000${i.egress.fingerprint}`).join("\u0001"));
    },
  };
}

/** Whether two states have equal fingerprints, without building them: interface by interface, set by set. */
export function sameState(a: DesiredState | undefined, b: DesiredState | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.interfaces.length !== b.interfaces.length) return false;
  return a.interfaces.every((x, i) => {
    const y = b.interfaces[i]!;
    return x.name === y.name && sameSets(x.ingress, y.ingress) && sameSets(x.egress, y.egress);
  });
}

/** The table a desired state renders to. */
export function desiredTable(state: DesiredState | undefined, options: RulesetOptions = {}): TableState {
  return tableFor(state?.interfaces ?? [], options);
}

/** The `nft -f` script that builds a pod's table from scratch (replacing whatever the table held). */
export function podScript(state: DesiredState | undefined, options: RulesetOptions = {}): string {
  return new Transaction(NADGUARD_TABLE).append(freshTableOps(desiredTable(state, options))).render();
}
