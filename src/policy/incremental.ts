// The incremental path: the events between two snapshots, the pods whose desired state they may
// change, and the recompile that rebuilds only those, carrying the model, its peer sets (patched
// where one pod changed) and the built sets forward, each changed pod with the smallest transaction
// that gets its table there (element adds and deletes; a chain flushed and rebuilt, or the table
// replaced, only when the static part changed).
import type { Problem } from "../api/errors.js";
import { ANNOTATION_POLICY_FOR, annotationsOf } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import type { Config } from "../config/config.js";
import type { Op } from "../nft/transaction.js";
import type { Compiled } from "./compiler.js";
import { type DesiredState, onNode, sameState, stateFor } from "./desired-state.js";
import { type PolicyModel, buildModel } from "./model.js";
import { type OverlayMap, overlay } from "./overlay-map.js";
import { IdSource, type PeerPods, type SetIndex, eligibleRanges, namespaceLabels, patchPeerPods, peerSelects, sameMember, setIndex } from "./peer-sets.js";
import { parsePolicyFor } from "./policy.js";
import { type PodInfo, podInfo } from "./pods.js";
import type { Labels } from "./selector.js";
import { DirectionDiffCache, transitionOps } from "./transition.js";

/** Something that changed between two snapshots; keys are `ns/name` (namespaces: their name). */
export type PolicyEvent =
  | { readonly kind: "pod"; readonly key: string }
  | { readonly kind: "namespace"; readonly name: string }
  | { readonly kind: "policy"; readonly key: string }
  | { readonly kind: "nad"; readonly key: string };

export interface PodChange {
  readonly pod: string;
  readonly before?: DesiredState;
  /** Absent: the pod needs no table any more (deleted, moved, or no managed interface left). */
  readonly after?: DesiredState;
  /** The transaction for the pod's netns (empty `after`: the table is removed). */
  readonly ops: readonly Op[];
}

export interface Recompiled {
  readonly compiled: Compiled;
  /** Exactly the pods whose desired state changed. */
  readonly affected: ReadonlySet<string>;
  readonly changes: ReadonlyMap<string, PodChange>;
}

/**
 * Each snapshot object's JSON text, computed once in its life (snapshots are immutable): a reload
 * that produces new objects compares each once, not every object of both snapshots on every diff.
 * One per line of recompiles (`Compiled.texts`); an entry goes with its object.
 */
export class ObjectTexts {
  readonly #texts = new WeakMap<object, string>();

  of(o: object): string {
    let text = this.#texts.get(o);
    if (text === undefined) this.#texts.set(o, (text = JSON.stringify(o)));
    return text;
  }
}

type Versioned = { readonly metadata?: { readonly uid?: string; readonly resourceVersion?: string } };

/** Whether two objects under one key are the same: identity, then the API server's uid + resourceVersion, then content. */
function sameObject(a: unknown, b: unknown, texts: ObjectTexts): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  const ma = (a as Versioned).metadata;
  const mb = (b as Versioned).metadata;
  if (ma?.resourceVersion && mb?.resourceVersion && ma.uid === mb.uid) return ma.resourceVersion === mb.resourceVersion;
  return texts.of(a) === texts.of(b);
}

/** The events that turn `before` into `after`, found by object identity, then resourceVersion, then content. */
export function diffSnapshots(before: Snapshot, after: Snapshot, texts: ObjectTexts = new ObjectTexts()): PolicyEvent[] {
  const events: PolicyEvent[] = [];
  const changed = <T>(a: ReadonlyMap<string, T>, b: ReadonlyMap<string, T>): string[] => {
    if (a === b) return [];
    const keys: string[] = [];
    // Both maps walked side by side while their keys come in the same order (a source rebuilding
    // its maps keeps their order): no lookup per key; by lookup from the first key out of place.
    const olds = a.entries();
    let aligned = true;
    let found = 0;
    for (const [k, v] of b) {
      if (aligned) {
        const next = olds.next();
        if (!next.done && next.value[0] === k) {
          found++;
          if (!sameObject(next.value[1], v, texts)) keys.push(k);
          continue;
        }
        aligned = false;
      }
      const old = a.get(k);
      if (old !== undefined) found++;
      if (old === undefined || !sameObject(old, v, texts)) keys.push(k);
    }
    // Keys of `a` not in `b`: looked for only when some are.
    if (found !== a.size) for (const k of a.keys()) if (!b.has(k)) keys.push(k);
    return keys;
  };
  for (const key of changed(before.pods, after.pods)) events.push({ kind: "pod", key });
  for (const name of changed(before.namespaces, after.namespaces)) events.push({ kind: "namespace", name });
  for (const key of changed(before.policies, after.policies)) events.push({ kind: "policy", key });
  for (const key of changed(before.nads, after.nads)) events.push({ kind: "nad", key });
  return events;
}

