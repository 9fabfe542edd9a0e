// The compiler: snapshot → desired nft state per pod (pure), and the incremental path: given the
// events between two snapshots, only the pods whose desired state changed, each with the smallest
// transaction that gets its table there (element adds/deletes; a chain flushed and rebuilt, or the
// table replaced, only when the static part changed).
import type { Problem } from "../api/errors.js";
import { ANNOTATION_POLICY_FOR, annotationsOf } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import type { Config } from "../config/config.js";
import { type Element, NADGUARD_TABLE, quoted } from "../nft/objects.js";
import { freshTableOps, type TableState } from "../nft/state.js";
import { type Op, Transaction } from "../nft/transaction.js";
import { type DirectionModel, type ModelOptions, type PolicyModel, buildModel } from "./model.js";
import { IdSource, type PeerPods, patchPeerPods } from "./peer-sets.js";
import { type Policy, type PodsPeer, parsePolicyFor } from "./policy.js";
import { type PodInfo, podInfo } from "./pods.js";
import { ALL_PORTS, type AddrRange, type Box, type PortRange, disjointBoxes, fullRange, mergeAddrRanges } from "./ranges.js";
import {
  DirectionDiffCache,
  type DirectionPatch,
  type DirectionSets,
  EMPTY_FAMILY_SETS,
  type FamilySets,
  type HostPort,
  type HostProto,
  type InterfaceState,
  type RulesetOptions,
  directionDiff,
  staticObjects,
  tableFor,
} from "./ruleset.js";

export interface CompileOptions extends ModelOptions, RulesetOptions {
  /** Only pods with this spec.nodeName; absent: every pod. */
  readonly node?: string;
}

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

const NOT_ISOLATED: DirectionSets = { isolated: false, v4: EMPTY_FAMILY_SETS, v6: EMPTY_FAMILY_SETS, fingerprint: "-" };

const cmpBig = (x: bigint, y: bigint): number => (x < y ? -1 : x > y ? 1 : 0);

/** Collects one family's allows, then sorts them into the hash and interval sets (ruleset.ts says which goes where). */
class FamilyCollector {
  // Keyed by the address (bigints are Map keys by value), then protocol and port: no address is formatted.
  readonly #hosts = new Map<bigint, Map<string, HostPort>>();
  readonly #hostsProto = new Map<bigint, Map<string, HostProto>>();
  readonly #hostsAll = new Set<bigint>();
  readonly #boxes: Box[] = [];
  readonly #ranges: AddrRange[] = [];

  add(r: AddrRange, ports: "any" | readonly PortRange[]): void {
    const host = r.from === r.to;
    if (ports === "any") {
      if (host) this.#hostsAll.add(r.from);
      else this.#ranges.push(r);
      return;
    }
    for (const port of ports) {
      if (!host) this.#boxes.push({ addr: r, port });
      else if (port.from === port.to) {
        let byPort = this.#hosts.get(r.from);
        if (!byPort) this.#hosts.set(r.from, (byPort = new Map()));
        byPort.set(`${port.protocol} ${port.from}`, { addr: r.from, protocol: port.protocol, port: port.from });
      } else if (port.from === ALL_PORTS.from && port.to === ALL_PORTS.to) {
        let byProto = this.#hostsProto.get(r.from);
        if (!byProto) this.#hostsProto.set(r.from, (byProto = new Map()));
        byProto.set(port.protocol, { addr: r.from, protocol: port.protocol });
      } else this.#boxes.push({ addr: r, port });
    }
  }

