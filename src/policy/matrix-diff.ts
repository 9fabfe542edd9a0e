// What a change of the cluster opens and closes (issue 14, `--diff`): the cells of two matrices of
// the same network and ports (before and after a what-if) whose verdict differs, or the families
// of two verdicts of one pair, each with the rule responsible, read from the two full verdicts of
// the cell (the deciding policies and rules of both sides). A flow is one pair and port; its
// families are listed together when they change alike.
import type { Family } from "../networks/addresses.js";
import { type Matrix, type MatrixPort, cellStates, cellVerdict } from "./matrix.js";
import { type FamilyVerdict, type SideVerdict, matchText } from "./verdict.js";

export type ChangeKind = "opened" | "closed";

/** One family of one flow that changes. */
export interface CellChange {
  readonly from: string;
  readonly to: string;
  readonly port: MatrixPort;
  readonly family: Family;
  readonly change: ChangeKind;
  /** The verdicts before and after; absent when the pair was (or is) not on the network with that family. */
  readonly before?: FamilyVerdict;
  readonly after?: FamilyVerdict;
  /** The rules responsible, one sentence per side that changed, e.g. `ingress x/a net1: allowed by x/p ingress[0] from[0]`. */
  readonly because: readonly string[];
}

/** Changes of one flow that share their kind and reasons (e.g. both families opened by the same rule). */
export interface FlowChange {
  readonly from: string;
  readonly to: string;
  readonly port: MatrixPort;
  readonly families: readonly Family[];
  readonly change: ChangeKind;
  readonly because: readonly string[];
}

export interface MatrixDiff {
  readonly opened: readonly FlowChange[];
  readonly closed: readonly FlowChange[];
  /** Per family, for machines. */
  readonly cells: readonly CellChange[];
}

function where(s: SideVerdict): string {
  return `${s.direction} ${s.pod} ${s.interface ?? "?"}`;
}

function matches(s: SideVerdict): string {
  return s.allowedBy.map((m) => matchText(s.direction, m)).join(", ");
}

/** Why one side now allows what it denied. */
function openedSide(before: SideVerdict, after: SideVerdict): string {
  if (after.isolated) return `${where(after)}: allowed by ${matches(after)}`;
  if (!after.managed) return `${where(after)}: no longer enforced (${after.unmanagedReason ?? "not managed"})`;
  return `${where(after)}: no longer isolated (was isolated by ${before.isolatedBy.join(", ")})`;
}

/** Why one side now denies what it allowed. */
function closedSide(before: SideVerdict, after: SideVerdict): string {
  const by = `isolated by ${after.isolatedBy.join(", ")}`;
  if (before.isolated) return `${where(after)}: no longer allowed (was allowed by ${matches(before)}); ${by}`;
  return `${where(after)}: now ${by}, and no rule allows it`;
}

/** The change of one family of a pair between two verdicts (undefined: absent), or undefined when its outcome is the same. */
export function familyChange(before: FamilyVerdict | undefined, after: FamilyVerdict | undefined, absentWhy: () => string): { change: ChangeKind; because: string[] } | undefined {
  const was = before?.allowed ?? false;
  const is = after?.allowed ?? false;
  if (was === is) return undefined;
  if (!before || !after) {
    const because = [absentWhy()];
    if (after) for (const s of [after.egress, after.ingress]) if (s.isolated) because.push(`${where(s)}: allowed by ${matches(s)}`);
    return { change: is ? "opened" : "closed", because };
  }
  const because: string[] = [];
  for (const [b, a] of [[before.egress, after.egress], [before.ingress, after.ingress]] as const) {
    if (!b.allowed && a.allowed) because.push(openedSide(b, a));
    else if (b.allowed && !a.allowed) because.push(closedSide(b, a));
    else if (is && a.isolated && !sameMatches(a, b)) because.push(`${where(a)}: allowed by ${matches(a)}`);
  }
  return { change: is ? "opened" : "closed", because };
}

function sameMatches(a: SideVerdict, b: SideVerdict): boolean {
  return matches(a) === matches(b);
}

/** Groups per-family changes of one flow that share kind and reasons, in the order given. */
export function groupChanges(cells: readonly CellChange[]): { opened: FlowChange[]; closed: FlowChange[] } {
  const groups = new Map<string, FlowChange & { families: Family[] }>();
  for (const c of cells) {
    const key = JSON.stringify([c.from, c.to, c.port.port, c.port.protocol, c.change, c.because.map((b) => b.replace(/ \(IPv[46]\)$/, ""))]);
    const group = groups.get(key);
    if (group) group.families.push(c.family);
    else groups.set(key, { from: c.from, to: c.to, port: c.port, families: [c.family], change: c.change, because: c.because });
  }
  const all = [...groups.values()];
  return { opened: all.filter((g) => g.change === "opened"), closed: all.filter((g) => g.change === "closed") };
}

/**
 * The cells whose verdict differs between two matrices of the same network and ports (pods may
 * differ: a pod that joins or leaves opens or closes its allowed flows). A pod's flow to itself
 * never changes and is left out.
 */
export function diffMatrices(before: Matrix, after: Matrix): MatrixDiff {
  const indexOf = (m: Matrix): Map<string, number> => new Map(m.members.map((member, i) => [member.key, i]));
  const bi = indexOf(before);
  const ai = indexOf(after);
  const keys = [...new Set([...before.members.map((m) => m.key), ...after.members.map((m) => m.key)])].sort();
  const cells: CellChange[] = [];
  before.grids.forEach((bGrid, g) => {
    const aGrid = after.grids[g]!;
    for (const from of keys) {
      for (const to of keys) {
        if (from === to) continue;
        const [bf, bt, af, at] = [bi.get(from), bi.get(to), ai.get(from), ai.get(to)];
        const bStates = bf !== undefined && bt !== undefined ? cellStates(before, bGrid, bf, bt) : [];
        const aStates = af !== undefined && at !== undefined ? cellStates(after, aGrid, af, at) : [];
        for (const family of [4, 6] as const) {
          const b = bStates.find((s) => s.family === family);
          const a = aStates.find((s) => s.family === family);
          if ((b?.allowed ?? false) === (a?.allowed ?? false)) continue;
          const bv = b && cellVerdict(before, bGrid, bf!, bt!, family);
          const av = a && cellVerdict(after, aGrid, af!, at!, family);
          const found = familyChange(bv, av, () => absentWhy(before, after, from, to, family, a !== undefined))!;
          cells.push({ from, to, port: bGrid.port, family, ...found, ...(bv && { before: bv }), ...(av && { after: av }) });
        }
      }
    }
  });
  return { ...groupChanges(cells), cells };
}

/** Why a pair has a verdict of the family on one side of the change only. */
function absentWhy(before: Matrix, after: Matrix, from: string, to: string, family: Family, sharedAfter: boolean): string {
  const on = (m: Matrix, pod: string): boolean => m.members.some((member) => member.key === pod);
  for (const pod of [from, to]) {
    if (!on(before, pod)) return `pod ${pod} joins ${after.network}`;
    if (!on(after, pod)) return `pod ${pod} leaves ${after.network}`;
  }
  return `${from} and ${to} ${sharedAfter ? "now" : "no longer"} share an IPv${family} address on ${after.network}`;
}

/** `opens 3 flows, closes 12`. */
export function diffSummary(diff: Pick<MatrixDiff, "opened" | "closed">): string {
  const n = diff.opened.length;
  return `opens ${n} flow${n === 1 ? "" : "s"}, closes ${diff.closed.length}`;
}