/**
 * The peer sets a pod event may touch, from the index of the model's policies (`setIndex`): those
 * that look in the pod's namespace (before or after) or in any namespace; for a pod that changed in
 * nothing but some labels (`relabelled`), only those whose pod selector reads one of them.
 */
function touchedSets(index: SetIndex, pods: readonly (PodInfo | undefined)[], relabelled: ReadonlySet<string> | undefined): Set<string> {
  const out = new Set<string>();
  const add = (keys: readonly string[]): void => {
    for (const key of keys) if (!relabelled || index.sets.get(key)!.labelKeys.some((k) => relabelled.has(k))) out.add(key);
  };
  for (const pod of pods) if (pod) add(index.byNamespace.get(pod.namespace) ?? []);
  add(index.anyNamespace);
  return out;
}

/** The pods of a pod event in both snapshots, with their namespace's labels there, and the label keys that changed when only labels did. */
interface PodEvent {
  readonly key: string;
  readonly pods: readonly (PodInfo | undefined)[];
  readonly nsLabels: readonly Labels[];
  readonly relabelled: ReadonlySet<string> | undefined;
}

function podEvent(snapshots: readonly Snapshot[], key: string, patchable: boolean): PodEvent {
  const pods = snapshots.map((s) => {
    const raw = s.pods.get(key);
    return raw ? podInfo(raw) : undefined;
  });
  const nsLabels = pods.map((pod, i) => (pod ? namespaceLabels(snapshots[i]!, pod.namespace) : {}));
  return { key, pods, nsLabels, relabelled: patchable ? changedLabels(pods[0], pods[1]) : undefined };
}

/**
 * Candidates after pod events only, from the peer sets (`reused`, see `reusablePeers`): the changed
 * pods, and the pods selected by a policy reading a set that changed (patched: it held or now holds
 * a changed pod), or a set the previous model never computed that a changed pod may be in. Only the
 * sets a changed pod may touch are looked at (`touchedSets`), not every set of the model.
 */
function podEventCandidates(prev: PolicyModel, next: PolicyModel, events: readonly PolicyEvent[], reused: ReadonlyMap<string, PeerPods>, out: Set<string>, addSelected: (policyKey: string) => void): void {
  const before = prev.peerSets();
  const index = setIndex(next.policies);
  const snapshots = [prev.snapshot, next.snapshot];
  for (const event of events) {
    if (event.kind !== "pod") continue;
    out.add(event.key);
    const { pods, nsLabels, relabelled } = podEvent(snapshots, event.key, true);
    for (const key of touchedSets(index, pods, relabelled)) {
      const set = before.get(key);
      if (set !== undefined && reused.get(key) === set) continue;
      for (const { policy, peer } of index.sets.get(key)!.readers) {
        if (set !== undefined || pods.some((pod, i) => pod !== undefined && peerSelects(peer, policy.namespace, pod, nsLabels[i]!))) addSelected(policy.key);
      }
    }
  }
}

