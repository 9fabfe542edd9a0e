// The reachability matrix of one network: for every pair of pods attached to it, every
// port asked and every address family both pods have there, whether a new connection is allowed,
// and which side decides. It is the verdict oracle (verdict.ts) over every pair, on one model: the
// interface models are built once per pod instead of once per probe, and for each port the entries
// of a side that allow the port are united into one sorted range list per family, so that a cell
// is two binary searches. The union allows an address exactly when one of the entries `verdictOf`
// checks one by one does (`entryAllowsPort`, `entryAllowsAddress`); `cellVerdict` gives a cell's
// full verdict (deciding policies and rules) from the same functions as `nadguard verdict`.
import type { Problem } from "../api/errors.js";
import type { Family } from "../networks/addresses.js";
import type { DirectionModel, InterfaceModel, PolicyModel } from "./model.js";
import type { Port } from "./policy.js";
import { type Address, type PodInfo, namedPortKey } from "./pods.js";
import { type AddrRange, FAMILIES, type L4Protocol, L4_PROTOCOLS, addrInSortedRanges, mergeAddrRanges } from "./ranges.js";
import { cmpText } from "./sorted.js";
import { type FamilyVerdict, entryAllowsPort, familyAddress, familyVerdict } from "./verdict.js";

export interface MatrixPort {
  readonly port: number;
  readonly protocol: L4Protocol;
}

/** A pod of the matrix: one row and one column. */
export interface MatrixMember {
  readonly key: string;
  readonly namespace: string;
  readonly iface: InterfaceModel;
  /** The address each family's probes use (the first of that family in network-status). */
  readonly v4?: Address;
  readonly v6?: Address;
}

/** Bits of a cell byte. */
export const CELL = { present: 1, egress: 2, ingress: 4 } as const;

export interface PortGrid {
  readonly port: MatrixPort;
  /**
   * Per family, `members²` bytes, row = source, column = destination (index `from * n + to`):
   * `present` when both pods have an address of the family, `egress` when the source's egress
   * allows it, `ingress` when the destination's ingress allows it.
   */
  readonly families: Readonly<Record<Family, Uint8Array>>;
}

export interface Matrix {
  /** `ns/nad`. */
  readonly network: string;
  /** Sorted by namespace, then name. */
  readonly members: readonly MatrixMember[];
  /** Pods attached to the network that cannot be probed (no address there), with why. */
  readonly excluded: readonly { readonly pod: string; readonly reason: string }[];
  readonly grids: readonly PortGrid[];
  /** Warnings of the members' interfaces (e.g. named ports that resolve nowhere), deduplicated. */
  readonly warnings: readonly Problem[];
}

export interface MatrixOptions {
  readonly network: string;
  readonly ports: readonly MatrixPort[];
  /** Which attached pods take part; default every one. */
  readonly include?: (pod: PodInfo) => boolean;
}

/** What one side allows on one port: everything, or these addresses (sorted, disjoint, per family). */
type SideAllows = true | Readonly<Record<Family, readonly AddrRange[]>>;

/** The pods attached to `network` (with an address there) and the ones left out, sorted. */
export function matrixMembers(model: PolicyModel, network: string, include: (pod: PodInfo) => boolean = () => true): Pick<Matrix, "members" | "excluded"> {
  const members: MatrixMember[] = [];
  const excluded: { pod: string; reason: string }[] = [];
  const pods = [...model.pods.values()].filter((p) => p.attachments.has(network) && include(p));
  pods.sort((a, b) => (a.namespace === b.namespace ? cmpText(a.name, b.name) : cmpText(a.namespace, b.namespace)));
  for (const pod of pods) {
    const iface = model.interfaceModel(pod.key, network)!;
    if (iface.addresses.length === 0) {
      excluded.push({ pod: pod.key, reason: `no address on ${network}` });
      continue;
    }
    const v4 = familyAddress(iface, 4);
    const v6 = familyAddress(iface, 6);
    members.push({ key: pod.key, namespace: pod.namespace, iface, ...(v4 && { v4 }), ...(v6 && { v6 }) });
  }
  return { members, excluded };
}

function sideAllows(d: DirectionModel, port: MatrixPort): SideAllows {
  if (!d.isolated) return true;
  const ranges: Record<Family, AddrRange[]> = { 4: [], 6: [] };
  for (const entry of d.allows) {
    if (!entryAllowsPort(entry, port.protocol, port.port)) continue;
    if (entry.addresses === "any") return true;
    for (const r of entry.addresses) ranges[r.family].push(r);
  }
  return { 4: mergeAddrRanges(ranges[4]), 6: mergeAddrRanges(ranges[6]) };
}

