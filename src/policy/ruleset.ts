// The nft table nadguard keeps in a pod's network namespace (issue 3, section 4): table
// `inet nadguard`, two base chains whose rules never change with policies, and sets keyed by the
// interface too, so that every policy change is a change of set elements only:
//
//   ct state established,related accept      (replies of allowed connections)
//   iifname "lo" accept                      (a pod's own addresses are never blocked to itself)
//   icmpv6 type { ND, MLD } accept           (isolation must not break the link)
//   iifname . ip saddr . meta l4proto . th dport @ingress_v4_hosts accept      hash: host, one port
//   iifname . ip saddr . meta l4proto @ingress_v4_hosts_proto accept           hash: host, every port of a protocol
//   iifname . ip saddr @ingress_v4_hosts_all accept                            hash: host, everything
//   … the same three for ip6 …
//   iifname . ip saddr . meta l4proto . th dport @ingress_v4 accept            interval: CIDRs, port ranges
//   iifname . ip6 saddr . meta l4proto . th dport @ingress_v6 accept
//   iifname . ip saddr @ingress_v4_all accept                                  interval: CIDRs, everything
//   iifname . ip6 saddr @ingress_v6_all accept
//   iifname @ingress_isolated drop           (final drop only for isolated interfaces)
//
// and the same for egress on oifname/daddr. Rules per pod never grow with peers or ipBlocks.
//
// Where an allowed (address, port) goes: the dimension that grows with the cluster is peer pods,
// whose addresses are single hosts; they go to the HASH sets (no interval flag), whose lookup and
// update cost does not depend on the number of elements. A concatenated interval set (pipapo) with
// the 16-byte ifname in its key costs per packet and per update in proportion to its size, so it
// only holds what a hash cannot: address ranges (ipBlocks, single-address ipBlocks excepted) and
// port ranges. A host with a port RANGE (endPort) goes to the interval set `…_v4` as a one-address
// box (not expanded into one hash element per port): those elements are merged and kept disjoint
// with the ipBlock boxes, as the kernel refuses overlapping interval elements. Only hash elements
// are ever one element per peer address and allowed port; they need no merging (a host already
// covered by an interval element is written anyway: redundancy across sets is harmless and keeps a
// one-peer change a one-element change).
import { type Family, formatIp } from "../networks/addresses.js";
import { type Chain, type Element, type NftSet, type Rule, chain, element, quoted, rule } from "../nft/objects.js";
import type { TableState } from "../nft/state.js";
import type { Direction } from "./policy.js";
import { type AddrRange, type Box, type L4Protocol, addrRangeText, portRangeText, protocolText } from "./ranges.js";

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
  /** Present when made from earlier sets by element edits (the compiler's patched sets): their diff without a walk. */
  readonly patch?: DirectionPatch;
}

export const EMPTY_FAMILY_SETS: FamilySets = { hosts: [], hostsProto: [], hostsAll: [], boxes: [], ranges: [] };

export interface InterfaceState {
  /** The interface name inside the pod (network-status). */
  readonly name: string;
  /** `ns/name` of its NAD. */
  readonly network: string;
  readonly ingress: DirectionSets;
  readonly egress: DirectionSets;
}

export interface RulesetOptions {
  /** Accept ICMP and ICMPv6 echo requests on isolated interfaces. Default false (NetworkPolicy isolates them). */
  readonly acceptIcmpEcho?: boolean;
}

// Neighbour and router discovery (RFC 4861): without them an isolated IPv6 interface loses its
// neighbours. MLD (RFC 3810) too: switches that snoop MLD forward the solicited-node multicast ND uses
// only to listeners that reported it.
const ND_TYPES = "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, mld-listener-report, mld2-listener-report";

interface DirectionNames {
  readonly hook: "input" | "output";
  readonly iface: "iifname" | "oifname";
  readonly addr: "saddr" | "daddr";
}

