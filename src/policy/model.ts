// The policy model: for each (pod, interface, direction), whether it is isolated and what the
// applying policies allow, as (addresses × ports) entries that name the policy, rule and peer they
// come from. The compiler turns these entries into set elements and the verdict oracle evaluates
// probes against them, so both always agree (issue 3, section 6).
//
// Semantics: networking.k8s.io/v1 NetworkPolicy, per interface (issue 3, section 2). Work is shared
// between pods: policies are indexed by NAD, target selections and peer address lists are computed
// once per policy and rule, on first use.
import type { Problem } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import type { Config } from "../config/config.js";
import { nadCniInfo } from "../networks/nad-config.js";
import { type Direction, type Peer, type Policy, type Port, readPolicy } from "./policy.js";
import { type Address, type PodInfo, namedPortKey, podInfo } from "./pods.js";
import { type AddrRange, type L4Protocol, type PortRange, mergePortRanges } from "./ranges.js";
import type { Labels } from "./selector.js";

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
  /** Peer sets of `model` known still valid (some patched, see `patchPeerPods`), by memo key. */
  readonly reusePeers: ReadonlyMap<string, PeerPods>;
  /** The new model's ids (of generation `model.generation + 1`): the patched peer sets took theirs from it. */
  readonly ids: IdSource;
}

export interface PolicyModel {
  readonly snapshot: Snapshot;
  /** Policies as read, by key. */
  readonly policies: ReadonlyMap<string, Policy>;
  /** Policies by `network\u0000namespace`: the ones that may apply to a pod of that namespace there. */
  readonly policiesByNetworkNamespace: ReadonlyMap<string, readonly Policy[]>;
  readonly pods: ReadonlyMap<string, PodInfo>;
  readonly podsByNamespace: ReadonlyMap<string, readonly PodInfo[]>;
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
  /** The peer sets computed so far, by memo key (for reuse by the next model). */
  peerSets(): ReadonlyMap<string, PeerPods>;
}

/** The pods a peer selects on some networks, and their addresses there. Shared by every policy with that peer. */
export interface PeerPods {
  readonly pods: readonly PodInfo[];
  readonly ranges: readonly AddrRange[];
  /** Unique within a line of models (see `IdSource`): equal ids mean the same set (what set-element caches key on). */
  readonly id: string;
  readonly networks: readonly string[];
  /** The peer; absent for "every pod" (egress named ports without `to`). */
  readonly peer?: Peer & { kind: "pods" };
  /** The namespace a peer without namespaceSelector looks in. */
  readonly namespace: string;
  /** When made by `patchPeerPods`: the id of the set it was patched from, and the host ranges that left and came. */
  readonly patch?: { readonly from: string; readonly removed: readonly AddrRange[]; readonly added: readonly AddrRange[] };
}

/**
 * The ids one model gives its peer sets and named-port groups: `generation.n`. A model carried
 * forward from another has the next generation, so the ids it takes over never collide with the
 * ones it makes; a model built afresh starts at generation 0, whatever was built before.
 */
export class IdSource {
  #next = 1;

  constructor(readonly generation: number) {}

  take(): string {
    return `${this.generation}.${this.#next++}`;
  }
}

const EMPTY_DIRECTION: DirectionModel = { isolated: false, policies: [], allows: [] };

function portsText(ports: "any" | readonly PortRange[]): string {
  return ports === "any" ? "any" : ports.map((p) => `${p.protocol}:${p.from}-${p.to}`).join(",");
}