  sets(): FamilySets {
    const hosts: HostPort[] = [];
    for (const byPort of this.#hosts.values()) for (const h of byPort.values()) hosts.push(h);
    hosts.sort((x, y) => cmpBig(x.addr, y.addr) || x.protocol.localeCompare(y.protocol) || x.port - y.port);
    const hostsProto: HostProto[] = [];
    for (const byProto of this.#hostsProto.values()) for (const h of byProto.values()) hostsProto.push(h);
    hostsProto.sort((x, y) => cmpBig(x.addr, y.addr) || x.protocol.localeCompare(y.protocol));
    const hostsAll = [...this.#hostsAll].sort(cmpBig);
    return { hosts, hostsProto, hostsAll, boxes: disjointBoxes(this.#boxes), ranges: mergeAddrRanges(this.#ranges) };
  }
}

// Hex, not formatted addresses: computed once per distinct allow list, but those can be many.
function familyFingerprint(f: FamilySets): string {
  const range = (r: AddrRange): string => `${r.from.toString(16)}-${r.to.toString(16)}`;
  return [
    f.hosts.map((h) => `${h.addr.toString(16)}.${h.protocol}.${h.port}`).join(","),
    f.hostsProto.map((h) => `${h.addr.toString(16)}.${h.protocol}`).join(","),
    f.hostsAll.map((a) => a.toString(16)).join(","),
    f.boxes.map((b) => `${range(b.addr)}.${b.port.protocol}.${b.port.from}-${b.port.to}`).join(","),
    f.ranges.map(range).join(","),
  ].join("/");
}

/** Sorts a direction's allows into set elements; cached by the allows' signatures. */
function directionSets(model: DirectionModel, cache: Map<string, DirectionSets>): DirectionSets {
  if (!model.isolated) return NOT_ISOLATED;
  const signature = model.allows.map((a) => a.signature).sort().join("\n");
  const cached = cache.get(signature);
  if (cached) return cached;
  const patched = patchedSets(model, cache);
  if (patched) {
    cache.set(signature, patched);
    return patched;
  }
  const collect = { 4: new FamilyCollector(), 6: new FamilyCollector() };
  for (const a of model.allows) {
    const ranges = a.addresses === "any" ? [fullRange(4), fullRange(6)] : a.addresses;
    for (const r of ranges) collect[r.family].add(r, a.ports);
  }
  const sets = isolatedSets(collect[4].sets(), collect[6].sets());
  cache.set(signature, sets);
  return sets;
}

/** Isolated sets; the fingerprint (long: every element) is built on first read. */
function isolatedSets(v4: FamilySets, v6: FamilySets, patch?: DirectionPatch): DirectionSets {
  let fingerprint: string | undefined;
  return {
    isolated: true,
    v4,
    v6,
    ...(patch && { patch }),
    get fingerprint(): string {
      return (fingerprint ??= `${familyFingerprint(v4)}|${familyFingerprint(v6)}`);
    },
  };
}

const cmpHostPort = (x: HostPort, y: HostPort): number => cmpBig(x.addr, y.addr) || (x.protocol === y.protocol ? 0 : x.protocol.localeCompare(y.protocol)) || x.port - y.port;
const cmpHostProto = (x: HostProto, y: HostProto): number => cmpBig(x.addr, y.addr) || (x.protocol === y.protocol ? 0 : x.protocol.localeCompare(y.protocol));
const cmpRange = (x: AddrRange, y: AddrRange): number => x.family - y.family || cmpBig(x.from, y.from) || cmpBig(x.to, y.to);

/** Index of `item` in the sorted `list`, or -(insertion point) - 1. */
function search<T>(list: readonly T[], item: T, cmp: (x: T, y: T) => number): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = cmp(list[mid]!, item);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

type HostElement = { kind: "port"; value: HostPort } | { kind: "proto"; value: HostProto } | { kind: "all"; value: bigint };

/** The hash-set elements a host gets from an allow's ports; undefined when some go to an interval set. */
function hostElements(addr: bigint, ports: "any" | readonly PortRange[]): HostElement[] | undefined {
  if (ports === "any") return [{ kind: "all", value: addr }];
  const out: HostElement[] = [];
  for (const port of ports) {
    if (port.from === port.to) out.push({ kind: "port", value: { addr, protocol: port.protocol, port: port.from } });
    else if (port.from === ALL_PORTS.from && port.to === ALL_PORTS.to) out.push({ kind: "proto", value: { addr, protocol: port.protocol } });
    else return undefined;
  }
  return out;
}

const sameElement = (x: HostElement, y: HostElement): boolean =>
  x.kind === y.kind && (x.kind === "all" ? x.value === y.value : x.kind === "port" ? cmpHostPort(x.value, y.value as HostPort) === 0 : cmpHostProto(x.value, y.value as HostProto) === 0);

/**
 * The sets of allows that differ from ones already in `cache` only by patched peer sets
 * (`PeerPods.patch`), from those sets plus and minus the hosts that came and went: O(changed hosts ×
 * allows × log), not O(elements). Undefined when there is no such basis or the change is not one of
 * host elements only (the caller then builds the sets in full).
 */
function patchedSets(model: DirectionModel, cache: Map<string, DirectionSets>): DirectionSets | undefined {
  const patched = model.allows.filter((a) => a.source?.patch);
  if (patched.length === 0) return undefined;
  const oldSignatures: string[] = [];
  for (const a of model.allows) {
    const patch = a.source?.patch;
    if (!patch) {
      oldSignatures.push(a.signature);
      continue;
    }
    const prefix = `p${a.source!.id}|`;
    if (!a.signature.startsWith(prefix)) return undefined;
    oldSignatures.push(`p${patch.from}|${a.signature.slice(prefix.length)}`);
  }
  const base = cache.get(oldSignatures.sort().join("\n"));
  if (!base?.isolated) return undefined;
  const gone: { family: 4 | 6; element: HostElement }[] = [];
  const come: { family: 4 | 6; element: HostElement }[] = [];
  for (const a of patched) {
    const { removed, added } = a.source!.patch!;
    for (const [list, out] of [[removed, gone], [added, come]] as const) {
      for (const r of list) {
        if (r.from !== r.to) return undefined;
        const elements = hostElements(r.from, a.ports);
        if (!elements) return undefined;
        for (const element of elements) out.push({ family: r.family, element });
      }
    }
  }
  // A host element that went stays when another allow (or the same, with another port) still gives it.
  const stays = (family: 4 | 6, element: HostElement): boolean =>
    model.allows.some((a) => {
      if (a.addresses === "any") return false;
      const host: AddrRange = { family, from: element.value instanceof Object ? element.value.addr : element.value, to: element.value instanceof Object ? element.value.addr : element.value };
      const found = a.source ? search(a.addresses, host, cmpRange) >= 0 : a.addresses.some((r) => cmpRange(r, host) === 0);
      return found && (hostElements(host.from, a.ports) ?? []).some((e) => sameElement(e, element));
    });
  const families = { 4: { ...base.v4, hosts: [...base.v4.hosts], hostsProto: [...base.v4.hostsProto], hostsAll: [...base.v4.hostsAll] }, 6: { ...base.v6, hosts: [...base.v6.hosts], hostsProto: [...base.v6.hostsProto], hostsAll: [...base.v6.hostsAll] } };
  /** Whether the element was inserted or removed (false: already so). */
  const edit = (family: 4 | 6, element: HostElement, add: boolean): boolean => {
    const f = families[family];
    const apply = <T>(list: T[], item: T, cmp: (x: T, y: T) => number): boolean => {
      const i = search(list, item, cmp);
      if (add && i < 0) list.splice(-i - 1, 0, item);
      else if (!add && i >= 0) list.splice(i, 1);
      else return false;
      return true;
    };
    if (element.kind === "port") return apply(f.hosts, element.value, cmpHostPort);
    if (element.kind === "proto") return apply(f.hostsProto, element.value, cmpHostProto);
    return apply(f.hostsAll, element.value, cmpBig);
  };
  const deletes: { family: 4 | 6; element: HostElement }[] = [];
  const adds: { family: 4 | 6; element: HostElement }[] = [];
  for (const { family, element } of gone) if (!stays(family, element) && edit(family, element, false)) deletes.push({ family, element });
  for (const { family, element } of come) if (edit(family, element, true)) adds.push({ family, element });
  return isolatedSets(families[4], families[6], { from: new WeakRef(base), deletes, adds });
}

function stateFor(model: PolicyModel, podKey: string, cache: Map<string, DirectionSets>): DesiredState | undefined {
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

function sameList<T>(x: readonly T[], y: readonly T[], same: (a: T, b: T) => boolean): boolean {
  if (x === y) return true;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (!same(x[i]!, y[i]!)) return false;
  return true;
}

const sameRange = (a: AddrRange, b: AddrRange): boolean => a.family === b.family && a.from === b.from && a.to === b.to;

function sameFamily(x: FamilySets, y: FamilySets): boolean {
  return (
    x === y ||
    (sameList(x.hosts, y.hosts, (a, b) => cmpHostPort(a, b) === 0) &&
      sameList(x.hostsProto, y.hostsProto, (a, b) => cmpHostProto(a, b) === 0) &&
      sameList(x.hostsAll, y.hostsAll, (a, b) => a === b) &&
      sameList(x.boxes, y.boxes, (a, b) => sameRange(a.addr, b.addr) && a.port.protocol === b.port.protocol && a.port.from === b.port.from && a.port.to === b.port.to) &&
      sameList(x.ranges, y.ranges, sameRange))
  );
}

/** Equal fingerprints, compared element by element without building them. */
function sameSets(a: DirectionSets, b: DirectionSets): boolean {
  return a === b || (a.isolated === b.isolated && (!a.isolated || (sameFamily(a.v4, b.v4) && sameFamily(a.v6, b.v6))));
}

/** Whether two states have equal fingerprints, without building them: interface by interface, set by set. */
function sameState(a: DesiredState | undefined, b: DesiredState | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.interfaces.length !== b.interfaces.length) return false;
  return a.interfaces.every((x, i) => {
    const y = b.interfaces[i]!;
    return x.name === y.name && sameSets(x.ingress, y.ingress) && sameSets(x.egress, y.egress);
  });
}

function onNode(pod: PodInfo, node: string | undefined): boolean {
  return !pod.hostNetwork && (node === undefined || pod.node === node);
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

/** The table a desired state renders to. */
export function desiredTable(state: DesiredState | undefined, options: RulesetOptions = {}): TableState {
  return tableFor(state?.interfaces ?? [], options);
}

// ---- incremental ----

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
    for (const [k, v] of b) {
      const old = a.get(k);
      if (old === undefined || !sameObject(old, v, texts)) keys.push(k);
    }
    if (a.size + keys.length !== b.size) for (const k of a.keys()) if (!b.has(k)) keys.push(k);
    return keys;
  };
  for (const key of changed(before.pods, after.pods)) events.push({ kind: "pod", key });
  for (const name of changed(before.namespaces, after.namespaces)) events.push({ kind: "namespace", name });
  for (const key of changed(before.policies, after.policies)) events.push({ kind: "policy", key });
  for (const key of changed(before.nads, after.nads)) events.push({ kind: "nad", key });
  return events;
}

function peerMayMatch(peer: PodsPeer, policy: Policy, pod: PodInfo, nsLabels: Readonly<Record<string, string>>): boolean {
  if (peer.namespaceSelector ? !peer.namespaceSelector.matches(nsLabels) : pod.namespace !== policy.namespace) return false;
  return !peer.podSelector || peer.podSelector.matches(pod.labels);
}

/** Pods whose desired state may change with `events`: a superset of the affected pods, never the whole cluster for one pod. */
function candidates(prev: PolicyModel, next: PolicyModel, events: readonly PolicyEvent[], reused?: ReadonlyMap<string, PeerPods>): Set<string> {
  const out = new Set<string>();
  // With `reused` (pod events only, see `reusablePeers`): a policy's peer that the changed pod
  // matches changes nothing when its set is the very object of the previous model.
  const setChanged = (policy: Policy, peer: PodsPeer | undefined): boolean => {
    if (!reused) return true;
    const key = `${policy.networks.join(",")}\u0000${peer ? peer.key : "all"}`;
    const before = prev.peerSets().get(key);
    return before === undefined || reused.get(key) !== before;
  };
  const models = [prev, next];
  const addSelected = (policyKey: string): void => {
    for (const m of models) for (const k of m.selectedPods(policyKey)) out.add(k);
  };
  const nsLabelsIn = (m: PolicyModel, ns: string): Readonly<Record<string, string>> => m.snapshot.namespaces.get(ns)?.metadata.labels ?? {};
  for (const event of events) {
    switch (event.kind) {
      case "policy":
        addSelected(event.key);
        break;
      case "pod": {
        out.add(event.key);
        for (const m of models) {
          const pod = m.pods.get(event.key);
          if (!pod) continue;
          for (const policy of m.policies.values()) {
            if ((policy.egressNamedToAll && setChanged(policy, undefined)) || policy.podPeers.some((peer) => peerMayMatch(peer, policy, pod, nsLabelsIn(m, pod.namespace)) && setChanged(policy, peer))) addSelected(policy.key);
          }
        }
        break;
      }
      case "namespace":
        for (const m of models) {
          const labels = m.snapshot.namespaces.get(event.name)?.metadata.labels;
          if (!labels) continue;
          for (const policy of m.policies.values()) {
            if (policy.podPeers.some((peer) => peer.namespaceSelector?.matches(labels))) addSelected(policy.key);
          }
        }
        break;
      case "nad":
        for (const m of models) {
          for (const pod of m.pods.values()) if (pod.attachments.has(event.key)) out.add(pod.key);
          for (const raw of m.snapshot.policies.values()) {
            const ns = raw.metadata.namespace ?? "default";
            if (parsePolicyFor(annotationsOf(raw.metadata)[ANNOTATION_POLICY_FOR], ns).includes(event.key)) addSelected(`${ns}/${raw.metadata.name ?? ""}`);
          }
        }
        break;
    }
  }
  return out;
}

/**
 * Peer sets of the previous model that the events leave valid, the next model starts from them: a
 * set a pod event touches is patched with that pod (see `patchPeerPods`); one a namespace or NAD
 * event may touch is dropped (recomputed in full).
 */
function reusablePeers(prev: PolicyModel, snapshot: Snapshot, events: readonly PolicyEvent[], ids: IdSource): Map<string, PeerPods> {
  const out = new Map(prev.peerSets());
  const nsLabelsIn = (s: Snapshot, ns: string): Readonly<Record<string, string>> => s.namespaces.get(ns)?.metadata.labels ?? {};
  const podIn = (s: Snapshot, key: string): PodInfo | undefined => {
    const raw = s.pods.get(key);
    return raw ? podInfo(raw) : undefined;
  };
  const snapshots = [prev.snapshot, snapshot];
  // Pod events are patched only when no namespace or NAD changed (membership then depends on the pod alone).
  const patchable = events.every((e) => e.kind === "pod" || e.kind === "policy");
  for (const event of events) {
    if (event.kind === "policy") continue;
    const pods = event.kind === "pod" ? snapshots.map((s) => podIn(s, event.key)) : [];
    for (const [key, set] of out) {
      let stale = false;
      if (event.kind === "pod") {
        stale = snapshots.some((s, i) => {
          const pod = pods[i];
          if (!pod) return false;
          if (!set.peer) return true;
          const inNamespace = set.peer.namespaceSelector ? set.peer.namespaceSelector.matches(nsLabelsIn(s, pod.namespace)) : pod.namespace === set.namespace;
          return inNamespace && (!set.peer.podSelector || set.peer.podSelector.matches(pod.labels));
        });
        if (stale && patchable) {
          const after = pods[1];
          const patched = patchPeerPods(set, event.key, after, after ? nsLabelsIn(snapshot, after.namespace) : {}, ids);
          if (patched !== set) out.set(key, patched);
          continue;
        }
      } else if (event.kind === "namespace") {
        stale = set.peer === undefined || snapshots.some((s) => {
          const labels = s.namespaces.get(event.name)?.metadata.labels;
          return labels != null && set.peer!.namespaceSelector !== undefined && set.peer!.namespaceSelector.matches(labels ?? {});
        });
      } else if (event.kind === "nad") {
        stale = set.networks.includes(event.key);
      }
      if (stale) out.delete(key);
    }
  }
  return out;
}

/** The transaction that turns a netns holding `before` into `after`. */
export function transitionOps(
  before: DesiredState | undefined,
  after: DesiredState | undefined,
  options: RulesetOptions = {},
  beforeOptions: RulesetOptions = options,
  diffCache?: DirectionDiffCache,
): Op[] {
  if (after === undefined) return [{ verb: "add", object: { kind: "table" } }, { verb: "delete", object: { kind: "table" } }];
  if (before === undefined) return freshTableOps(desiredTable(after, options));
  const ops: Op[] = [];
  // The same options make the same static part: nothing to compare.
  const prevStatic = beforeOptions === options ? undefined : staticObjects(beforeOptions);
  const nextStatic = beforeOptions === options ? undefined : staticObjects(options);
  if (prevStatic && nextStatic && (JSON.stringify(prevStatic.sets) !== JSON.stringify(nextStatic.sets) || JSON.stringify(prevStatic.chains) !== JSON.stringify(nextStatic.chains))) return freshTableOps(desiredTable(after, options));
  for (const c of nextStatic && prevStatic ? nextStatic.chains : []) {
    const a = prevStatic!.rules.filter((r) => r.chain === c.name).map((r) => r.rule);
    const b = nextStatic!.rules.filter((r) => r.chain === c.name);
    if (a.join("\n") !== b.map((r) => r.rule).join("\n")) {
      ops.push({ verb: "flush", object: c });
      for (const r of b) ops.push({ verb: "add", object: r });
    }
  }
  const deletes: Element[] = [];
  const adds: Element[] = [];
  const names = [...new Set([...before.interfaces, ...after.interfaces].map((i) => i.name))];
  for (const name of names) {
    const a = before.interfaces.find((i) => i.name === name);
    const b = after.interfaces.find((i) => i.name === name);
    for (const direction of ["ingress", "egress"] as const) {
      const diff = directionDiff(direction, a?.[direction], b?.[direction], diffCache);
      const ifname = quoted(name);
      for (const make of diff.deletes) deletes.push(make(ifname));
      for (const make of diff.adds) adds.push(make(ifname));
    }
  }
  // Deletes first, so that a new element never overlaps one on its way out (interval sets refuse overlaps).
  const bySet = (x: Element, y: Element): number => (x.set < y.set ? -1 : x.set > y.set ? 1 : 0);
  return [
    ...deletes.sort(bySet).map((object): Op => ({ verb: "delete", object })),
    ...ops,
    ...adds.sort(bySet).map((object): Op => ({ verb: "add", object })),
  ];
}

/**
 * Recompiles after `events` (or, when absent, the events `diffSnapshots` finds). Only candidate
 * pods are recompiled; the result's `affected` holds exactly those whose desired state changed.
 */
export function recompile(previous: Compiled, snapshot: Snapshot, config: Config, events?: readonly PolicyEvent[]): Recompiled {
  const options = previous.options;
  const list = events ?? diffSnapshots(previous.snapshot, snapshot, previous.texts);
  const changedPods = list.flatMap((e) => (e.kind === "pod" ? [e.key] : []));
  // The next generation's ids: patched peer sets take theirs first, then the model its new ones.
  const ids = new IdSource(previous.model.generation + 1);
  const reused = reusablePeers(previous.model, snapshot, list, ids);
  const model = buildModel(snapshot, config, { ...options, previousModel: { model: previous.model, changedPods, reusePeers: reused, ids } });
  const cache = new Map(previous.setsCache);
  const states = new Map(previous.states);
  const changes = new Map<string, PodChange>();
  const diffCache = new DirectionDiffCache();
  const podsOnly = list.every((e) => e.kind === "pod");
  for (const key of candidates(previous.model, model, list, podsOnly ? reused : undefined)) {
    const raw = snapshot.pods.get(key);
    const pod = raw ? podInfo(raw) : undefined;
    const after = pod && onNode(pod, options.node) ? stateFor(model, key, cache) : undefined;
    const before = previous.states.get(key);
    if (sameState(before, after)) continue;
    if (after) states.set(key, after);
    else states.delete(key);
    changes.set(key, { pod: key, ...(before && { before }), ...(after && { after }), ops: transitionOps(before, after, options, options, diffCache) });
  }
  return {
    compiled: { snapshot, options, model, states, problems: model.problems(), setsCache: cache, texts: previous.texts },
    affected: new Set(changes.keys()),
    changes,
  };
}

/** The `nft -f` script that builds a pod's table from scratch (replacing whatever the table held). */
export function podScript(state: DesiredState | undefined, options: RulesetOptions = {}): string {
  return new Transaction(NADGUARD_TABLE).append(freshTableOps(desiredTable(state, options))).render();
}

/** The script of a transition (see `transitionOps`). */
export function opsScript(ops: readonly Op[]): string {
  return new Transaction(NADGUARD_TABLE).append(ops).render();
}