const NAMES: Record<Direction, DirectionNames> = {
  ingress: { hook: "input", iface: "iifname", addr: "saddr" },
  egress: { hook: "output", iface: "oifname", addr: "daddr" },
};

/** The set names of one family and direction. */
export interface FamilySetNames {
  readonly hosts: string;
  readonly hostsProto: string;
  readonly hostsAll: string;
  readonly boxes: string;
  readonly ranges: string;
}

function familySetNames(direction: Direction, family: Family): FamilySetNames {
  const v = `${direction}_v${family}`;
  return { hosts: `${v}_hosts`, hostsProto: `${v}_hosts_proto`, hostsAll: `${v}_hosts_all`, boxes: v, ranges: `${v}_all` };
}

const SET_NAMES: Record<Direction, { 4: FamilySetNames; 6: FamilySetNames; isolated: string }> = {
  ingress: { 4: familySetNames("ingress", 4), 6: familySetNames("ingress", 6), isolated: "ingress_isolated" },
  egress: { 4: familySetNames("egress", 4), 6: familySetNames("egress", 6), isolated: "egress_isolated" },
};

export function setNames(direction: Direction): { 4: FamilySetNames; 6: FamilySetNames; isolated: string } {
  return SET_NAMES[direction];
}

const FAMILIES = [4, 6] as const;

/** The static part: chains, sets and rules, the same for every pod (given the options). */
export function staticObjects(options: RulesetOptions = {}): { chains: Chain[]; sets: NftSet[]; rules: Rule[] } {
  const chains: Chain[] = [];
  const sets: NftSet[] = [];
  const rules: Rule[] = [];
  for (const direction of ["ingress", "egress"] as const) {
    const { hook, iface, addr } = NAMES[direction];
    const s = setNames(direction);
    chains.push(chain(direction, { type: "filter", hook, priority: "filter", policy: "accept" }));
    for (const family of FAMILIES) {
      const n = s[family];
      const a = family === 4 ? "ipv4_addr" : "ipv6_addr";
      sets.push(
        { kind: "set", name: n.hosts, type: ["ifname", a, "inet_proto", "inet_service"] },
        { kind: "set", name: n.hostsProto, type: ["ifname", a, "inet_proto"] },
        { kind: "set", name: n.hostsAll, type: ["ifname", a] },
        { kind: "set", name: n.boxes, type: ["ifname", a, "inet_proto", "inet_service"], flags: ["interval"] },
        { kind: "set", name: n.ranges, type: ["ifname", a], flags: ["interval"] },
      );
    }
    sets.push({ kind: "set", name: s.isolated, type: "ifname" });
    const add = (text: string): void => void rules.push(rule(direction, text));
    add("ct state established,related accept");
    add(`${iface} "lo" accept`);
    add(`icmpv6 type { ${ND_TYPES} } accept`);
    if (options.acceptIcmpEcho) {
      add("icmp type echo-request accept");
      add("icmpv6 type echo-request accept");
    }
    // Hash lookups first: they carry the peer pods, most of the traffic, at a cost independent of their number.
    for (const family of FAMILIES) {
      const n = s[family];
      const ip = family === 4 ? "ip" : "ip6";
      add(`${iface} . ${ip} ${addr} . meta l4proto . th dport @${n.hosts} accept`);
      add(`${iface} . ${ip} ${addr} . meta l4proto @${n.hostsProto} accept`);
      add(`${iface} . ${ip} ${addr} @${n.hostsAll} accept`);
    }
    for (const family of FAMILIES) add(`${iface} . ${family === 4 ? "ip" : "ip6"} ${addr} . meta l4proto . th dport @${s[family].boxes} accept`);
    for (const family of FAMILIES) add(`${iface} . ${family === 4 ? "ip" : "ip6"} ${addr} @${s[family].ranges} accept`);
    add(`${iface} @${s.isolated} drop`);
  }
  return { chains, sets, rules };
}

type Keyed = [key: string, make: (name: string) => Element];

