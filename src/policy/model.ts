// The policy model: for each (pod, interface, direction), whether it is isolated and what the
// applying policies allow, as (addresses × ports) entries that name the policy, rule and peer they
// come from. The compiler turns these entries into set elements and the verdict oracle evaluates
// probes against them, so both always agree.
//
// Semantics: networking.k8s.io/v1 NetworkPolicy, per interface (the MultiNetworkPolicy CRD of
// k8snetworkplumbingwg/multi-networkpolicy). Work is shared
// between pods: policies are indexed by NAD, target selections and peer address lists are computed
// once per policy and rule, on first use.
import type { Problem } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import type { Config } from "../config/config.js";
import { nadCniInfo } from "../networks/nad-config.js";
import { RuleEntries } from "./allow-entries.js";
import { type ModelIndex, modelIndex, policyListKey } from "./model-index.js";
import { IdSource, type PeerPods, PeerSets, retainRead } from "./peer-sets.js";
import type { Direction, Policy } from "./policy.js";
import type { Address, PodInfo } from "./pods.js";
import type { AddrRange, PortRange } from "./ranges.js";

/** One thing an applying policy allows: traffic to or from `addresses` on `ports`. */
export interface AllowEntry {
  /** `namespace/name` of the policy. */
  readonly policy: string;
  /** Index in spec.ingress or spec.egress. */
  readonly rule: number;
  /** Index in the rule's from/to; absent when the rule has no peers (every address). */
  readonly peer?: number;
  /** `any`, or sorted disjoint ranges (both families may be present). */
  readonly addresses: "any" | readonly AddrRange[];
  /** `any` (every protocol, ICMP included), or sorted disjoint port ranges. */
  readonly ports: "any" | readonly PortRange[];
  /** Identifies the content: equal signatures mean equal addresses and ports. */
  readonly signature: string;
  /** The peer set the addresses are, for pod peers (see `PeerPods.patch`). */
  readonly source?: PeerPods;
}

export interface DirectionModel {
  /** A policy applying to this interface has this direction in its policyTypes (and the interface is managed). */
  readonly isolated: boolean;
  /** Applying policies with this direction, sorted. */
  readonly policies: readonly string[];
  readonly allows: readonly AllowEntry[];
}

export interface InterfaceModel {
  readonly pod: string;
  /** `ns/name` of the NAD. */
  readonly network: string;
  readonly interface?: string;
  readonly addresses: readonly Address[];
  /** The NAD exists, its CNI type is in enforcement.networkPlugins and the interface is named. */
  readonly managed: boolean;
  /** Why it is not managed. */
  readonly unmanagedReason?: string;
  readonly ingress: DirectionModel;
  readonly egress: DirectionModel;
  /** Parts of applying policies that could not be expressed for this interface. */
  readonly warnings: readonly Problem[];
}

export interface ModelOptions {
  /** Default: config.enforcement.networkPlugins. */
  readonly networkPlugins?: readonly string[];
  /** The model of an earlier snapshot and what is known of the changes since (see `recompile`). */
  readonly previousModel?: PreviousModel;
}

/**
 * What a model carries forward from the one before: its indexes, with only the changed pods
 * replaced (and its policies kept when the policies and NADs are the same maps), and its peer sets.
 */
export interface PreviousModel {
  readonly model: PolicyModel;
  /** Pods changed since `model`. */
  readonly changedPods: readonly string[];
  /** Peer sets of `model` known still valid (some patched, see `patchPeerPods`), by `peerSetKey`. */
  readonly reusePeers: ReadonlyMap<string, PeerPods>;
  /** The new model's ids (of generation `model.generation + 1`): the patched peer sets took theirs from it. */
  readonly ids: IdSource;
  /** No policy or NAD changed since `model`: its policies are carried even when the snapshot's maps are new objects. */
  readonly policiesUnchanged?: boolean;
  /** The policies changed since `model`, when no NAD did: the others are carried as read. */
  readonly changedPolicies?: readonly string[];
}

/** The model of a snapshot; its indexes are what a later model carries forward (see `PreviousModel`). */
export interface PolicyModel extends ModelIndex {
  readonly snapshot: Snapshot;
  /** 0 for a model built afresh, one more than the model it was carried forward from. */
  readonly generation: number;
  /** The model of one pod's attachment to `network`; undefined when the pod has no such attachment. */
  interfaceModel(podKey: string, network: string): InterfaceModel | undefined;
  /** Models of every attachment of a pod (none for hostNetwork or unknown pods), in network-status order. */
  podModel(podKey: string): InterfaceModel[];
  /** Pods (keys) selected by the policy's podSelector in its namespace, whatever their networks. */
  selectedPods(policyKey: string): ReadonlySet<string>;
  /** Every problem of the policies and pods read. */
  problems(): Problem[];
  /** The peer sets computed so far, by `peerSetKey` (for reuse by the next model). */
  peerSets(): ReadonlyMap<string, PeerPods>;
}