/** Builds the model of a snapshot. Cheap: the work happens on first use of each policy and pod. */
export function buildModel(snapshot: Snapshot, config: Config, options: ModelOptions = {}): PolicyModel {
  const plugins = new Set(options.networkPlugins ?? config.enforcement.networkPlugins);
  const previous = options.previousModel;
  const { policies, byNetworkNamespace } =
    previous && previous.model.snapshot.policies === snapshot.policies && previous.model.snapshot.nads === snapshot.nads
      ? { policies: previous.model.policies, byNetworkNamespace: previous.model.policiesByNetworkNamespace }
      : indexPolicies(snapshot);
  const { pods, byNamespace } = previous ? carryPods(previous.model, snapshot, previous.changedPods) : indexPods(snapshot);
  const ids = previous?.ids ?? new IdSource(0);
  const namespaceLabels = (ns: string): Labels => snapshot.namespaces.get(ns)?.metadata.labels ?? {};

  const selectedMemo = new Map<string, Set<string>>();
  const peerMemo = new Map<string, PeerPods>(previous?.reusePeers ?? []);
  // Closures below must not capture `options` or `previous`: they name the previous model, and each
  // model holding the one before would chain every model ever built.
  const previousPeers = previous?.model.peerSets();
  const ruleMemo = new Map<string, { entries: AllowEntry[]; warnings: Problem[] }>();

  /** The policies on `network` that select the pod: only those of its namespace are looked at. */
  function applyingPolicies(pod: PodInfo, network: string): Policy[] {
    if (pod.hostNetwork) return [];
    const candidates = byNetworkNamespace.get(`${network}\u0000${pod.namespace}`) ?? [];
    return candidates.filter((p) => p.podSelector.matches(pod.labels));
  }

  function selectedPods(policyKey: string): Set<string> {
    let selected = selectedMemo.get(policyKey);
    if (selected) return selected;
    selected = new Set();
    const policy = policies.get(policyKey);
    if (policy) {
      for (const pod of byNamespace.get(policy.namespace) ?? []) {
        if (!pod.hostNetwork && policy.podSelector.matches(pod.labels)) selected.add(pod.key);
      }
    }
    selectedMemo.set(policyKey, selected);
    return selected;
  }

  /** Running, non-hostNetwork pods with addresses on one of the policy's networks, and those addresses. */
  function eligiblePeer(policy: Policy, pod: PodInfo): readonly AddrRange[] | undefined {
    if (!pod.peerEligible) return undefined;
    if (policy.networks.length === 1) {
      const ranges = pod.attachments.get(policy.networks[0]!)?.ranges;
      return ranges && ranges.length > 0 ? ranges : undefined;
    }
    const ranges: AddrRange[] = [];
    for (const nad of policy.networks) for (const r of pod.attachments.get(nad)?.ranges ?? []) ranges.push(r);
    return ranges.length > 0 ? ranges : undefined;
  }

  function collectPeers(policy: Policy, candidates: readonly (readonly PodInfo[])[], peer: (Peer & { kind: "pods" }) | undefined): PeerPods {
    const podSelector = peer?.podSelector;
    const chosen: PodInfo[] = [];
    const ranges: AddrRange[] = [];
    for (const list of candidates) {
      for (const pod of list) {
        if (podSelector && !podSelector.matches(pod.labels)) continue;
        const own = eligiblePeer(policy, pod);
        if (!own) continue;
        chosen.push(pod);
        for (const r of own) ranges.push(r);
      }
    }
    return { pods: chosen, ranges: sortRanges(ranges), id: ids.take(), networks: policy.networks, ...(peer && { peer }), namespace: policy.namespace };
  }

  function podsOfNamespaces(peer: Peer & { kind: "pods" }, policy: Policy): (readonly PodInfo[])[] {
    if (!peer.namespaceSelector) return [byNamespace.get(policy.namespace) ?? []];
    const lists: (readonly PodInfo[])[] = [];
    for (const [ns, list] of byNamespace) {
      if (peer.namespaceSelector.everything || peer.namespaceSelector.matches(namespaceLabels(ns))) lists.push(list);
    }
    return lists;
  }

  /** The pods a peer selects; shared by every policy with the same networks and the same peer (templated policies). */
  function peerPods(policy: Policy, peer: Peer & { kind: "pods" }): PeerPods {
    const memoKey = `${policy.networks.join(",")}\u0000${peer.key}`;
    let found = peerMemo.get(memoKey);
    if (!found) {
      found = samePeerPods(previousPeers?.get(memoKey), collectPeers(policy, podsOfNamespaces(peer, policy), peer));
      peerMemo.set(memoKey, found);
    }
    return found;
  }

  /** Every eligible pod on the policy's networks: the destinations of an egress rule without `to`, for its named ports. */
  function allPeers(policy: Policy): PeerPods {
    const memoKey = `${policy.networks.join(",")}\u0000all`;
    let found = peerMemo.get(memoKey);
    if (!found) {
      found = samePeerPods(previousPeers?.get(memoKey), collectPeers(policy, [[...pods.values()]], undefined));
      peerMemo.set(memoKey, found);
    }
    return found;
  }

  function entry(policy: Policy, rule: number, peer: number | undefined, addrId: string, addresses: AllowEntry["addresses"], ports: AllowEntry["ports"]): AllowEntry {
    return { policy: policy.key, rule, ...(peer !== undefined && { peer }), addresses, ports, signature: `${addrId}|${portsText(ports)}` };
  }

  /** The fixed (numeric) ports of a rule, its named ones, and whether it had a port list at all. */
  function splitPorts(ports: readonly Port[] | undefined): { fixed: "any" | PortRange[]; named: { name: string; protocol: L4Protocol }[] } {
    if (!ports) return { fixed: "any", named: [] };
    const fixed: PortRange[] = [];
    const named: { name: string; protocol: L4Protocol }[] = [];
    for (const p of ports) {
      if (p.kind === "range") fixed.push({ protocol: p.protocol, from: p.from, to: p.to });
      else if (p.kind === "named") named.push({ name: p.name, protocol: p.protocol });
    }
    return { fixed: mergePortRanges(fixed), named };
  }

  /** Entries of one rule for every source/destination peer, with the given ports. */
  function peerEntries(policy: Policy, direction: Direction, ruleIndex: number, ports: "any" | readonly PortRange[]): AllowEntry[] {
    if (ports !== "any" && ports.length === 0) return [];
    const rule = policy[direction]![ruleIndex]!;
    if (!rule.peers) return [entry(policy, ruleIndex, undefined, "any", "any", ports)];
    const out: AllowEntry[] = [];
    rule.peers.forEach((peer, i) => {
      if (peer.kind === "ipBlock") {
        out.push(entry(policy, ruleIndex, i, `ip:${peer.ranges.map((r) => `${r.from}-${r.to}`).join(",")}`, peer.ranges, ports));
      } else if (peer.kind === "pods") {
        const found = peerPods(policy, peer);
        if (found.ranges.length > 0) out.push({ ...entry(policy, ruleIndex, i, `p${found.id}`, found.ranges, ports), source: found });
      }
    });
    return out;
  }

  /** Egress named ports: resolved against each destination pod; pods grouped by what their names resolve to. */
  function egressNamedEntries(policy: Policy, ruleIndex: number, named: { name: string; protocol: L4Protocol }[], warnings: Problem[]): AllowEntry[] {
    const rule = policy.egress![ruleIndex]!;
    const targets: { peer: number | undefined; found: PeerPods }[] = rule.peers
      ? rule.peers.flatMap((peer, i) => (peer.kind === "pods" ? [{ peer: i, found: peerPods(policy, peer) }] : []))
      : [{ peer: undefined, found: allPeers(policy) }];
    const out: AllowEntry[] = [];
    const resolvedNames = new Set<string>();
    for (const { peer, found } of targets) {
      const groups = new Map<string, { ports: PortRange[]; ranges: AddrRange[] }>();
      for (const pod of found.pods) {
        const ports: PortRange[] = [];
        for (const n of named) {
          const number = pod.namedPorts.get(namedPortKey(n.name, n.protocol));
          if (number === undefined) continue;
          resolvedNames.add(namedPortKey(n.name, n.protocol));
          ports.push({ protocol: n.protocol, from: number, to: number });
        }
        if (ports.length === 0) continue;
        const merged = mergePortRanges(ports);
        const groupKey = portsText(merged);
        let group = groups.get(groupKey);
        if (!group) groups.set(groupKey, (group = { ports: merged, ranges: [] }));
        for (const r of eligiblePeer(policy, pod) ?? []) group.ranges.push(r);
      }
      for (const group of groups.values()) {
        out.push(entry(policy, ruleIndex, peer, `n${ids.take()}`, sortRanges(group.ranges), group.ports));
      }
    }
    for (const n of named) {
      if (!resolvedNames.has(namedPortKey(n.name, n.protocol))) {
        warnings.push({
          code: "policy.named-port-unresolved",
          path: `MultiNetworkPolicy ${policy.key}: spec.egress[${ruleIndex}].ports`,
          message: `named port ${n.name}/${n.protocol} is defined by no destination pod; it allows nothing`,
        });
      }
    }
    return out;
  }

  /** Entries of a rule that do not depend on the target pod (all of egress; ingress without named ports). */
  function sharedRuleEntries(policy: Policy, direction: Direction, ruleIndex: number): { entries: AllowEntry[]; warnings: Problem[] } {
    const memoKey = `${policy.key}\u0000${direction}\u0000${ruleIndex}`;
    let found = ruleMemo.get(memoKey);
    if (found) return found;
    const { fixed, named } = splitPorts(policy[direction]![ruleIndex]!.ports);
    const warnings: Problem[] = [];
    const entries = peerEntries(policy, direction, ruleIndex, fixed);
    if (direction === "egress" && named.length > 0) entries.push(...egressNamedEntries(policy, ruleIndex, named, warnings));
    found = { entries, warnings };
    ruleMemo.set(memoKey, found);
    return found;
  }

  /** Ingress named ports resolve against the target pod itself. */
  function ingressNamedEntries(policy: Policy, ruleIndex: number, target: PodInfo, warnings: Problem[]): AllowEntry[] {
    const { fixed, named } = splitPorts(policy.ingress![ruleIndex]!.ports);
    if (named.length === 0) return [];
    const ports: PortRange[] = [];
    for (const n of named) {
      const number = target.namedPorts.get(namedPortKey(n.name, n.protocol));
      if (number !== undefined) ports.push({ protocol: n.protocol, from: number, to: number });
      else {
        warnings.push({
          code: "policy.named-port-unresolved",
          path: `MultiNetworkPolicy ${policy.key}: spec.ingress[${ruleIndex}].ports`,
          message: `named port ${n.name}/${n.protocol} is not defined by pod ${target.key}; it allows nothing there`,
        });
      }
    }
    // Numeric ports of the same rule are in the shared entries already; only add what is new.
    const extra = mergePortRanges(ports).filter((p) => fixed === "any" || !fixed.some((f) => f.protocol === p.protocol && f.from <= p.from && p.to <= f.to));
    return peerEntries(policy, "ingress", ruleIndex, extra);
  }

  function directionModel(applying: readonly Policy[], direction: Direction, target: PodInfo, warnings: Problem[]): DirectionModel {
    const isolating = applying.filter((p) => p[direction] !== undefined);
    if (isolating.length === 0) return EMPTY_DIRECTION;
    const allows: AllowEntry[] = [];
    for (const policy of isolating) {
      policy[direction]!.forEach((_, i) => {
        const shared = sharedRuleEntries(policy, direction, i);
        allows.push(...shared.entries);
        warnings.push(...shared.warnings);
        if (direction === "ingress") allows.push(...ingressNamedEntries(policy, i, target, warnings));
      });
    }
    return { isolated: true, policies: isolating.map((p) => p.key).sort(), allows };
  }

  function unmanagedReason(network: string, iface: string | undefined): string | undefined {
    const nad = snapshot.nads.get(network);
    if (!nad) return `NAD ${network} does not exist`;
    const type = nadCniInfo(nad).types[0];
    if (type === undefined) return `the CNI type of NAD ${network} is unknown`;
    if (!plugins.has(type)) return `CNI type ${type} of NAD ${network} is not in enforcement.networkPlugins`;
    if (iface === undefined || iface === "") return "network-status names no interface";
    return undefined;
  }

  function interfaceModel(podKey: string, network: string): InterfaceModel | undefined {
    const pod = pods.get(podKey);
    const attachment = pod?.attachments.get(network);
    if (!pod || !attachment) return undefined;
    const reason = unmanagedReason(network, attachment.interface);
    const applying = applyingPolicies(pod, network);
    const warnings: Problem[] = [];
    const ingress = directionModel(applying, "ingress", pod, warnings);
    const egress = directionModel(applying, "egress", pod, warnings);
    const base = {
      pod: podKey,
      network,
      ...(attachment.interface !== undefined && { interface: attachment.interface }),
      addresses: attachment.addresses,
    };
    if (reason !== undefined) {
      // Nothing enforces on this interface: report what the policies say, isolate nothing.
      const open = (d: DirectionModel): DirectionModel => ({ ...d, isolated: false });
      return { ...base, managed: false, unmanagedReason: reason, ingress: open(ingress), egress: open(egress), warnings };
    }
    return { ...base, managed: true, ingress, egress, warnings: dedupe(warnings) };
  }

  const model: PolicyModel = {
    snapshot,
    policies,
    policiesByNetworkNamespace: byNetworkNamespace,
    pods,
    podsByNamespace: byNamespace,
    generation: ids.generation,
    interfaceModel,
    podModel: (podKey) => {
      const pod = pods.get(podKey);
      if (!pod) return [];
      return [...pod.attachments.keys()].map((network) => interfaceModel(podKey, network)!);
    },
    selectedPods,
    peerSets: () => peerMemo,
    problems: () => [...[...policies.values()].flatMap((p) => p.problems), ...[...pods.values()].flatMap((p) => p.problems)],
  };
  return model;
}