/** Pods whose desired state may change with `events`: a superset of the affected pods, never the whole cluster for one pod. */
function candidates(prev: PolicyModel, next: PolicyModel, events: readonly PolicyEvent[], reused?: ReadonlyMap<string, PeerPods>): Set<string> {
  const out = new Set<string>();
  const models = [prev, next];
  const addSelected = (policyKey: string): void => {
    for (const m of models) for (const k of m.selectedPods(policyKey)) out.add(k);
  };
  // With `reused` (pod events only, see `reusablePeers`): a policy's peer that the changed pod
  // matches changes nothing when its set is the very object of the previous model.
  if (reused) {
    podEventCandidates(prev, next, events, reused, out, addSelected);
    return out;
  }
  for (const event of events) {
    if (event.kind === "policy") addSelected(event.key);
    else if (event.kind === "pod") podCandidates(models, event.key, out, addSelected);
    else if (event.kind === "namespace") namespaceCandidates(models, event.name, addSelected);
    else nadCandidates(models, event.key, out, addSelected);
  }
  return out;
}

/** A pod changed: itself, and the pods of every policy with a peer that selects it (before or after). */
function podCandidates(models: readonly PolicyModel[], key: string, out: Set<string>, addSelected: (policyKey: string) => void): void {
  out.add(key);
  for (const m of models) {
    const pod = m.pods.get(key);
    if (!pod) continue;
    for (const policy of m.policies.values()) {
      if (policy.egressNamedToAll || policy.podPeers.some((peer) => peerSelects(peer, policy.namespace, pod, namespaceLabels(m.snapshot, pod.namespace)))) addSelected(policy.key);
    }
  }
}

/** A namespace changed: the pods of every policy with a peer whose namespace selector matches its labels (before or after). */
function namespaceCandidates(models: readonly PolicyModel[], name: string, addSelected: (policyKey: string) => void): void {
  for (const m of models) {
    const labels = m.snapshot.namespaces.get(name)?.metadata.labels;
    if (!labels) continue;
    for (const policy of m.policies.values()) {
      if (policy.podPeers.some((peer) => peer.namespaceSelector?.matches(labels))) addSelected(policy.key);
    }
  }
}

/** A NAD changed: the pods attached to it, and the pods of every policy for it (before or after). */
function nadCandidates(models: readonly PolicyModel[], key: string, out: Set<string>, addSelected: (policyKey: string) => void): void {
  for (const m of models) {
    for (const pod of m.pods.values()) if (pod.attachments.has(key)) out.add(pod.key);
    for (const raw of m.snapshot.policies.values()) {
      const ns = raw.metadata.namespace ?? "default";
      if (parsePolicyFor(annotationsOf(raw.metadata)[ANNOTATION_POLICY_FOR], ns).includes(key)) addSelected(`${ns}/${raw.metadata.name ?? ""}`);
    }
  }
}

/**
 * The label keys whose values differ when a pod changed in nothing but its labels (same namespace,
 * eligibility, addresses on every network and named ports); undefined when anything else changed.
 */
function changedLabels(before: PodInfo | undefined, after: PodInfo | undefined): Set<string> | undefined {
  if (!before || !after || before.namespace !== after.namespace || before.peerEligible !== after.peerEligible) return undefined;
  if (before.attachments.size !== after.attachments.size || !sameMember([...before.attachments.keys()], before, after)) return undefined;
  const keys = new Set<string>();
  for (const k of Object.keys(before.labels)) if (before.labels[k] !== after.labels[k] || !Object.hasOwn(after.labels, k)) keys.add(k);
  for (const k of Object.keys(after.labels)) if (!Object.hasOwn(before.labels, k)) keys.add(k);
  return keys;
}

/**
 * Peer sets of the previous model that the events leave valid, the next model starts from them: a
 * set a pod event touches is patched with that pod (see `patchPeerPods`); one a namespace or NAD
 * event may touch is dropped (recomputed in full). A pod event looks only at the sets it may touch
 * (`touchedSets`): the previous model's sets are all read by its policies (see `buildModel`).
 */
