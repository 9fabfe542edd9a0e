// The one transaction that takes a netns from what the enforcer knows it holds to what the compiler
// wants: nothing when equal; element adds and deletes when only set contents changed (static
// chains, dynamic sets, as kubernetes-sigs/knftables advises); the chains whose rules changed
// flushed and rebuilt in the same transaction; a fresh table (add + delete + recreate, all or
// nothing) when sets or chains themselves changed or when the netns's content is unknown.
import { keyText, priorityValue, setTypeText, valueText, type Chain, type Element, type NftMap, type NftSet, type Rule } from "../nft/objects.js";
import { elementText } from "../nft/render.js";
import { freshTableOps, stateOps, type TableState } from "../nft/state.js";
import type { Op } from "../nft/transaction.js";

/** What a netns holds, as far as the enforcer knows: a table, no table, or unknown (never seen, or a failed apply). */
export type Known = { readonly kind: "table"; readonly state: TableState } | { readonly kind: "absent" } | { readonly kind: "unknown" };

export type ApplyMode =
  /** Nothing to do. */
  | "none"
  /** Element adds and deletes only. */
  | "elements"
  /** Some chains flushed and refilled (and elements changed) in one transaction. */
  | "chains"
  /** The table replaced whole. */
  | "fresh"
  /** The table deleted: nothing to enforce in this netns any more. */
  | "remove";

export interface Plan {
  readonly mode: ApplyMode;
  readonly ops: readonly Op[];
  /** Set and map elements the netns gains: what the desired table holds that the known one does not (a changed value counts as one removed and one added). */
  readonly added: number;
  /** Elements the netns loses; undefined when what it held is unknown. */
  readonly removed: number | undefined;
}

/** `add table` + `delete table`: removes the table whether or not it exists (nft 1.0.6 has no `destroy`). */
export const REMOVE_TABLE_OPS: readonly Op[] = [
  { verb: "add", object: { kind: "table" } },
  { verb: "delete", object: { kind: "table" } },
];

function chainKey(c: Chain): string {
  const base = c.base ? `${c.base.type}/${c.base.hook}/${priorityValue(c.base.priority) ?? c.base.priority}/${c.base.policy ?? "accept"}` : "regular";
  return `${c.name} ${base} ${c.comment ?? ""}`;
}

function setKey(s: NftSet | NftMap): string {
  const { key: type, value } = setTypeText(s);
  const flags = [...new Set(s.flags ?? [])].sort().join(",");
  return [s.kind, s.name, type, value, flags, s.timeout ?? "", s.size ?? "", s.policy ?? "", s.comment ?? ""].join("|");
}

/**
 * A rule's text in a form that compares equal however nft prints it back: whitespace collapsed
 * and the items of anonymous sets (`{ b, a }`) sorted, which the kernel reorders.
 */
export function normalizeRuleText(text: string): string {
  const spaced = text.trim().replace(/\s+/g, " ");
  return spaced.replace(/\{([^{}]*)\}/g, (_, items: string) => `{ ${items.split(",").map((i) => i.trim()).sort().join(", ")} }`);
}

function rulesByChain(rules: readonly Rule[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of rules) {
    const text = `${normalizeRuleText(r.rule)} #${r.comment ?? ""}`;
    const list = out.get(r.chain);
    if (list) list.push(text);
    else out.set(r.chain, [text]);
  }
  return out;
}

const sortedKeys = <T>(items: readonly T[], key: (item: T) => string): string => items.map(key).sort().join("\n");

/**
 * What planning compares of a state, computed once per state object: a partial sync plans from the
 * state applied last time (indexed when it was the desired one) to the new desired state, so each
 * state is indexed once instead of once per comparison. States are never mutated.
 */
interface Indexed {
  readonly skeleton: string;
  /** Per chain, its normalized rules in order, joined. */
  readonly rules: Map<string, string>;
  /** By `set NUL key`: the element (the last of duplicates, at the first one's place) and what else must match (value and full text). */
  readonly elements: Map<string, { readonly element: Element; readonly rest: string }>;
}

const indexes = new WeakMap<TableState, Indexed>();

function indexed(state: TableState): Indexed {
  let index = indexes.get(state);
  if (index) return index;
  const elements = new Map<string, { element: Element; rest: string }>();
  for (const e of state.elements) {
    const value = valueText(e);
    elements.set(`${e.set}\u0000${keyText(e)}`, { element: e, rest: `${value === undefined ? "\u0001" : `\u0002${value}`}\u0000${elementText(e)}` });
  }
  const rules = new Map([...rulesByChain(state.rules)].map(([chain, list]) => [chain, list.join("\n")] as const));
  const skeleton = `${state.comment ?? ""}\u0000${sortedKeys(state.chains, chainKey)}\u0000${sortedKeys(state.sets, setKey)}`;
  index = { skeleton, rules, elements };
  indexes.set(state, index);
  return index;
}