/** The policies of a snapshot, read, and listed by `network\u0000namespace`. */
function indexPolicies(snapshot: Snapshot): { policies: Map<string, Policy>; byNetworkNamespace: Map<string, Policy[]> } {
  const policies = new Map<string, Policy>();
  const byNetworkNamespace = new Map<string, Policy[]>();
  for (const raw of snapshot.policies.values()) {
    const policy = readPolicy(raw, snapshot);
    policies.set(policy.key, policy);
    for (const nad of policy.networks) {
      const key = `${nad}\u0000${policy.namespace}`;
      const list = byNetworkNamespace.get(key);
      if (list) list.push(policy);
      else byNetworkNamespace.set(key, [policy]);
    }
  }
  return { policies, byNetworkNamespace };
}

/** The pods of a snapshot, read, and listed by namespace. */
function indexPods(snapshot: Snapshot): { pods: Map<string, PodInfo>; byNamespace: Map<string, PodInfo[]> } {
  const pods = new Map<string, PodInfo>();
  const byNamespace = new Map<string, PodInfo[]>();
  for (const raw of snapshot.pods.values()) {
    const info = podInfo(raw);
    pods.set(info.key, info);
    const list = byNamespace.get(info.namespace);
    if (list) list.push(info);
    else byNamespace.set(info.namespace, [info]);
  }
  return { pods, byNamespace };
}