function allows(side: SideAllows, address: Address): boolean {
  return side === true || addrInSortedRanges(side[address.family], address.family, address.value);
}

/** The matrix of a network for the given ports. */
export function reachabilityMatrix(model: PolicyModel, options: MatrixOptions): Matrix {
  const { members, excluded } = matrixMembers(model, options.network, options.include);
  const n = members.length;
  const grids = options.ports.map((port): PortGrid => {
    const egress = members.map((m) => sideAllows(m.iface.egress, port));
    const ingress = members.map((m) => sideAllows(m.iface.ingress, port));
    const families = { 4: new Uint8Array(n * n), 6: new Uint8Array(n * n) };
    for (const family of FAMILIES) {
      const grid = families[family];
      const addr = (m: MatrixMember): Address | undefined => (family === 4 ? m.v4 : m.v6);
      for (let from = 0; from < n; from++) {
        const src = addr(members[from]!);
        if (!src) continue;
        const out = egress[from]!;
        for (let to = 0; to < n; to++) {
          const dst = addr(members[to]!);
          if (!dst) continue;
          grid[from * n + to] = CELL.present | (allows(out, dst) ? CELL.egress : 0) | (allows(ingress[to]!, src) ? CELL.ingress : 0);
        }
      }
    }
    return { port, families };
  });
  const seen = new Set<string>();
  const warnings = members.flatMap((m) => m.iface.warnings).filter((w) => {
    const key = `${w.code}\u0000${w.path}\u0000${w.message}`;
    return !seen.has(key) && Boolean(seen.add(key));
  });
  return { network: options.network, members, excluded, grids, warnings };
}

/** What one cell says for one family; undefined when the pods share no address of it. */
export interface CellState {
  readonly family: Family;
  readonly allowed: boolean;
  readonly egress: boolean;
  readonly ingress: boolean;
}

/** The families of a cell, as `verdict` gives them (IPv4 first); empty when the pods share no family. */
export function cellStates(matrix: Matrix, grid: PortGrid, from: number, to: number): CellState[] {
  const n = matrix.members.length;
  const out: CellState[] = [];
  for (const family of FAMILIES) {
    const bits = grid.families[family][from * n + to]!;
    if (!(bits & CELL.present)) continue;
    const egress = (bits & CELL.egress) !== 0;
    const ingress = (bits & CELL.ingress) !== 0;
    out.push({ family, egress, ingress, allowed: from === to || (egress && ingress) });
  }
  return out;
}

/** A cell's full verdict for one family (deciding policies and rules of both sides), as `nadguard verdict` computes it. */
export function cellVerdict(matrix: Matrix, grid: PortGrid, from: number, to: number, family: Family): FamilyVerdict {
  return familyVerdict(matrix.members[from]!.iface, matrix.members[to]!.iface, family, grid.port.protocol, grid.port.port);
}

/**
 * The ports a matrix shows by default: every port the network's policies name (numeric ports, the
 * first port of a range, named ports as the given pods declare them), by protocol then number, and
 * the lowest TCP port that none of them names or covers.
 */
export function defaultMatrixPorts(model: PolicyModel, network: string, pods: readonly PodInfo[]): MatrixPort[] {
  const named = new Map<string, MatrixPort>();
  const covered: { protocol: L4Protocol; from: number; to: number }[] = [];
  for (const policy of model.policies.values()) {
    if (!policy.networks.includes(network)) continue;
    for (const rule of [...(policy.ingress ?? []), ...(policy.egress ?? [])]) {
      for (const port of rule.ports ?? []) {
        for (const r of portRanges(port, pods)) {
          covered.push(r);
          // A protocol alone (0-65535) names no port.
          if (r.from > 0) named.set(`${r.protocol}/${r.from}`, { port: r.from, protocol: r.protocol });
        }
      }
    }
  }
  let free = 1;
  while (free <= 65535 && covered.some((c) => c.protocol === "TCP" && c.from <= free && free <= c.to)) free++;
  if (free <= 65535) named.set(`TCP/${free}`, { port: free, protocol: "TCP" });
  return [...named.values()].sort((a, b) => L4_PROTOCOLS.indexOf(a.protocol) - L4_PROTOCOLS.indexOf(b.protocol) || a.port - b.port);
}

/** The ports a rule's port entry stands for: its range, or the numbers the pods give a named port. */
function portRanges(port: Port, pods: readonly PodInfo[]): { protocol: L4Protocol; from: number; to: number }[] {
  if (port.kind === "range") return [port];
  if (port.kind !== "named") return [];
  return pods.flatMap((pod) => {
    const number = pod.namedPorts.get(namedPortKey(port.name, port.protocol));
    return number === undefined ? [] : [{ protocol: port.protocol, from: number, to: number }];
  });
}
