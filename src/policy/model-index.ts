// The lookups a policy model is built on: its policies read and listed by network and namespace, its
// pods read and listed by namespace. Built from a snapshot, or carried forward from the model of an
// earlier one with only the changed pods replaced.
import type { Snapshot } from "../api/snapshot.js";
import { overlay } from "./overlay-map.js";
import { type Policy, readPolicy } from "./policy.js";
import { type PodInfo, podInfo } from "./pods.js";

export interface ModelIndex {
  /** Policies as read, by key. */
  readonly policies: ReadonlyMap<string, Policy>;
  /** Policies by `policyListKey`: the ones that may apply to a pod of that namespace on that network. */
  readonly policiesByNetworkNamespace: ReadonlyMap<string, readonly Policy[]>;
  readonly pods: ReadonlyMap<string, PodInfo>;
  readonly podsByNamespace: ReadonlyMap<string, readonly PodInfo[]>;
}

/** The key of `ModelIndex.policiesByNetworkNamespace`. */
export function policyListKey(network: string, namespace: string): string {
  return `${network}\u0000${namespace}`;
}

/** The index of `snapshot`; with `previous` (the index of an earlier snapshot, the pods changed since and whether policies and NADs did), carried forward from it. */
export function modelIndex(
  snapshot: Snapshot,
  previous?: {
    readonly snapshot: Snapshot;
    readonly index: ModelIndex;
    readonly changedPods: readonly string[];
    readonly policiesUnchanged?: boolean;
    /** The policies changed since (no NAD did): the others are carried as read. */
    readonly changedPolicies?: readonly string[];
  },
): ModelIndex {
  // Unchanged: the same maps, or (`policiesUnchanged`) new maps that the events say hold the same objects.
  const samePolicies = previous && (previous.policiesUnchanged || (previous.snapshot.policies === snapshot.policies && previous.snapshot.nads === snapshot.nads));
  const { policies, policiesByNetworkNamespace } = samePolicies ? previous.index : indexPolicies(snapshot, previous?.changedPolicies && { index: previous.index, changed: new Set(previous.changedPolicies) });
  const { pods, podsByNamespace } = previous ? carryPods(previous.index, snapshot, previous.changedPods) : indexPods(snapshot);
  return { policies, policiesByNetworkNamespace, pods, podsByNamespace };
}

/** `carry`: an earlier index whose policies are taken as read but for the `changed` keys (valid while no NAD changed). */
function indexPolicies(snapshot: Snapshot, carry?: { readonly index: ModelIndex; readonly changed: ReadonlySet<string> }): Pick<ModelIndex, "policies" | "policiesByNetworkNamespace"> {
  const policies = new Map<string, Policy>();
  const byNetworkNamespace = new Map<string, Policy[]>();
  for (const [key, raw] of snapshot.policies) {
    const carried = carry && !carry.changed.has(key) ? carry.index.policies.get(key) : undefined;
    const policy = carried ?? readPolicy(raw, snapshot);
    policies.set(policy.key, policy);
    for (const nad of policy.networks) {
      const key = policyListKey(nad, policy.namespace);
      const list = byNetworkNamespace.get(key);
      if (list) list.push(policy);
      else byNetworkNamespace.set(key, [policy]);
    }
  }
  return { policies, policiesByNetworkNamespace: byNetworkNamespace };
}

function indexPods(snapshot: Snapshot): Pick<ModelIndex, "pods" | "podsByNamespace"> {
  const pods = new Map<string, PodInfo>();
  const byNamespace = new Map<string, PodInfo[]>();
  for (const raw of snapshot.pods.values()) {
    const info = podInfo(raw);
    pods.set(info.key, info);
    const list = byNamespace.get(info.namespace);
    if (list) list.push(info);
    else byNamespace.set(info.namespace, [info]);
  }
  return { pods, podsByNamespace: byNamespace };
}

/** The pods of `base` carried forward: an overlay of its pods and a copy of its namespace lists, the changed pods replaced (other lists shared, never mutated). */
function carryPods(base: ModelIndex, snapshot: Snapshot, changedPods: readonly string[]): Pick<ModelIndex, "pods" | "podsByNamespace"> {
  const pods = overlay(base.pods);
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
  return { pods, podsByNamespace: byNamespace };
}