/** The pod indexes of `base` carried forward: copies of the maps, the changed pods replaced (other lists shared, never mutated). */
function carryPods(base: PolicyModel, snapshot: Snapshot, changedPods: readonly string[]): { pods: Map<string, PodInfo>; byNamespace: Map<string, readonly PodInfo[]> } {
  const pods = new Map(base.pods);
  const byNamespace = new Map(base.podsByNamespace);
  const copied = new Map<string, PodInfo[]>();
  for (const key of changedPods) {
    const raw = snapshot.pods.get(key);
    const info = raw ? podInfo(raw) : undefined;
    const old = base.pods.get(key);
    if (info) pods.set(key, info);
    else pods.delete(key);
    for (const ns of new Set([old?.namespace, info?.namespace])) {
      if (ns === undefined) continue;
      let list = copied.get(ns);
      if (!list) {
        list = [...(byNamespace.get(ns) ?? [])];
        byNamespace.set(ns, list);
        copied.set(ns, list);
      }
      const index = list.findIndex((p) => p.key === key);
      if (info && info.namespace === ns) {
        if (index >= 0) list[index] = info;
        else list.push(info);
      } else if (index >= 0) list.splice(index, 1);
      // A namespace emptied by one pod may get another back in the same change.
      if (list.length === 0) byNamespace.delete(ns);
      else byNamespace.set(ns, list);
    }
  }
  return { pods, byNamespace };
}

