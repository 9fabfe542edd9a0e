// Set elements: what an interface direction allows, as the elements of the table's sets (ruleset.ts
// says which set holds what), built from a direction model's allows, or patched from the sets of an
// earlier model when only peer pods came or went. Sets are immutable and shared between pods with
// equal allows; built sets are cached by the allows' signatures.
import type { Family } from "../networks/addresses.js";
import type { DirectionModel } from "./model.js";
import { ALL_PORTS, type AddrRange, type Box, type L4Protocol, type PortRange, cmpAddrRange, cmpProtocol, disjointBoxes, fullRange, mergeAddrRanges, sameAddrRange } from "./ranges.js";
import { cmpBigint, editSorted, sameList, search } from "./sorted.js";

/** A single address and a single port: an element of the `…_hosts` hash set. */
export interface HostPort {
  readonly addr: bigint;
  readonly protocol: L4Protocol;
  readonly port: number;
}

/** A single address and every port of a protocol: an element of `…_hosts_proto`. */
export interface HostProto {
  readonly addr: bigint;
  readonly protocol: L4Protocol;
}

/** An element of one of a family's hash sets: `…_hosts`, `…_hosts_proto` or `…_hosts_all`. */
export type HashElement = { readonly kind: "port"; readonly value: HostPort } | { readonly kind: "proto"; readonly value: HostProto } | { readonly kind: "all"; readonly value: bigint };

/** The allow elements of one address family, by set; sorted, without duplicates. */
export interface FamilySets {
  /** Hash: host . protocol . port. */
  readonly hosts: readonly HostPort[];
  /** Hash: host . protocol (every port). */
  readonly hostsProto: readonly HostProto[];
  /** Hash: host (every protocol and port). */
  readonly hostsAll: readonly bigint[];
  /** Interval: address range × port range, disjoint and merged. */
  readonly boxes: readonly Box[];
  /** Interval: address ranges allowed for everything, disjoint and merged. */
  readonly ranges: readonly AddrRange[];
}

/** The allow elements of one interface and direction (shared between pods with equal allows). */
export interface DirectionSets {
  readonly isolated: boolean;
  readonly v4: FamilySets;
  readonly v6: FamilySets;
  /** Equal texts mean equal elements. */
  readonly fingerprint: string;
  /** Present when made from earlier sets by element edits (`patchedSets`): their diff without a walk. */
  readonly patch?: DirectionPatch;
}

/** How direction sets were made from others by hash element edits. */
export interface DirectionPatch {
  /** Weak: patched sets must not keep the ones before them (and those their own) alive. */
  readonly from: WeakRef<DirectionSets>;
  readonly deletes: readonly { readonly family: Family; readonly element: HashElement }[];
  readonly adds: readonly { readonly family: Family; readonly element: HashElement }[];
}

export interface InterfaceState {
  /** The interface name inside the pod (network-status). */
  readonly name: string;
  /** `ns/name` of its NAD. */
  readonly network: string;
  readonly ingress: DirectionSets;
  readonly egress: DirectionSets;
}

export const EMPTY_FAMILY_SETS: FamilySets = { hosts: [], hostsProto: [], hostsAll: [], boxes: [], ranges: [] };

export const NOT_ISOLATED: DirectionSets = { isolated: false, v4: EMPTY_FAMILY_SETS, v6: EMPTY_FAMILY_SETS, fingerprint: "-" };

/** The order of `…_hosts`. */
export const cmpHostPort = (x: HostPort, y: HostPort): number => cmpBigint(x.addr, y.addr) || cmpProtocol(x.protocol, y.protocol) || x.port - y.port;
/** The order of `…_hosts_proto`. */
export const cmpHostProto = (x: HostProto, y: HostProto): number => cmpBigint(x.addr, y.addr) || cmpProtocol(x.protocol, y.protocol);

const KIND_ORDER = { port: 0, proto: 1, all: 2 } as const;

/** The order in which a family's hash elements are listed: `…_hosts`, `…_hosts_proto`, `…_hosts_all`, each sorted. */
export function cmpHashElement(x: HashElement, y: HashElement): number {
  if (x.kind !== y.kind) return KIND_ORDER[x.kind] - KIND_ORDER[y.kind];
  if (x.kind === "port") return cmpHostPort(x.value, y.value as HostPort);
  if (x.kind === "proto") return cmpHostProto(x.value, y.value as HostProto);
  return cmpBigint(x.value, y.value as bigint);
}

const hashElementAddr = (e: HashElement): bigint => (e.kind === "all" ? e.value : e.value.addr);

