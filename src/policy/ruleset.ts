// The nft table nadguard keeps in a pod's network namespace (issue 3, section 4): table
// `inet nadguard`, two base chains whose rules never change with policies, and sets keyed by the
// interface too, so that every policy change is a change of set elements only:
//
//   ct state established,related accept      (replies of allowed connections)
//   iifname "lo" accept                      (a pod's own addresses are never blocked to itself)
//   icmpv6 type { ND, MLD } accept           (isolation must not break the link)
//   iifname . ip saddr . meta l4proto . th dport @ingress_v4 accept
//   iifname . ip saddr @ingress_v4_all accept       (rules without ports: every protocol)
//   … the same for ip6 …
//   iifname @ingress_isolated drop           (final drop only for isolated interfaces)
//
// and the same for egress on oifname/daddr. Rules per pod never grow with peers or ipBlocks.
import { type Chain, type Element, type NftSet, type Rule, chain, element, quoted, rule } from "../nft/objects.js";
import type { TableState } from "../nft/state.js";
import type { Direction } from "./policy.js";
import { type AddrRange, type Box, addrRangeText, portRangeText, protocolText } from "./ranges.js";

/** Disjoint, merged allow elements of one interface and direction (shared between pods with equal allows). */
export interface DirectionSets {
  readonly isolated: boolean;
  readonly v4: readonly Box[];
  readonly v6: readonly Box[];
  readonly v4All: readonly AddrRange[];
  readonly v6All: readonly AddrRange[];
  /** Equal texts mean equal elements. */
  readonly fingerprint: string;
}

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

export function setNames(direction: Direction): { v4: string; v6: string; v4All: string; v6All: string; isolated: string } {
  return { v4: `${direction}_v4`, v6: `${direction}_v6`, v4All: `${direction}_v4_all`, v6All: `${direction}_v6_all`, isolated: `${direction}_isolated` };
}

