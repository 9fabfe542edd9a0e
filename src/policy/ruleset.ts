// The nft table nadguard keeps in a pod's network namespace: table
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
import { FAMILIES, addrRangeText, portRangeText, protocolText } from "./ranges.js";
import type { DirectionSets, FamilySets, HashElement, HostPort, HostProto, InterfaceState } from "./sets.js";

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

/** Makes a set element for an interface name. */
export type ElementMaker = (name: string) => Element;

// The makers of the hash-set elements, one per set: `…_hosts`, `…_hosts_proto`, `…_hosts_all`.
// The address is formatted on the first call only: a maker serves every pod that shares a diff (see transition.ts).
export const hostPortElement = (names: FamilySetNames, family: Family, h: HostPort): ElementMaker => {
  let text: string | undefined;
  return (name) => element(names.hosts, [name, (text ??= formatIp(family, h.addr)), protocolText(h.protocol), String(h.port)]);
};
export const hostProtoElement = (names: FamilySetNames, family: Family, h: HostProto): ElementMaker => {
  let text: string | undefined;
  return (name) => element(names.hostsProto, [name, (text ??= formatIp(family, h.addr)), protocolText(h.protocol)]);
};
export const hostAllElement = (names: FamilySetNames, family: Family, addr: bigint): ElementMaker => {
  let text: string | undefined;
  return (name) => element(names.hostsAll, [name, (text ??= formatIp(family, addr))]);
};

/** The maker of a hash-set element of one family. */
export function hashElementMaker(names: FamilySetNames, family: Family, e: HashElement): ElementMaker {
  if (e.kind === "port") return hostPortElement(names, family, e.value);
  if (e.kind === "proto") return hostProtoElement(names, family, e.value);
  return hostAllElement(names, family, e.value);
}

/** An element's cheap identity (no address formatting) and its maker. */
export type Keyed = [key: string, make: ElementMaker];

/** The elements of one family's sets, keyed, in set order. */
function familyElements(names: FamilySetNames, family: Family, sets: FamilySets, out: Keyed[]): void {
  for (const h of sets.hosts) out.push([`${names.hosts} ${h.addr.toString(16)} ${h.protocol} ${h.port}`, hostPortElement(names, family, h)]);
  for (const h of sets.hostsProto) out.push([`${names.hostsProto} ${h.addr.toString(16)} ${h.protocol}`, hostProtoElement(names, family, h)]);
  for (const a of sets.hostsAll) out.push([`${names.hostsAll} ${a.toString(16)}`, hostAllElement(names, family, a)]);
  intervalElements(names, sets, out);
}

/** The elements of one family's interval sets, keyed. */
export function intervalElements(names: FamilySetNames, sets: FamilySets, out: Keyed[]): void {
  for (const b of sets.boxes) {
    const key = `${names.boxes} ${b.addr.from.toString(16)}-${b.addr.to.toString(16)} ${b.port.protocol} ${b.port.from}-${b.port.to}`;
    out.push([key, (name) => element(names.boxes, [name, addrRangeText(b.addr), protocolText(b.port.protocol), portRangeText(b.port)])]);
  }
  for (const r of sets.ranges) out.push([`${names.ranges} ${r.from.toString(16)}-${r.to.toString(16)}`, (name) => element(names.ranges, [name, addrRangeText(r)])]);
}

/** The isolated-set element of an interface. */
export function isolatedElement(direction: Direction): ElementMaker {
  const set = setNames(direction).isolated;
  return (name) => element(set, [name]);
}

/** The elements of one direction (none when not isolated). */
export function keyedElements(direction: Direction, sets: DirectionSets | undefined): Keyed[] {
  if (!sets?.isolated) return [];
  const s = setNames(direction);
  const out: Keyed[] = [];
  for (const family of FAMILIES) familyElements(s[family], family, sets[`v${family}`], out);
  out.push([s.isolated, isolatedElement(direction)]);
  return out;
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

