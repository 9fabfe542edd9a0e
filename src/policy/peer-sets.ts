// Peer sets: the pods a policy peer selects on the policy's networks, and their host addresses
// there. One set serves every policy with the same networks and peer (templated policies); it is
// computed on first use, carried from one model to the next while still valid, and patched, not
// recomputed, when one pod changed.
import type { Snapshot } from "../api/snapshot.js";
import type { Policy, PodsPeer } from "./policy.js";
import type { PodInfo } from "./pods.js";
import { type OverlayMap, overlay } from "./overlay-map.js";
import { type AddrRange, cmpAddrRange, sameAddrRange } from "./ranges.js";
import type { Labels } from "./selector.js";
import { editSorted, sameList } from "./sorted.js";

/** The pods a peer selects on some networks, and their addresses there. Shared by every policy with that peer. */
export interface PeerPods {
  readonly pods: readonly PodInfo[];
  readonly ranges: readonly AddrRange[];
  /** Unique within a line of models (see `IdSource`): equal ids mean the same set (what set-element caches key on). */
  readonly id: string;
  readonly networks: readonly string[];
  /** The peer; absent for "every pod" (egress named ports without `to`). */
  readonly peer?: PodsPeer;
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

/** The key of a peer set: equal keys, equal sets (within one snapshot). `peer` absent: every pod. */
export function peerSetKey(networks: readonly string[], peer: PodsPeer | undefined): string {
  return `${networks.join(",")}\u0000${peer ? peer.key : "all"}`;
}

/** A policy reading a peer set: through one of its pod peers, or (absent) every pod for egress named ports without `to`. */
export interface SetReader {
  readonly policy: Policy;
  readonly peer: PodsPeer | undefined;
}

/** The peer sets the policies of a model read, by `peerSetKey`, indexed by where their members may be. */
export interface SetIndex {
  readonly sets: ReadonlyMap<string, { readonly readers: readonly SetReader[]; readonly labelKeys: readonly string[] }>;
  /** Keys of sets of peers without namespaceSelector, by the namespace they look in (the policy's). */
  readonly byNamespace: ReadonlyMap<string, readonly string[]>;
  /** Keys of sets of peers with a namespaceSelector, and of "every pod". */
  readonly anyNamespace: readonly string[];
}

/** One index per policies map: carried forward with the policies (model-index.ts). */
const setIndexes = new WeakMap<ReadonlyMap<string, Policy>, SetIndex>();

/**
 * The peer sets the policies read, each with its readers and the pod label keys its pod selector
 * reads (whether a pod is a member changes with its labels only when one of these does: none for a
 * peer without podSelector, or with `{}`), indexed by the namespaces their members may be in.
 */
export function setIndex(policies: ReadonlyMap<string, Policy>): SetIndex {
  let found = setIndexes.get(policies);
  if (found) return found;
  const sets = new Map<string, { readers: SetReader[]; labelKeys: readonly string[] }>();
  const byNamespace = new Map<string, string[]>();
  const anyNamespace: string[] = [];
  const add = (policy: Policy, peer: PodsPeer | undefined): void => {
    const key = peerSetKey(policy.networks, peer);
    const known = sets.get(key);
    if (known) {
      known.readers.push({ policy, peer });
      return;
    }
    sets.set(key, { readers: [{ policy, peer }], labelKeys: peer?.podSelector?.keys ?? [] });
    if (peer && !peer.namespaceSelector) {
      const list = byNamespace.get(policy.namespace);
      if (list) list.push(key);
      else byNamespace.set(policy.namespace, [key]);
    } else anyNamespace.push(key);
  };
  for (const policy of policies.values()) {
    if (policy.egressNamedToAll) add(policy, undefined);
    for (const peer of policy.podPeers) add(policy, peer);
  }
  setIndexes.set(policies, (found = { sets, byNamespace, anyNamespace }));
  return found;
}

/** The keys of the peer sets a policy reads. */
function readKeys(policy: Policy): string[] {
  const keys = policy.podPeers.map((peer) => peerSetKey(policy.networks, peer));
  if (policy.egressNamedToAll) keys.push(peerSetKey(policy.networks, undefined));
  return keys;
}

/**
 * The sets of `sets` (all read by the policies `before`) that the policies `after` still read: what
 * a model carries from the one before when its policies changed. Work in proportion to the
 * policies that changed, not to the sets.
 */
export function retainRead(sets: ReadonlyMap<string, PeerPods>, before: ReadonlyMap<string, Policy>, after: ReadonlyMap<string, Policy>): ReadonlyMap<string, PeerPods> {
  // Read by a policy gone or changed, and by none that came or changed...
  const gone = new Set<string>();
  for (const [key, policy] of before) if (after.get(key) !== policy) for (const k of readKeys(policy)) gone.add(k);
  for (const [key, policy] of after) if (gone.size > 0 && before.get(key) !== policy) for (const k of readKeys(policy)) gone.delete(k);
  if (gone.size === 0) return sets;
  // ...nor by one that stayed.
  const readers = setIndex(before).sets;
  const out = overlay(sets);
  for (const k of gone) if (!readers.get(k)?.readers.some((r) => after.get(r.policy.key) === r.policy)) out.delete(k);
  return out;
}

/** A namespace's labels in a snapshot (none when it does not exist). */
export function namespaceLabels(snapshot: Snapshot, namespace: string): Labels {
  return snapshot.namespaces.get(namespace)?.metadata.labels ?? {};
}

/** Whether `peer` (absent: every pod) of a policy in `namespace` selects `pod`, whose namespace has `nsLabels`. */
export function peerSelects(peer: PodsPeer | undefined, namespace: string, pod: PodInfo, nsLabels: Labels): boolean {
  if (!peer) return true;
  if (peer.namespaceSelector ? !peer.namespaceSelector.matches(nsLabels) : pod.namespace !== namespace) return false;
  return !peer.podSelector || peer.podSelector.matches(pod.labels);
}

/** A pod's host ranges on any of `networks`, when it counts as a peer there: Running, not hostNetwork, with addresses. */
export function eligibleRanges(networks: readonly string[], pod: PodInfo): readonly AddrRange[] | undefined {
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
 * Peer pods' host addresses, v4 then v6, sorted, duplicates removed. Never merged into ranges:
 * each stays a host, so that it goes to the hash sets (ruleset.ts) and one pod coming or going is
 * one element.
 */
export function sortedHosts(ranges: AddrRange[]): AddrRange[] {
  ranges.sort(cmpAddrRange);
  const out: AddrRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (last && sameAddrRange(last, r)) continue;
    out.push(r);
  }
  return out;
}

/** The pods and namespaces peer sets are computed from. */
export interface PeerSource {
  readonly snapshot: Snapshot;
  readonly pods: ReadonlyMap<string, PodInfo>;
  readonly podsByNamespace: ReadonlyMap<string, readonly PodInfo[]>;
}

/** The peer sets of one model, computed on first use. */
export class PeerSets {
  readonly #source: PeerSource;
  readonly #ids: IdSource;
  readonly #memo: Map<string, PeerPods> | OverlayMap<string, PeerPods>;
  // The previous model's sets (not the model: each model holding the one before would chain every model ever built).
  readonly #previous: ReadonlyMap<string, PeerPods> | undefined;

