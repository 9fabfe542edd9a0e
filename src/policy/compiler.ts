// The compiler: snapshot → desired nft state of every pod (of a node), pure. The incremental path
// that follows it is incremental.ts; a pod's state and its table, desired-state.ts.
import type { Problem } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import type { Config } from "../config/config.js";
import { type DesiredState, onNode, stateFor } from "./desired-state.js";
import { ObjectTexts } from "./incremental.js";
import { type ModelOptions, type PolicyModel, buildModel } from "./model.js";
import type { RulesetOptions } from "./ruleset.js";
import type { DirectionSets } from "./sets.js";

// Where src/cli and the tests outside this folder import them from.
export { type DesiredState, desiredTable, podScript } from "./desired-state.js";
export { recompile } from "./incremental.js";
export { transitionOps } from "./transition.js";

export interface CompileOptions extends ModelOptions, RulesetOptions {
  /** Only pods with this spec.nodeName; absent: every pod. */
  readonly node?: string;
}

export interface Compiled {
  readonly snapshot: Snapshot;
  readonly options: CompileOptions;
  readonly model: PolicyModel;
  /** Pods with at least one managed interface, by `ns/name`. Absent pods need no table. */
  readonly states: ReadonlyMap<string, DesiredState>;
  /** Problems of the policies and pods read (invalid selectors, ports, ipBlocks, network-status). */
  readonly problems: readonly Problem[];
  /** Normalised set elements by allow signature, reused by `recompile`. */
  readonly setsCache: ReadonlyMap<string, DirectionSets>;
  /** The snapshot objects' texts, for `diffSnapshots` in the next `recompile`. */
  readonly texts: ObjectTexts;
}

/** Compiles every pod (of `options.node`) of the snapshot. Pure; never throws on invalid objects. */
export function compile(snapshot: Snapshot, config: Config, given: CompileOptions = {}): Compiled {
  // The config's choice unless the caller (e.g. `render --accept-icmp-echo`) says otherwise.
  const options: CompileOptions = { acceptIcmpEcho: config.enforcement.acceptIcmpEcho, ...given };
  const model = buildModel(snapshot, config, options);
  const cache = new Map<string, DirectionSets>();
  const states = new Map<string, DesiredState>();
  for (const pod of model.pods.values()) {
    if (!onNode(pod, options.node)) continue;
    const state = stateFor(model, pod.key, cache);
    if (state) states.set(pod.key, state);
  }
  return { snapshot, options, model, states, problems: model.problems(), setsCache: cache, texts: new ObjectTexts() };
}

/** The desired state of one pod only (what `nadguard render` prints); undefined when it has no managed interface. */
export function compilePod(snapshot: Snapshot, config: Config, podKey: string, options: CompileOptions = {}): DesiredState | undefined {
  return stateFor(buildModel(snapshot, config, options), podKey, new Map());
}