/** The elements of one family's sets, each with a cheap identity (no address formatting) and a maker for an interface name. */
function familyElements(names: FamilySetNames, family: Family, sets: FamilySets, out: Keyed[]): void {
  for (const h of sets.hosts) {
    out.push([`${names.hosts} ${h.addr.toString(16)} ${h.protocol} ${h.port}`, (name) => element(names.hosts, [name, formatIp(family, h.addr), protocolText(h.protocol), String(h.port)])]);
  }
  for (const h of sets.hostsProto) {
    out.push([`${names.hostsProto} ${h.addr.toString(16)} ${h.protocol}`, (name) => element(names.hostsProto, [name, formatIp(family, h.addr), protocolText(h.protocol)])]);
  }
  for (const a of sets.hostsAll) out.push([`${names.hostsAll} ${a.toString(16)}`, (name) => element(names.hostsAll, [name, formatIp(family, a)])]);
  for (const b of sets.boxes) {
    const key = `${names.boxes} ${b.addr.from.toString(16)}-${b.addr.to.toString(16)} ${b.port.protocol} ${b.port.from}-${b.port.to}`;
    out.push([key, (name) => element(names.boxes, [name, addrRangeText(b.addr), protocolText(b.port.protocol), portRangeText(b.port)])]);
  }
  for (const r of sets.ranges) out.push([`${names.ranges} ${r.from.toString(16)}-${r.to.toString(16)}`, (name) => element(names.ranges, [name, addrRangeText(r)])]);
}

/** The elements of one direction (none when not isolated). */
function keyedElements(direction: Direction, sets: DirectionSets | undefined): Keyed[] {
  if (!sets?.isolated) return [];
  const s = setNames(direction);
  const out: Keyed[] = [];
  for (const family of FAMILIES) familyElements(s[family], family, sets[`v${family}`], out);
  out.push([s.isolated, (name) => element(s.isolated, [name])]);
  return out;
}

const cmpBigint = (x: bigint, y: bigint): number => (x < y ? -1 : x > y ? 1 : 0);
const cmpProtocol = (x: L4Protocol, y: L4Protocol): number => (x === y ? 0 : x.localeCompare(y));
const cmpHostPort = (x: HostPort, y: HostPort): number => cmpBigint(x.addr, y.addr) || cmpProtocol(x.protocol, y.protocol) || x.port - y.port;
const cmpHostProto = (x: HostProto, y: HostProto): number => cmpBigint(x.addr, y.addr) || cmpProtocol(x.protocol, y.protocol);

// FamilySets objects are immutable: each is checked once in its life.
const checkedSorted = new WeakSet<FamilySets>();

function familySorted(f: FamilySets): boolean {
  if (checkedSorted.has(f)) return true;
  if (!strictlySorted(f.hosts, cmpHostPort) || !strictlySorted(f.hostsProto, cmpHostProto) || !strictlySorted(f.hostsAll, cmpBigint)) return false;
  checkedSorted.add(f);
  return true;
}

function strictlySorted<T>(list: readonly T[], cmp: (x: T, y: T) => number): boolean {
  for (let i = 1; i < list.length; i++) if (cmp(list[i - 1]!, list[i]!) >= 0) return false;
  return true;
}

/** Walks two strictly sorted lists: `gone` gets what only `a` has, `come` what only `b` has, in list order. */
function mergeWalk<T>(a: readonly T[], b: readonly T[], cmp: (x: T, y: T) => number, gone: (x: T) => void, come: (y: T) => void): void {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const c = cmp(a[i]!, b[j]!);
    if (c === 0) {
      i++;
      j++;
    } else if (c < 0) gone(a[i++]!);
    else come(b[j++]!);
  }
  while (i < a.length) gone(a[i++]!);
  while (j < b.length) come(b[j++]!);
}

/**
 * `directionDiff` without formatting the elements both sides share: the hash sets (the bulk of a
 * direction) are walked in their sort order; the interval sets, which are small, are compared by key.
 * The same elements, in the same order, as the keyed diff. Undefined when a list is not strictly
 * sorted (a state not made by the compiler): the caller then diffs by key.
 */