  /** `reuse`: sets known still valid, taken as they are; `previous`: sets that keep their object and id when recomputed equal. */
  constructor(source: PeerSource, ids: IdSource, reuse?: ReadonlyMap<string, PeerPods>, previous?: ReadonlyMap<string, PeerPods>) {
    this.#source = source;
    this.#ids = ids;
    this.#memo = reuse ? overlay(reuse) : new Map();
    this.#previous = previous;
  }

  /** The sets computed so far, by `peerSetKey`. */
  get computed(): ReadonlyMap<string, PeerPods> {
    return this.#memo;
  }

  /** The pods a peer of `policy` selects; `peer` absent: every eligible pod (the destinations of an egress rule without `to`, for its named ports). */
  of(policy: Policy, peer: PodsPeer | undefined): PeerPods {
    const key = peerSetKey(policy.networks, peer);
    let found = this.#memo.get(key);
    if (!found) {
      found = samePeerPods(this.#previous?.get(key), this.#collect(policy, peer));
      this.#memo.set(key, found);
    }
    return found;
  }

  #collect(policy: Policy, peer: PodsPeer | undefined): PeerPods {
    const podSelector = peer?.podSelector;
    const chosen: PodInfo[] = [];
    const ranges: AddrRange[] = [];
    for (const list of this.#candidates(policy, peer)) {
      for (const pod of list) {
        if (podSelector && !podSelector.matches(pod.labels)) continue;
        const own = eligibleRanges(policy.networks, pod);
        if (!own) continue;
        chosen.push(pod);
        for (const r of own) ranges.push(r);
      }
    }
    return { pods: chosen, ranges: sortedHosts(ranges), id: this.#ids.take(), networks: policy.networks, ...(peer && { peer }), namespace: policy.namespace };
  }

  /** The pods of the namespaces the peer looks in. */
  #candidates(policy: Policy, peer: PodsPeer | undefined): Iterable<readonly PodInfo[]> {
    const { snapshot, pods, podsByNamespace } = this.#source;
    if (!peer) return [[...pods.values()]];
    const selector = peer.namespaceSelector;
    if (!selector) return [podsByNamespace.get(policy.namespace) ?? []];
    const lists: (readonly PodInfo[])[] = [];
    for (const [ns, list] of podsByNamespace) {
      if (selector.everything || selector.matches(namespaceLabels(snapshot, ns))) lists.push(list);
    }
    return lists;
  }
}

function sameNamedPorts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** Whether two pods are the same member of a set on `networks`: key, named ports and addresses there. */
export function sameMember(networks: readonly string[], a: PodInfo, b: PodInfo): boolean {
  if (a === b) return true;
  if (a.key !== b.key || !sameNamedPorts(a.namedPorts, b.namedPorts)) return false;
  return networks.every((n) => {
    const x = a.attachments.get(n)?.ranges;
    const y = b.attachments.get(n)?.ranges;
    return x === y || (x !== undefined && y !== undefined && sameList(x, y, sameAddrRange));
  });
}

/** `previous` when `next` holds the same pods (keys, named ports) and addresses, else `next`. */
function samePeerPods(previous: PeerPods | undefined, next: PeerPods): PeerPods {
  if (!previous || previous.networks.join(",") !== next.networks.join(",")) return next;
  if (!sameList(previous.pods, next.pods, (a, b) => sameMember(next.networks, a, b))) return next;
  return sameList(previous.ranges, next.ranges, sameAddrRange) ? previous : next;
}

/** The pod that changed, by key, and what the caller knows of it in the set before the change: whether it was a member, and as which object. */
export interface ChangedPod {
  readonly key: string;
  /** Absent: unknown (the members are scanned for the key). */
  readonly member?: boolean;
  readonly pod?: PodInfo | undefined;
}

/** The pod's place in the set; without a scan when it is known not to be there, or by its object. */
function memberIndex(set: PeerPods, changed: ChangedPod): number {
  if (changed.member === false) return -1;
  // A set untouched by earlier changes of the pod may hold an older object of it: then by key.
  const found = changed.pod ? set.pods.indexOf(changed.pod) : -1;
  return found >= 0 ? found : set.pods.findIndex((p) => p.key === changed.key);
}

/**
 * The peer set after one pod changed: `after` (absent: the pod is gone) replaces the pod with key
 * `changed.key`, when it belongs to the set under the next snapshot (`nsLabels`: its namespace's
 * labels there). Equal content to what `PeerSets` computes (pod order aside, which nothing reads but
 * `samePeerPods`); the same object when nothing changed, else a new id from `ids`. O(peers), no
 * selector evaluation but for the one pod. Valid only when the namespaces and NADs are unchanged.
 */
export function patchPeerPods(set: PeerPods, changed: ChangedPod, after: PodInfo | undefined, nsLabels: Labels, ids: IdSource): PeerPods {
  const index = memberIndex(set, changed);
  const own = after && peerSelects(set.peer, set.namespace, after, nsLabels) ? eligibleRanges(set.networks, after) : undefined;
  if (index < 0 && !own) return set;
  const old = index >= 0 ? set.pods[index]! : undefined;
  if (old && own && after && sameMember(set.networks, old, after)) return set;
  const pods = set.pods.slice();
  if (old) {
    if (own) pods[index] = after!;
    else pods.splice(index, 1);
  } else pods.push(after!);
  const gone = old ? eligibleRanges(set.networks, old) : undefined;
  const { ranges, removed, added } = patchRanges(set, gone && addressesLeft(set.networks, gone, pods, own ? after : undefined), own);
  return { ...set, pods, ranges, id: ids.take(), patch: { from: set.id, removed, added } };
}

/**
 * The set's addresses without `gone` and with `own`. set.ranges is sorted and without duplicates
 * (sortedHosts): patched by binary search, not re-sorted. A range both gone and back (the old pod's
 * address kept by the new one) is in neither `removed` nor `added`.
 */
function patchRanges(set: PeerPods, gone: readonly AddrRange[] | undefined, own: readonly AddrRange[] | undefined): { ranges: AddrRange[]; removed: AddrRange[]; added: AddrRange[] } {
  const ranges: AddrRange[] = [...set.ranges];
  const removed: AddrRange[] = [];
  const added: AddrRange[] = [];
  for (const r of gone ?? []) if (editSorted(ranges, r, cmpAddrRange, false)) removed.push(r);
  for (const r of own ?? []) if (editSorted(ranges, r, cmpAddrRange, true)) added.push(r);
  return {
    ranges,
    removed: removed.filter((r) => !added.some((x) => sameAddrRange(x, r))),
    added: added.filter((r) => !removed.some((x) => sameAddrRange(x, r))),
  };
}

/** The addresses of a member that left (`ranges`, once each) that no other member of `pods` (`replacement` aside) still has. */
function addressesLeft(networks: readonly string[], ranges: readonly AddrRange[], pods: readonly PodInfo[], replacement: PodInfo | undefined): AddrRange[] {
  let gone = ranges.filter((r, i) => ranges.findIndex((x) => sameAddrRange(x, r)) === i);
  for (const p of pods) {
    if (gone.length === 0) break;
    if (p === replacement) continue;
    const theirs = eligibleRanges(networks, p);
    if (theirs) gone = gone.filter((r) => !theirs.some((x) => sameAddrRange(x, r)));
  }
  return gone;
}