const EMPTY_DIRECTION: DirectionModel = { isolated: false, policies: [], allows: [] };

/** What the functions below read: one model's inputs, indexes and rule entries. */
interface Scope {
  readonly snapshot: Snapshot;
  /** CNI types enforced on. */
  readonly plugins: ReadonlySet<string>;
  readonly index: ModelIndex;
  readonly rules: RuleEntries;
  /** Direction models by direction and isolating policies, for those that do not depend on the target pod (see `directionModel`). */
  readonly directions: Map<string, { model: DirectionModel; warnings: Problem[] }>;
}

/** Each model's rule entries, for the model carried forward from it (see `RuleEntries`). */
const ruleEntries = new WeakMap<PolicyModel, RuleEntries>();

/** Each model's policy selections computed so far (see `selectedPods`), for the model carried forward from it. */
const selections = new WeakMap<PolicyModel, Map<string, ReadonlySet<string>>>();

/** Builds the model of a snapshot. Cheap: the work happens on first use of each policy and pod. */
export function buildModel(snapshot: Snapshot, config: Config, options: ModelOptions = {}): PolicyModel {
  const previous = options.previousModel;
  const index = modelIndex(
    snapshot,
    previous && {
      snapshot: previous.model.snapshot,
      index: previous.model,
      changedPods: previous.changedPods,
      ...(previous.policiesUnchanged && { policiesUnchanged: true }),
      ...(previous.changedPolicies && { changedPolicies: previous.changedPolicies }),
    },
  );
  const ids = previous?.ids ?? new IdSource(0);
  // The closures below must not capture `previous`: each model holding the one before would chain every model ever built.
  // The sets carried are those the policies read: a pod event looks only at those (incremental.ts `touchedSets`).
  const reuse = previous && (index.policies === previous.model.policies ? previous.reusePeers : retainRead(previous.reusePeers, previous.model.policies, index.policies));
  const peers = new PeerSets({ snapshot, ...index }, ids, reuse, previous?.model.peerSets());
  const rules = new RuleEntries(peers, ids, previous && ruleEntries.get(previous.model)?.memo);
  const scope: Scope = { snapshot, plugins: new Set(options.networkPlugins ?? config.enforcement.networkPlugins), index, rules, directions: new Map() };
  const selected = new Map<string, ReadonlySet<string>>();
  const carried = previous && carriedSelections(previous, index);
  const model: PolicyModel = {
    snapshot,
    ...index,
    generation: ids.generation,
    interfaceModel: (podKey, network) => interfaceModel(scope, podKey, network),
    podModel: (podKey) => [...(index.pods.get(podKey)?.attachments.keys() ?? [])].map((network) => interfaceModel(scope, podKey, network)!),
    selectedPods: (policyKey) => {
      let found = selected.get(policyKey);
      if (!found) selected.set(policyKey, (found = carried?.(policyKey) ?? selectedPods(index, policyKey)));
      return found;
    },
    peerSets: () => peers.computed,
    problems: () => [...[...index.policies.values()].flatMap((p) => p.problems), ...[...index.pods.values()].flatMap((p) => p.problems)],
  };
  ruleEntries.set(model, rules);
  selections.set(model, selected);
  return model;
}

/**
 * The previous model's selection of a policy, when still valid: the same policy object, and no pod
 * of its namespace changed (before or after the change). Reads the previous model's map, not the
 * model (a model holding the one before would chain every model ever built).
 */
function carriedSelections(previous: PreviousModel, index: ModelIndex): ((policyKey: string) => ReadonlySet<string> | undefined) | undefined {
  const before = selections.get(previous.model);
  if (!before || before.size === 0) return undefined;
  const oldPolicies = previous.model.policies;
  const namespaces = new Set<string>();
  for (const key of previous.changedPods) {
    for (const pods of [previous.model.pods, index.pods]) {
      const pod = pods.get(key);
      if (pod) namespaces.add(pod.namespace);
    }
  }
  return (policyKey) => {
    const found = before.get(policyKey);
    const policy = index.policies.get(policyKey);
    return found && policy && oldPolicies.get(policyKey) === policy && !namespaces.has(policy.namespace) ? found : undefined;
  };
}