function mergedDiff(direction: Direction, before: DirectionSets | undefined, after: DirectionSets | undefined): DirectionDiff | undefined {
  const s = setNames(direction);
  const deletes: ((name: string) => Element)[] = [];
  const adds: ((name: string) => Element)[] = [];
  for (const family of FAMILIES) {
    const x = before ? before[`v${family}`] : EMPTY_FAMILY_SETS;
    const y = after ? after[`v${family}`] : EMPTY_FAMILY_SETS;
    if (!familySorted(x) || !familySorted(y)) return undefined;
    const names = s[family];
    const hostPort = (h: HostPort) => (name: string) => element(names.hosts, [name, formatIp(family, h.addr), protocolText(h.protocol), String(h.port)]);
    const hostProto = (h: HostProto) => (name: string) => element(names.hostsProto, [name, formatIp(family, h.addr), protocolText(h.protocol)]);
    const hostAll = (a: bigint) => (name: string) => element(names.hostsAll, [name, formatIp(family, a)]);
    mergeWalk(x.hosts, y.hosts, cmpHostPort, (h) => deletes.push(hostPort(h)), (h) => adds.push(hostPort(h)));
    mergeWalk(x.hostsProto, y.hostsProto, cmpHostProto, (h) => deletes.push(hostProto(h)), (h) => adds.push(hostProto(h)));
    mergeWalk(x.hostsAll, y.hostsAll, cmpBigint, (a) => deletes.push(hostAll(a)), (a) => adds.push(hostAll(a)));
    // Interval sets: by key, as keyedElements does.
    const intervals = (f: FamilySets): Keyed[] => {
      const out: Keyed[] = [];
      familyElements(names, family, { ...EMPTY_FAMILY_SETS, boxes: f.boxes, ranges: f.ranges }, out);
      return out;
    };
    const old = intervals(x);
    const next = intervals(y);
    const oldKeys = new Set(old.map(([k]) => k));
    const nextKeys = new Set(next.map(([k]) => k));
    for (const [k, make] of old) if (!nextKeys.has(k)) deletes.push(make);
    for (const [k, make] of next) if (!oldKeys.has(k)) adds.push(make);
  }
  if (before && !after) deletes.push((name) => element(s.isolated, [name]));
  if (after && !before) adds.push((name) => element(s.isolated, [name]));
  return { deletes, adds };
}

/** A hash-set element of one family (what `DirectionPatch` lists). */
export type HashElement = { readonly kind: "port"; readonly value: HostPort } | { readonly kind: "proto"; readonly value: HostProto } | { readonly kind: "all"; readonly value: bigint };

/** How a direction state was made from another by element edits (`DirectionSets.patch`). */
export interface DirectionPatch {
  /** Weak: a patched state must not keep the one before it (and that one its own) alive. */
  readonly from: WeakRef<DirectionSets>;
  readonly deletes: readonly { readonly family: Family; readonly element: HashElement }[];
  readonly adds: readonly { readonly family: Family; readonly element: HashElement }[];
}

const KIND_ORDER = { port: 0, proto: 1, all: 2 } as const;