/** A pod's host ranges on any of `networks`, when it counts as a peer there (what `collectPeers` takes). */
function eligibleRanges(networks: readonly string[], pod: PodInfo): readonly AddrRange[] | undefined {
  if (!pod.peerEligible) return undefined;
  if (networks.length === 1) {
    const ranges = pod.attachments.get(networks[0]!)?.ranges;
    return ranges && ranges.length > 0 ? ranges : undefined;
  }
  const ranges: AddrRange[] = [];
  for (const nad of networks) for (const r of pod.attachments.get(nad)?.ranges ?? []) ranges.push(r);
  return ranges.length > 0 ? ranges : undefined;
}

/**
 * The peer set after one pod changed: `after` (absent: the pod is gone) replaces the pod with key
 * `key`, when it belongs to the set under the next snapshot (`nsLabels`: its namespace's labels
 * there). Equal content to what `collectPeers` computes (pod order aside, which nothing reads but
 * `samePeerPods`); the same object when nothing changed, else a new id. O(peers), no selector
 * evaluation but for the one pod. Valid only when the namespaces and NADs are unchanged.
 */
export function patchPeerPods(set: PeerPods, key: string, after: PodInfo | undefined, nsLabels: Labels, ids: IdSource): PeerPods {
  const index = set.pods.findIndex((p) => p.key === key);
  let own: readonly AddrRange[] | undefined;
  if (after) {
    const peer = set.peer;
    const inNamespace = !peer ? true : peer.namespaceSelector ? peer.namespaceSelector.everything || peer.namespaceSelector.matches(nsLabels) : after.namespace === set.namespace;
    if (inNamespace && (!peer?.podSelector || peer.podSelector.matches(after.labels))) own = eligibleRanges(set.networks, after);
  }
  if (index < 0 && !own) return set;
  const old = index >= 0 ? set.pods[index]! : undefined;
  if (old && own && after && (old === after || (sameNamedPorts(old.namedPorts, after.namedPorts) && set.networks.every((n) => sameHostRanges(old.attachments.get(n)?.ranges, after.attachments.get(n)?.ranges))))) return set;
  const pods = set.pods.slice();
  if (old) {
    if (own) pods[index] = after!;
    else pods.splice(index, 1);
  } else pods.push(after!);
  // set.ranges is sorted and without duplicates (sortRanges): patched by binary search, not re-sorted.
  const ranges: AddrRange[] = [...set.ranges];
  const removed: AddrRange[] = [];
  const added: AddrRange[] = [];
  const oldRanges = old ? eligibleRanges(set.networks, old) : undefined;
  if (oldRanges) {
    // Drop the old pod's addresses unless another member still has them.
    let gone = oldRanges.filter((r, i) => oldRanges.findIndex((x) => sameRange(x, r)) === i);
    for (const p of pods) {
      if (gone.length === 0) break;
      if (p === after && own) continue;
      const theirs = eligibleRanges(set.networks, p);
      if (theirs) gone = gone.filter((r) => !theirs.some((x) => sameRange(x, r)));
    }
    for (const r of gone) {
      const i = searchRange(ranges, r);
      if (i >= 0) {
        ranges.splice(i, 1);
        removed.push(r);
      }
    }
  }
  for (const r of own ?? []) {
    const i = searchRange(ranges, r);
    if (i < 0) {
      ranges.splice(-i - 1, 0, r);
      added.push(r);
    }
  }
  // A range both gone and back (the old pod's address kept by the new one) is neither.
  const net = removed.filter((r) => !added.some((x) => sameRange(x, r)));
  return { ...set, pods, ranges, id: ids.take(), patch: { from: set.id, removed: net, added: added.filter((r) => !removed.some((x) => sameRange(x, r))) } };
}

