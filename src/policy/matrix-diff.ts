// What a change of the cluster opens and closes (`--diff`): the cells of two matrices of
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

/** The reason a side gives for a change of the pair's outcome, if it has one. */
function sideReason(b: SideVerdict, a: SideVerdict, allowedNow: boolean): string | undefined {
  if (!b.allowed && a.allowed) return openedSide(b, a);
  if (b.allowed && !a.allowed) return closedSide(b, a);
  // A side that allowed before and after, by other rules, names what allows it now.
  if (allowedNow && a.isolated && matches(a) !== matches(b)) return `${where(a)}: allowed by ${matches(a)}`;
  return undefined;
}

/** The rules that allow the flow on its isolated sides. */
function allowingRules(v: FamilyVerdict): string[] {
  return [v.egress, v.ingress].filter((s) => s.isolated).map((s) => `${where(s)}: allowed by ${matches(s)}`);
}

/** The change of one family of a pair between two verdicts (undefined: absent), or undefined when its outcome is the same. */
export function familyChange(before: FamilyVerdict | undefined, after: FamilyVerdict | undefined, absentWhy: () => string): { change: ChangeKind; because: string[] } | undefined {
  const is = after?.allowed ?? false;
  if ((before?.allowed ?? false) === is) return undefined;
  const change: ChangeKind = is ? "opened" : "closed";
  if (!before || !after) return { change, because: [absentWhy(), ...(after ? allowingRules(after) : [])] };
  const because = [sideReason(before.egress, after.egress, is), sideReason(before.ingress, after.ingress, is)].filter((r): r is string => r !== undefined);
  return { change, because };
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
  const sides = [side(before), side(after)] as const;
  const keys = [...new Set([...before.members.map((m) => m.key), ...after.members.map((m) => m.key)])].sort();
  const cells: CellChange[] = [];
  before.grids.forEach((_, g) => {
    for (const from of keys) for (const to of keys) if (from !== to) cells.push(...pairChanges(sides, g, from, to));
  });
  return { ...groupChanges(cells), cells };
}

/** One matrix of a diff, with its pods' indexes. */
interface DiffSide {
  readonly matrix: Matrix;
  readonly index: ReadonlyMap<string, number>;
}

function side(matrix: Matrix): DiffSide {
  return { matrix, index: new Map(matrix.members.map((member, i) => [member.key, i])) };
}

/** The verdict of a pair for a family on one side, when the pair has one there. */
function sideVerdictOf(s: DiffSide, g: number, from: string, to: string, family: Family): FamilyVerdict | undefined {
  const f = s.index.get(from);
  const t = s.index.get(to);
  if (f === undefined || t === undefined) return undefined;
  const grid = s.matrix.grids[g]!;
  return cellStates(s.matrix, grid, f, t).some((c) => c.family === family) ? cellVerdict(s.matrix, grid, f, t, family) : undefined;
}

/** Whether the pair is allowed for a family on one side (cheap: no full verdict). */
function allowedOn(s: DiffSide, g: number, from: string, to: string, family: Family): boolean {
  const f = s.index.get(from);
  const t = s.index.get(to);
  if (f === undefined || t === undefined) return false;
  return cellStates(s.matrix, s.matrix.grids[g]!, f, t).some((c) => c.family === family && c.allowed);
}

function pairChanges([before, after]: readonly [DiffSide, DiffSide], g: number, from: string, to: string): CellChange[] {
  const out: CellChange[] = [];
  for (const family of [4, 6] as const) {
    if (allowedOn(before, g, from, to, family) === allowedOn(after, g, from, to, family)) continue;
    const bv = sideVerdictOf(before, g, from, to, family);
    const av = sideVerdictOf(after, g, from, to, family);
    const found = familyChange(bv, av, () => absentWhy({ before: before.matrix, after: after.matrix, from, to, family, sharedAfter: av !== undefined }))!;
    out.push({ from, to, port: before.matrix.grids[g]!.port, family, ...found, ...(bv && { before: bv }), ...(av && { after: av }) });
  }
  return out;
}

/** Why a pair has a verdict of the family on one side of the change only. */
function absentWhy(c: { before: Matrix; after: Matrix; from: string; to: string; family: Family; sharedAfter: boolean }): string {
  const on = (m: Matrix, pod: string): boolean => m.members.some((member) => member.key === pod);
  for (const pod of [c.from, c.to]) {
    if (!on(c.before, pod)) return `pod ${pod} joins ${c.after.network}`;
    if (!on(c.after, pod)) return `pod ${pod} leaves ${c.after.network}`;
  }
  return `${c.from} and ${c.to} ${c.sharedAfter ? "now" : "no longer"} share an IPv${c.family} address on ${c.after.network}`;
}

/** `opens 3 flows, closes 12`. */
export function diffSummary(diff: Pick<MatrixDiff, "opened" | "closed">): string {
  const n = diff.opened.length;
  return `opens ${n} flow${n === 1 ? "" : "s"}, closes ${diff.closed.length}`;
}
