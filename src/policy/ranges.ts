// Address and port ranges, and the normalisation of allow "boxes" (address range × port range per
// interface and protocol) into disjoint ones: the kernel's concatenated interval sets (pipapo)
// refuse an element that overlaps another ("File exists", checked on kernel 6.18 / nft 1.0.6), so
// every set the compiler writes holds disjoint elements, merged where they touch.
import { type Cidr, type Family, cidrLast, formatIp } from "../networks/addresses.js";
import { cmpBigint, search } from "./sorted.js";

export type L4Protocol = "TCP" | "UDP" | "SCTP";
export const L4_PROTOCOLS: readonly L4Protocol[] = ["TCP", "UDP", "SCTP"];

export const cmpProtocol = (x: L4Protocol, y: L4Protocol): number => (x === y ? 0 : x.localeCompare(y));

/** The address families, in the order tables and matrices list them. */
export const FAMILIES = [4, 6] as const satisfies readonly Family[];

/** An inclusive range of addresses of one family. */
export interface AddrRange {
  readonly family: Family;
  readonly from: bigint;
  readonly to: bigint;
}

/** An inclusive range of ports of one protocol. */
export interface PortRange {
  readonly protocol: L4Protocol;
  readonly from: number;
  readonly to: number;
}

export const MAX_ADDR: Record<Family, bigint> = { 4: (1n << 32n) - 1n, 6: (1n << 128n) - 1n };
export const ALL_PORTS = { from: 0, to: 65535 } as const;

export function cidrRange(cidr: Cidr): AddrRange {
  return { family: cidr.family, from: cidr.network, to: cidrLast(cidr) };
}

export function hostRange(family: Family, value: bigint): AddrRange {
  return { family, from: value, to: value };
}

export function fullRange(family: Family): AddrRange {
  return { family, from: 0n, to: MAX_ADDR[family] };
}

/** `a` minus every range of `minus` (same family), as sorted disjoint ranges. */
export function subtractRanges(a: AddrRange, minus: readonly AddrRange[]): AddrRange[] {
  let pieces: AddrRange[] = [a];
  for (const m of minus) {
    if (m.family !== a.family) continue;
    const next: AddrRange[] = [];
    for (const p of pieces) {
      if (m.to < p.from || m.from > p.to) {
        next.push(p);
        continue;
      }
      if (m.from > p.from) next.push({ family: p.family, from: p.from, to: m.from - 1n });
      if (m.to < p.to) next.push({ family: p.family, from: m.to + 1n, to: p.to });
    }
    pieces = next;
  }
  return pieces;
}

/** By family, then start, then end. */
export const cmpAddrRange = (x: AddrRange, y: AddrRange): number => x.family - y.family || cmpBigint(x.from, y.from) || cmpBigint(x.to, y.to);

export const sameAddrRange = (x: AddrRange, y: AddrRange): boolean => x.family === y.family && x.from === y.from && x.to === y.to;

/** The union of ranges of one family as sorted, disjoint, non-adjacent ranges. */
export function mergeAddrRanges(ranges: readonly AddrRange[]): AddrRange[] {
  const sorted = [...ranges].sort((x, y) => cmpBigint(x.from, y.from));
  const out: AddrRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to + 1n) {
      if (r.to > last.to) out[out.length - 1] = { family: last.family, from: last.from, to: r.to };
    } else out.push(r);
  }
  return out;
}

/** The union of port ranges (any protocols) as sorted, disjoint ranges per protocol. */
export function mergePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((x, y) => cmpProtocol(x.protocol, y.protocol) || x.from - y.from);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.protocol === r.protocol && r.from <= last.to + 1) {
      if (r.to > last.to) out[out.length - 1] = { protocol: last.protocol, from: last.from, to: r.to };
    } else out.push(r);
  }
  return out;
}

/** Order of disjoint ranges, 0 for ranges that overlap: finds the range holding an address by `search`. */
const cmpDisjoint = (x: AddrRange, y: AddrRange): number => (x.to < y.from ? -1 : x.from > y.to ? 1 : 0);

/** Whether `value` lies in one of `ranges`, sorted and disjoint, of `family`: a binary search. */
export function addrInSortedRanges(ranges: readonly AddrRange[], family: Family, value: bigint): boolean {
  return search(ranges, { family, from: value, to: value }, cmpDisjoint) >= 0;
}

export function addrInRanges(ranges: readonly AddrRange[], family: Family, value: bigint): boolean {
  return ranges.some((r) => r.family === family && r.from <= value && value <= r.to);
}

export function portInRanges(ranges: readonly PortRange[], protocol: L4Protocol, port: number): boolean {
  return ranges.some((r) => r.protocol === protocol && r.from <= port && port <= r.to);
}