function reusablePeers(prev: PolicyModel, snapshot: Snapshot, events: readonly PolicyEvent[], ids: IdSource): OverlayMap<string, PeerPods> {
  const out = overlay(prev.peerSets());
  const snapshots = [prev.snapshot, snapshot];
  // Pod events are patched only when no namespace or NAD changed (membership then depends on the pod alone).
  const patchable = events.every((e) => e.kind === "pod" || e.kind === "policy");
  const index = setIndex(prev.policies);
  for (const event of events) {
    if (event.kind === "policy") continue;
    if (event.kind === "pod") {
      const { pods, nsLabels, relabelled } = podEvent(snapshots, event.key, patchable);
      // Only labels changed: a set whose selectors read none of them keeps its members, and they are the same.
      for (const key of touchedSets(index, pods, relabelled)) {
        const set = out.get(key);
        if (set === undefined) continue;
        const selects = pods.map((pod, i) => pod !== undefined && peerSelects(set.peer, set.namespace, pod, nsLabels[i]!));
        if (!selects.includes(true)) continue;
        if (!patchable) out.delete(key);
        else {
          // The set holds the previous snapshot's members (each pod key is patched once: events are unique).
          const member = selects[0]! && eligibleRanges(set.networks, pods[0]!) !== undefined;
          const patched = patchPeerPods(set, { key: event.key, member, pod: pods[0] }, pods[1], nsLabels[1]!, ids);
          if (patched !== set) out.set(key, patched);
        }
      }
      continue;
    }
    for (const [key, set] of out) {
      const stale =
        event.kind === "namespace"
          ? set.peer === undefined ||
            snapshots.some((s) => {
              const labels = s.namespaces.get(event.name)?.metadata.labels;
              return labels != null && set.peer!.namespaceSelector !== undefined && set.peer!.namespaceSelector.matches(labels ?? {});
            })
          : set.networks.includes(event.key);
      if (stale) out.delete(key);
    }
  }
  return out;
}

/** The events without repeats (a watch may deliver several for one object between two snapshots). */
function uniqueEvents(events: readonly PolicyEvent[]): readonly PolicyEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => {
    const id = `${e.kind}\u0000${e.kind === "namespace" ? e.name : e.key}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * Recompiles after `events` (or, when absent, the events `diffSnapshots` finds). Only candidate
 * pods are recompiled; the result's `affected` holds exactly those whose desired state changed.
 */
export function recompile(previous: Compiled, snapshot: Snapshot, config: Config, events?: readonly PolicyEvent[]): Recompiled {
  const options = previous.options;
  const list = events ? uniqueEvents(events) : diffSnapshots(previous.snapshot, snapshot, previous.texts);
  const changedPods = list.flatMap((e) => (e.kind === "pod" ? [e.key] : []));
  // The next generation's ids: patched peer sets take theirs first, then the model its new ones.
  const ids = new IdSource(previous.model.generation + 1);
  const reused = reusablePeers(previous.model, snapshot, list, ids);
  // Without NAD events, only the policies named by events are read again.
  const changedPolicies = list.some((e) => e.kind === "nad") ? undefined : list.flatMap((e) => (e.kind === "policy" ? [e.key] : []));
  const policiesUnchanged = changedPolicies?.length === 0;
  const model = buildModel(snapshot, config, { ...options, previousModel: { model: previous.model, changedPods, reusePeers: reused, ids, policiesUnchanged, ...(changedPolicies && { changedPolicies }) } });
  const cache = overlay(previous.setsCache);
  const states = overlay(previous.states);
  const changes = new Map<string, PodChange>();
  const diffCache = new DirectionDiffCache();
  const podsOnly = list.every((e) => e.kind === "pod");
  for (const key of candidates(previous.model, model, list, podsOnly ? reused : undefined)) {
    // The model's index holds the pod as read from this snapshot (or, unchanged, from an earlier one).
    const pod = model.pods.get(key);
    const after = pod && onNode(pod, options.node) ? stateFor(model, key, cache) : undefined;
    const before = previous.states.get(key);
    if (sameState(before, after)) continue;
    if (after) states.set(key, after);
    else states.delete(key);
    const ops = transitionOps(before, after, options, options, diffCache);
    changes.set(key, before && after ? { pod: key, before, after, ops } : before ? { pod: key, before, ops } : { pod: key, after: after!, ops });
  }
  let problems: readonly Problem[] | undefined;
  return {
    compiled: {
      snapshot,
      options,
      model,
      states,
      // Read by few callers (render, the conformance suite), not by the enforcer: listed on first read, not per recompile.
      get problems() {
        return (problems ??= model.problems());
      },
      setsCache: cache,
      texts: previous.texts,
    },
    affected: new Set(changes.keys()),
    changes,
  };
}