/** The static part: chains, sets and rules, the same for every pod (given the options). */
export function staticObjects(options: RulesetOptions = {}): { chains: Chain[]; sets: NftSet[]; rules: Rule[] } {
  const chains: Chain[] = [];
  const sets: NftSet[] = [];
  const rules: Rule[] = [];
  for (const direction of ["ingress", "egress"] as const) {
    const { hook, iface, addr } = NAMES[direction];
    const s = setNames(direction);
    chains.push(chain(direction, { type: "filter", hook, priority: "filter", policy: "accept" }));
    sets.push(
      { kind: "set", name: s.v4, type: ["ifname", "ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] },
      { kind: "set", name: s.v6, type: ["ifname", "ipv6_addr", "inet_proto", "inet_service"], flags: ["interval"] },
      { kind: "set", name: s.v4All, type: ["ifname", "ipv4_addr"], flags: ["interval"] },
      { kind: "set", name: s.v6All, type: ["ifname", "ipv6_addr"], flags: ["interval"] },
      { kind: "set", name: s.isolated, type: "ifname" },
    );
    const add = (text: string): void => void rules.push(rule(direction, text));
    add("ct state established,related accept");
    add(`${iface} "lo" accept`);
    add(`icmpv6 type { ${ND_TYPES} } accept`);
    if (options.acceptIcmpEcho) {
      add("icmp type echo-request accept");
      add("icmpv6 type echo-request accept");
    }
    add(`${iface} . ip ${addr} . meta l4proto . th dport @${s.v4} accept`);
    add(`${iface} . ip6 ${addr} . meta l4proto . th dport @${s.v6} accept`);
    add(`${iface} . ip ${addr} @${s.v4All} accept`);
    add(`${iface} . ip6 ${addr} @${s.v6All} accept`);
    add(`${iface} @${s.isolated} drop`);
  }
  return { chains, sets, rules };
}

function directionElements(direction: Direction, ifname: string, sets: DirectionSets, out: Element[]): void {
  if (!sets.isolated) return;
  const s = setNames(direction);
  const name = quoted(ifname);
  for (const b of sets.v4) out.push(element(s.v4, [name, addrRangeText(b.addr), protocolText(b.port.protocol), portRangeText(b.port)]));
  for (const b of sets.v6) out.push(element(s.v6, [name, addrRangeText(b.addr), protocolText(b.port.protocol), portRangeText(b.port)]));
  for (const r of sets.v4All) out.push(element(s.v4All, [name, addrRangeText(r)]));
  for (const r of sets.v6All) out.push(element(s.v6All, [name, addrRangeText(r)]));
  out.push(element(s.isolated, [name]));
}

type Keyed = [key: string, make: (name: string) => Element];

/** The elements of one direction, each with a cheap identity (no address formatting) and a maker for an interface name. */
function keyedElements(direction: Direction, sets: DirectionSets | undefined): Keyed[] {
  if (!sets?.isolated) return [];
  const s = setNames(direction);
  const out: Keyed[] = [];
  const boxes = (set: string, list: readonly Box[]): void => {
    for (const b of list) {
      const key = `${set} ${b.addr.from.toString(16)}-${b.addr.to.toString(16)} ${b.port.protocol} ${b.port.from}-${b.port.to}`;
      out.push([key, (name) => element(set, [name, addrRangeText(b.addr), protocolText(b.port.protocol), portRangeText(b.port)])]);
    }
  };
  const ranges = (set: string, list: readonly AddrRange[]): void => {
    for (const r of list) out.push([`${set} ${r.from.toString(16)}-${r.to.toString(16)}`, (name) => element(set, [name, addrRangeText(r)])]);
  };
  boxes(s.v4, sets.v4);
  boxes(s.v6, sets.v6);
  ranges(s.v4All, sets.v4All);
  ranges(s.v6All, sets.v6All);
  out.push([s.isolated, (name) => element(s.isolated, [name])]);
  return out;
}

/** What changes between two direction states, for any interface name. */
export interface DirectionDiff {
  readonly deletes: readonly ((name: string) => Element)[];
  readonly adds: readonly ((name: string) => Element)[];
}

const NO_DIFF: DirectionDiff = { deletes: [], adds: [] };

/**
 * The element changes that turn a direction from `before` into `after` (either absent for an
 * interface that appears or goes). Pods sharing both states share the diff (pass `cache`); only the
 * differing elements are ever formatted.
 */
export function directionDiff(direction: Direction, before: DirectionSets | undefined, after: DirectionSets | undefined, cache?: Map<string, DirectionDiff>): DirectionDiff {
  if (before === after || (before && after && before.isolated === after.isolated && before.fingerprint === after.fingerprint)) return NO_DIFF;
  const cacheKey = `${direction}\u0000${before?.isolated ? before.fingerprint : "-"}\u0000${after?.isolated ? after.fingerprint : "-"}`;
  const cached = cache?.get(cacheKey);
  if (cached) return cached;
  const old = keyedElements(direction, before);
  const next = keyedElements(direction, after);
  const oldKeys = new Set(old.map(([k]) => k));
  const nextKeys = new Set(next.map(([k]) => k));
  const diff = { deletes: old.filter(([k]) => !nextKeys.has(k)).map(([, make]) => make), adds: next.filter(([k]) => !oldKeys.has(k)).map(([, make]) => make) };
  cache?.set(cacheKey, diff);
  return diff;
}

/** The whole table for a pod's managed interfaces. */
export function tableFor(interfaces: readonly InterfaceState[], options: RulesetOptions = {}): TableState {
  const { chains, sets, rules } = staticObjects(options);
  const elements: Element[] = [];
  for (const i of interfaces) {
    directionElements("ingress", i.name, i.ingress, elements);
    directionElements("egress", i.name, i.egress, elements);
  }
  return { chains, sets, elements, rules };
}