/** One allowed box: addresses × ports of one protocol. */
export interface Box {
  readonly addr: AddrRange;
  readonly port: PortRange;
}

/**
 * A disjoint cover of the union of `boxes` (all of one family): a sweep over the address axis; each
 * elementary address slice gets the union of the port ranges of the boxes covering it, and adjacent
 * slices with equal port lists merge. Sorted by protocol, address, port. Output size is at most
 * O(boxes²) in theory and close to the input size for the shapes policies produce.
 */
export function disjointBoxes(boxes: readonly Box[]): Box[] {
  if (boxes.length === 0) return [];
  const byProtocol = new Map<L4Protocol, Box[]>();
  for (const b of boxes) {
    const list = byProtocol.get(b.port.protocol);
    if (list) list.push(b);
    else byProtocol.set(b.port.protocol, [b]);
  }
  const out: Box[] = [];
  for (const protocol of L4_PROTOCOLS) {
    const list = byProtocol.get(protocol);
    if (list) out.push(...sweepProtocol(list));
  }
  return out;
}

const byAddr = (x: Box, y: Box): number => cmpBigint(x.addr.from, y.addr.from) || cmpBigint(x.addr.to, y.addr.to);

function samePorts(a: readonly PortRange[], b: readonly PortRange[]): boolean {
  return a.length === b.length && a.every((p, i) => p.from === b[i]!.from && p.to === b[i]!.to);
}

interface Slice {
  from: bigint;
  to: bigint;
  ports: PortRange[];
}

function pushSlice(slices: Slice[], from: bigint, to: bigint, ports: PortRange[]): void {
  const last = slices[slices.length - 1];
  if (last && last.to + 1n === from && samePorts(last.ports, ports)) last.to = to;
  else slices.push({ from, to, ports });
}

/** Boxes whose address ranges are equal or disjoint (peer pods' host addresses): one pass, no sweep. */
function simpleSlices(sorted: readonly Box[]): Slice[] | undefined {
  const slices: Slice[] = [];
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i]!;
    let j = i + 1;
    while (j < sorted.length && sorted[j]!.addr.from === first.addr.from && sorted[j]!.addr.to === first.addr.to) j++;
    if (j < sorted.length && sorted[j]!.addr.from <= first.addr.to) return undefined;
    const ports = j - i === 1 ? [first.port] : mergePortRanges(sorted.slice(i, j).map((b) => b.port));
    pushSlice(slices, first.addr.from, first.addr.to, ports);
    i = j;
  }
  return slices;
}

function sweepSlices(starts: readonly Box[]): Slice[] {
  const points = new Set<bigint>();
  for (const b of starts) {
    points.add(b.addr.from);
    points.add(b.addr.to + 1n);
  }
  const cuts = [...points].sort(cmpBigint);
  const active: Box[] = [];
  let next = 0;
  const slices: Slice[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const from = cuts[i]!;
    const to = cuts[i + 1]! - 1n;
    while (next < starts.length && starts[next]!.addr.from <= from) active.push(starts[next++]!);
    for (let k = active.length - 1; k >= 0; k--) if (active[k]!.addr.to < from) active.splice(k, 1);
    if (active.length === 0) continue;
    pushSlice(slices, from, to, mergePortRanges(active.map((b) => b.port)));
  }
  return slices;
}

function sweepProtocol(boxes: readonly Box[]): Box[] {
  const family = boxes[0]!.addr.family;
  const sorted = [...boxes].sort(byAddr);
  const slices = simpleSlices(sorted) ?? sweepSlices(sorted);
  const out: Box[] = [];
  for (const s of slices) for (const port of s.ports) out.push({ addr: { family, from: s.from, to: s.to }, port });
  return out;
}

/** The prefix length when `r` is exactly one CIDR, else undefined. */
export function rangePrefix(r: AddrRange): number | undefined {
  const size = r.to - r.from + 1n;
  if ((size & (size - 1n)) !== 0n || r.from % size !== 0n) return undefined;
  const bits = r.family === 4 ? 32 : 128;
  return bits - (size.toString(2).length - 1);
}

/** An address range as nft lists it in an interval set: `1.2.3.4`, `1.2.3.0/24` or `1.2.3.4-1.2.3.9`. */
export function addrRangeText(r: AddrRange): string {
  if (r.from === r.to) return formatIp(r.family, r.from);
  const prefix = rangePrefix(r);
  if (prefix !== undefined) return `${formatIp(r.family, r.from)}/${prefix}`;
  return `${formatIp(r.family, r.from)}-${formatIp(r.family, r.to)}`;
}

export function portRangeText(p: { from: number; to: number }): string {
  return p.from === p.to ? String(p.from) : `${p.from}-${p.to}`;
}

export function protocolText(protocol: L4Protocol): string {
  return protocol.toLowerCase();
}