/** Pods (keys) selected by the policy's podSelector in its namespace. */
function selectedPods(index: ModelIndex, policyKey: string): ReadonlySet<string> {
  const selected = new Set<string>();
  const policy = index.policies.get(policyKey);
  if (policy) {
    for (const pod of index.podsByNamespace.get(policy.namespace) ?? []) {
      if (!pod.hostNetwork && policy.podSelector.matches(pod.labels)) selected.add(pod.key);
    }
  }
  return selected;
}

/** The policies on `network` that select the pod: only those of its namespace are looked at. */
function applyingPolicies(index: ModelIndex, pod: PodInfo, network: string): Policy[] {
  if (pod.hostNetwork) return [];
  const candidates = index.policiesByNetworkNamespace.get(policyListKey(network, pod.namespace)) ?? [];
  return candidates.filter((p) => p.podSelector.matches(pod.labels));
}

function unmanagedReason(scope: Scope, network: string, iface: string | undefined): string | undefined {
  const nad = scope.snapshot.nads.get(network);
  if (!nad) return `NAD ${network} does not exist`;
  const type = nadCniInfo(nad).types[0];
  if (type === undefined) return `the CNI type of NAD ${network} is unknown`;
  if (!scope.plugins.has(type)) return `CNI type ${type} of NAD ${network} is not in enforcement.networkPlugins`;
  if (iface === undefined || iface === "") return "network-status names no interface";
  return undefined;
}

/** Whether a policy has ingress rules with named ports: what they allow resolves against each target pod. */
const namedIngress = new WeakMap<Policy, boolean>();

function hasNamedIngress(policy: Policy): boolean {
  let found = namedIngress.get(policy);
  if (found === undefined) namedIngress.set(policy, (found = (policy.ingress ?? []).some((rule) => rule.ports?.some((p) => p.kind === "named") ?? false)));
  return found;
}

/**
 * What the applying policies allow in one direction. Pods that the same policies isolate share the
 * result (and so the sets built from it), unless an ingress rule has named ports, which resolve
 * against the target pod itself.
 */
function directionModel(scope: Scope, applying: readonly Policy[], direction: Direction, target: PodInfo): { model: DirectionModel; warnings: Problem[] } {
  const isolating = applying.filter((p) => p[direction] !== undefined);
  if (isolating.length === 0) return { model: EMPTY_DIRECTION, warnings: [] };
  const shareable = direction === "egress" || !isolating.some(hasNamedIngress);
  const key = shareable ? `${direction}\u0000${isolating.map((p) => p.key).join("\u0000")}` : undefined;
  const known = key === undefined ? undefined : scope.directions.get(key);
  if (known) return known;
  const warnings: Problem[] = [];
  const allows: AllowEntry[] = [];
  for (const policy of isolating) {
    policy[direction]!.forEach((_, i) => {
      const shared = scope.rules.shared(policy, direction, i);
      allows.push(...shared.entries);
      warnings.push(...shared.warnings);
      if (direction === "ingress") allows.push(...scope.rules.ingressNamed(policy, i, target, warnings));
    });
  }
  const result = { model: { isolated: true, policies: isolating.map((p) => p.key).sort(), allows }, warnings };
  if (key !== undefined) scope.directions.set(key, result);
  return result;
}

function interfaceModel(scope: Scope, podKey: string, network: string): InterfaceModel | undefined {
  const pod = scope.index.pods.get(podKey);
  const attachment = pod?.attachments.get(network);
  if (!pod || !attachment) return undefined;
  const reason = unmanagedReason(scope, network, attachment.interface);
  const applying = applyingPolicies(scope.index, pod, network);
  const ingress = directionModel(scope, applying, "ingress", pod);
  const egress = directionModel(scope, applying, "egress", pod);
  const warnings = ingress.warnings.length + egress.warnings.length === 0 ? [] : [...ingress.warnings, ...egress.warnings];
  const { addresses } = attachment;
  if (reason !== undefined) {
    // Nothing enforces on this interface: report what the policies say, isolate nothing.
    const open = (d: DirectionModel): DirectionModel => ({ ...d, isolated: false });
    const base = { pod: podKey, network, ...(attachment.interface !== undefined && { interface: attachment.interface }), addresses };
    return { ...base, managed: false, unmanagedReason: reason, ingress: open(ingress.model), egress: open(egress.model), warnings };
  }
  // Literals, not spreads: this runs for every candidate pod of every recompile.
  const deduped = warnings.length === 0 ? warnings : dedupe(warnings);
  return attachment.interface === undefined
    ? { pod: podKey, network, addresses, managed: true, ingress: ingress.model, egress: egress.model, warnings: deduped }
    : { pod: podKey, network, interface: attachment.interface, addresses, managed: true, ingress: ingress.model, egress: egress.model, warnings: deduped };
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.code}\u0000${p.path}\u0000${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