/** The hash-set elements a host gets from an allow's ports; undefined when some go to an interval set. */
function hashElements(addr: bigint, ports: "any" | readonly PortRange[]): HashElement[] | undefined {
  if (ports === "any") return [{ kind: "all", value: addr }];
  const out: HashElement[] = [];
  for (const port of ports) {
    if (port.from === port.to) out.push({ kind: "port", value: { addr, protocol: port.protocol, port: port.from } });
    else if (port.from === ALL_PORTS.from && port.to === ALL_PORTS.to) out.push({ kind: "proto", value: { addr, protocol: port.protocol } });
    else return undefined;
  }
  return out;
}

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
    hosts.sort(cmpHostPort);
    const hostsProto: HostProto[] = [];
    for (const byProto of this.#hostsProto.values()) for (const h of byProto.values()) hostsProto.push(h);
    hostsProto.sort(cmpHostProto);
    const hostsAll = [...this.#hostsAll].sort(cmpBigint);
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

/** Built sets by allow signature: a Map, or an overlay carried from the previous compile (overlay-map.ts). */
export interface SetsCache {
  get(signature: string): DirectionSets | undefined;
  set(signature: string, sets: DirectionSets): unknown;
}

/** The sets last built from a direction model (shared by the pods the same policies isolate, see model.ts), and the cache they went to. */
const builtFrom = new WeakMap<DirectionModel, { cache: SetsCache; sets: DirectionSets }>();

/** Sorts a direction's allows into set elements; cached by the allows' signatures. */
export function directionSets(model: DirectionModel, cache: SetsCache): DirectionSets {
  if (!model.isolated) return NOT_ISOLATED;
  const built = builtFrom.get(model);
  if (built?.cache === cache) return built.sets;
  const sets = signedSets(model, cache);
  builtFrom.set(model, { cache, sets });
  return sets;
}

function signedSets(model: DirectionModel, cache: SetsCache): DirectionSets {
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

type FamilyElement = { family: Family; element: HashElement };

/**
 * The sets of allows that differ from ones already in `cache` only by patched peer sets
 * (`PeerPods.patch`), from those sets plus and minus the hosts that came and went: O(changed hosts ×
 * allows × log), not O(elements). Undefined when there is no such basis or the change is not one of
 * host elements only (the caller then builds the sets in full).
 */
function patchedSets(model: DirectionModel, cache: SetsCache): DirectionSets | undefined {
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
  const gone: FamilyElement[] = [];
  const come: FamilyElement[] = [];
  for (const a of patched) {
    const { removed, added } = a.source!.patch!;
    for (const [list, out] of [[removed, gone], [added, come]] as const) {
      for (const r of list) {
        if (r.from !== r.to) return undefined;
        const elements = hashElements(r.from, a.ports);
        if (!elements) return undefined;
        for (const element of elements) out.push({ family: r.family, element });
      }
    }
  }
  // A host element that went stays when another allow (or the same, with another port) still gives it.
  const stays = ({ family, element }: FamilyElement): boolean =>
    model.allows.some((a) => {
      if (a.addresses === "any") return false;
      const addr = hashElementAddr(element);
      const host: AddrRange = { family, from: addr, to: addr };
      const found = a.source ? search(a.addresses, host, cmpAddrRange) >= 0 : a.addresses.some((r) => sameAddrRange(r, host));
      return found && (hashElements(addr, a.ports) ?? []).some((e) => cmpHashElement(e, element) === 0);
    });
  const copy = (f: FamilySets): { hosts: HostPort[]; hostsProto: HostProto[]; hostsAll: bigint[]; boxes: readonly Box[]; ranges: readonly AddrRange[] } => ({
    ...f,
    hosts: [...f.hosts],
    hostsProto: [...f.hostsProto],
    hostsAll: [...f.hostsAll],
  });
  const families = { 4: copy(base.v4), 6: copy(base.v6) };
  /** Whether the element was inserted or removed (false: already so). */
  const edit = ({ family, element }: FamilyElement, add: boolean): boolean => {
    const f = families[family];
    if (element.kind === "port") return editSorted(f.hosts, element.value, cmpHostPort, add);
    if (element.kind === "proto") return editSorted(f.hostsProto, element.value, cmpHostProto, add);
    return editSorted(f.hostsAll, element.value, cmpBigint, add);
  };
  const deletes = gone.filter((e) => !stays(e) && edit(e, false));
  const adds = come.filter((e) => edit(e, true));
  return isolatedSets(families[4], families[6], { from: new WeakRef(base), deletes, adds });
}

function sameFamily(x: FamilySets, y: FamilySets): boolean {
  return (
    x === y ||
    (sameList(x.hosts, y.hosts, (a, b) => cmpHostPort(a, b) === 0) &&
      sameList(x.hostsProto, y.hostsProto, (a, b) => cmpHostProto(a, b) === 0) &&
      sameList(x.hostsAll, y.hostsAll, (a, b) => a === b) &&
      sameList(x.boxes, y.boxes, (a, b) => sameAddrRange(a.addr, b.addr) && a.port.protocol === b.port.protocol && a.port.from === b.port.from && a.port.to === b.port.to) &&
      sameList(x.ranges, y.ranges, sameAddrRange))
  );
}

/** Equal fingerprints, compared element by element without building them. */
export function sameSets(a: DirectionSets, b: DirectionSets): boolean {
  return a === b || (a.isolated === b.isolated && (!a.isolated || (sameFamily(a.v4, b.v4) && sameFamily(a.v6, b.v6))));
}