/** As `diffElements` (nft/state.ts), over indexed states: deletes first, then adds; a changed value or text is a delete and an add. */
function elementOpsBetween(before: Indexed, after: Indexed): Op[] {
  const deletes: Op[] = [];
  const adds: Op[] = [];
  for (const [key, old] of before.elements) {
    const next = after.elements.get(key);
    if (next === undefined || next.rest !== old.rest) deletes.push({ verb: "delete", object: old.element });
  }
  for (const [key, next] of after.elements) {
    const old = before.elements.get(key);
    if (old === undefined || old.rest !== next.rest) adds.push({ verb: "add", object: next.element });
  }
  return [...deletes, ...adds];
}

/** Whether two states have the same chains and sets (definitions, not contents). */
export function sameSkeleton(a: TableState, b: TableState): boolean {
  return a === b || indexed(a).skeleton === indexed(b).skeleton;
}

/** Whether two states hold the same table: skeleton, rules in order per chain, and elements. */
export function sameState(a: TableState, b: TableState): boolean {
  if (a === b) return true;
  if (!sameSkeleton(a, b)) return false;
  const ia = indexed(a);
  const ib = indexed(b);
  if (ia.rules.size !== ib.rules.size || [...ia.rules].some(([chain, list]) => ib.rules.get(chain) !== list)) return false;
  return elementOpsBetween(ia, ib).length === 0;
}

const NOTHING: Plan = { mode: "none", ops: [], added: 0, removed: 0 };

/** How many element ops add and how many delete. */
function counted(ops: readonly Op[]): { added: number; removed: number } {
  const removed = ops.filter((op) => op.verb === "delete" && op.object.kind === "element").length;
  return { added: ops.filter((op) => op.verb === "add" && op.object.kind === "element").length, removed };
}

/**
 * The plan of a transaction the compiler already made between two desired states (the element adds
 * and deletes of `transitionOps`), without indexing or formatting either table: work in proportion
 * to what changed. Undefined unless it changes elements only (the caller then plans from the tables).
 */
export function elementPlan(ops: readonly Op[]): Plan | undefined {
  if (ops.some((op) => op.object.kind !== "element")) return undefined;
  return ops.length === 0 ? NOTHING : { mode: "elements", ops, ...counted(ops) };
}

/** The element change from what is known to a desired table that replaces it whole. */
function replacedElements(known: Known, desired: TableState): { added: number; removed: number | undefined } {
  if (known.kind === "table") return counted(elementOpsBetween(indexed(known.state), indexed(desired)));
  return { added: indexed(desired).elements.size, removed: known.kind === "absent" ? 0 : undefined };
}

/**
 * The plan that builds `desired` whole. A netns known to hold no table (read back as not-found, or
 * emptied by nadguard) gets no `delete table`: deleting a table makes the commit wait in the kernel
 * (8-16 ms on the bench machine, BENCHMARKS.md section 3).
 */
function freshPlan(known: Known, desired: TableState): Plan {
  return { mode: "fresh", ops: known.kind === "absent" ? stateOps(desired) : freshTableOps(desired), ...replacedElements(known, desired) };
}

/** The transaction from `known` to `desired` (undefined: no table wanted), with its element counts. Pure. */
export function planTransaction(known: Known, desired: TableState | undefined): Plan {
  if (desired === undefined) {
    if (known.kind === "absent") return NOTHING;
    return { mode: "remove", ops: REMOVE_TABLE_OPS, added: 0, removed: known.kind === "table" ? indexed(known.state).elements.size : undefined };
  }
  if (known.kind !== "table" || !sameSkeleton(known.state, desired)) return freshPlan(known, desired);
  if (known.state === desired) return NOTHING;
  const before = indexed(known.state);
  const after = indexed(desired);
  const elementOps = elementOpsBetween(before, after);
  const rebuilt: Op[] = [];
  for (const c of desired.chains) {
    if ((before.rules.get(c.name) ?? "") === (after.rules.get(c.name) ?? "")) continue;
    rebuilt.push({ verb: "flush", object: { kind: "chain", name: c.name } });
    for (const r of desired.rules) {
      if (r.chain !== c.name) continue;
      const { handle: _h, index: _i, ...plain } = r;
      rebuilt.push({ verb: "add", object: plain });
    }
  }
  if (rebuilt.length === 0) return elementOps.length === 0 ? NOTHING : { mode: "elements", ops: elementOps, ...counted(elementOps) };
  // Deletes first (no new element ever overlaps one on its way out), then the chains, then adds.
  const deletes = elementOps.filter((op) => op.verb === "delete");
  const adds = elementOps.filter((op) => op.verb !== "delete");
  return { mode: "chains", ops: [...deletes, ...rebuilt, ...adds], ...counted(elementOps) };
}