function patchDiff(direction: Direction, patch: DirectionPatch): DirectionDiff {
  const s = setNames(direction);
  // keyedElements' order: family, then hosts, hostsProto, hostsAll, each sorted.
  const order = (x: { family: Family; element: HashElement }, y: { family: Family; element: HashElement }): number => {
    if (x.family !== y.family) return x.family - y.family;
    if (x.element.kind !== y.element.kind) return KIND_ORDER[x.element.kind] - KIND_ORDER[y.element.kind];
    if (x.element.kind === "port") return cmpHostPort(x.element.value, y.element.value as HostPort);
    if (x.element.kind === "proto") return cmpHostProto(x.element.value, y.element.value as HostProto);
    return cmpBigint(x.element.value, y.element.value as bigint);
  };
  const make = ({ family, element }: { family: Family; element: HashElement }): ((name: string) => Element) => {
    const names = s[family as 4 | 6];
    if (element.kind === "port") {
      const h = element.value;
      return (name) => element_(names.hosts, [name, formatIp(family, h.addr), protocolText(h.protocol), String(h.port)]);
    }
    if (element.kind === "proto") {
      const h = element.value;
      return (name) => element_(names.hostsProto, [name, formatIp(family, h.addr), protocolText(h.protocol)]);
    }
    const a = element.value;
    return (name) => element_(names.hostsAll, [name, formatIp(family, a)]);
  };
  return { deletes: [...patch.deletes].sort(order).map(make), adds: [...patch.adds].sort(order).map(make) };
}

const element_ = element;

/** What changes between two direction states, for any interface name. */
export interface DirectionDiff {
  readonly deletes: readonly ((name: string) => Element)[];
  readonly adds: readonly ((name: string) => Element)[];
}

const NO_DIFF: DirectionDiff = { deletes: [], adds: [] };

/** Diffs already computed, by direction and the two states' identities (pods with equal allows share their DirectionSets objects). */
export class DirectionDiffCache {
  readonly #byDirection = new Map<Direction, Map<DirectionSets | undefined, Map<DirectionSets | undefined, DirectionDiff>>>();

  get(direction: Direction, before: DirectionSets | undefined, after: DirectionSets | undefined): DirectionDiff | undefined {
    return this.#byDirection.get(direction)?.get(before)?.get(after);
  }

  set(direction: Direction, before: DirectionSets | undefined, after: DirectionSets | undefined, diff: DirectionDiff): void {
    let byBefore = this.#byDirection.get(direction);
    if (!byBefore) this.#byDirection.set(direction, (byBefore = new Map()));
    let byAfter = byBefore.get(before);
    if (!byAfter) byBefore.set(before, (byAfter = new Map()));
    byAfter.set(after, diff);
  }
}

/**
 * The element changes that turn a direction from `before` into `after` (either absent for an
 * interface that appears or goes). Pods sharing both states share the diff (pass `cache`); only the
 * differing elements are ever formatted.
 */
export function directionDiff(direction: Direction, before: DirectionSets | undefined, after: DirectionSets | undefined, cache?: DirectionDiffCache): DirectionDiff {
  // Equal states diff to nothing below; their fingerprints are not compared (built lazily, they are long).
  if (before === after || (!before?.isolated && !after?.isolated)) return NO_DIFF;
  const b = before?.isolated ? before : undefined;
  const a = after?.isolated ? after : undefined;
  const cached = cache?.get(direction, b, a);
  if (cached) return cached;
  const patch = a && b ? a.patch : undefined;
  const fast = patch && patch.from.deref() === b ? patchDiff(direction, patch) : mergedDiff(direction, b, a);
  if (fast) {
    cache?.set(direction, b, a, fast);
    return fast;
  }
  const old = keyedElements(direction, b);
  const next = keyedElements(direction, a);
  const oldKeys = new Set(old.map(([k]) => k));
  const nextKeys = new Set(next.map(([k]) => k));
  const diff = { deletes: old.filter(([k]) => !nextKeys.has(k)).map(([, make]) => make), adds: next.filter(([k]) => !oldKeys.has(k)).map(([, make]) => make) };
  cache?.set(direction, b, a, diff);
  return diff;
}

/** The whole table for a pod's managed interfaces. */
export function tableFor(interfaces: readonly InterfaceState[], options: RulesetOptions = {}): TableState {
  const { chains, sets, rules } = staticObjects(options);
  const elements: Element[] = [];
  for (const i of interfaces) {
    const name = quoted(i.name);
    for (const direction of ["ingress", "egress"] as const) for (const [, make] of keyedElements(direction, i[direction])) elements.push(make(name));
  }
  return { chains, sets, elements, rules };
}