const sameRange = (x: AddrRange, y: AddrRange): boolean => x.family === y.family && x.from === y.from && x.to === y.to;

/** Index of `r` in ranges sorted as `sortRanges` sorts them, or -(insertion point) - 1. */
function searchRange(ranges: readonly AddrRange[], r: AddrRange): number {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const m = ranges[mid]!;
    const c = m.family - r.family || (m.from < r.from ? -1 : m.from > r.from ? 1 : m.to < r.to ? -1 : m.to > r.to ? 1 : 0);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

function sameNamedPorts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

function sameHostRanges(a: readonly AddrRange[] | undefined, b: readonly AddrRange[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  return a.every((r, i) => r.family === b[i]!.family && r.from === b[i]!.from && r.to === b[i]!.to);
}

/** `previous` when `next` holds the same pods (keys, named ports) and addresses, else `next`. */
function samePeerPods(previous: PeerPods | undefined, next: PeerPods): PeerPods {
  if (!previous || previous.pods.length !== next.pods.length || previous.ranges.length !== next.ranges.length) return next;
  if (previous.networks.join(",") !== next.networks.join(",")) return next;
  for (let i = 0; i < next.pods.length; i++) {
    const a = previous.pods[i]!;
    const b = next.pods[i]!;
    if (a !== b && (a.key !== b.key || !sameNamedPorts(a.namedPorts, b.namedPorts) || !next.networks.every((n) => sameHostRanges(a.attachments.get(n)?.ranges, b.attachments.get(n)?.ranges)))) return next;
  }
  for (let i = 0; i < next.ranges.length; i++) {
    const a = previous.ranges[i]!;
    const b = next.ranges[i]!;
    if (a.family !== b.family || a.from !== b.from || a.to !== b.to) return next;
  }
  return previous;
}

/**
 * Peer pods' host addresses, v4 then v6, sorted, duplicates removed. Never merged into ranges:
 * each stays a host, so that it goes to the hash sets (ruleset.ts) and one pod coming or going is
 * one element.
 */
function sortRanges(ranges: AddrRange[]): AddrRange[] {
  ranges.sort((x, y) => x.family - y.family || (x.from < y.from ? -1 : x.from > y.from ? 1 : x.to < y.to ? -1 : x.to > y.to ? 1 : 0));
  const out: AddrRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && last.family === r.family && last.from === r.from && last.to === r.to) continue;
    out.push(r);
  }
  return out;
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
