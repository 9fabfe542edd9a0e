// A whole table as data: what the compiler wants a netns to hold, what the fake holds, and what a
// listing reads back. Rendered in one canonical order so that two equal states give equal text, and
// diffed set by set for incremental updates.
import { elementText } from "./render.js";
import { keyText, valueText, withoutHandle } from "./objects.js";
import type { Chain, Element, NftMap, NftSet, Rule, Table } from "./objects.js";
import type { Op } from "./transaction.js";

export interface TableState {
  readonly comment?: string;
  readonly chains: readonly Chain[];
  /** Sets and maps share one namespace in nftables. */
  readonly sets: readonly (NftSet | NftMap)[];
  readonly elements: readonly Element[];
  /** In chain order: the rules of one chain keep their relative order. */
  readonly rules: readonly Rule[];
}

export const EMPTY_STATE: TableState = { chains: [], sets: [], elements: [], rules: [] };

const byName = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The operations that build `state` in an existing empty table, in canonical order: table, chains
 * (by name), sets and maps (by name), elements (grouped by set, by key text), rules (by chain name,
 * in their order). Chains come before elements because verdict maps jump to them; sets before rules
 * because rules reference them. Handles are dropped: they are assigned by the kernel.
 */
export function stateOps(state: TableState): Op[] {
  const ops: Op[] = [];
  const tableObj: Table = state.comment === undefined ? { kind: "table" } : { kind: "table", comment: state.comment };
  ops.push({ verb: "add", object: tableObj });
  for (const c of [...state.chains].sort(byName)) ops.push({ verb: "add", object: withoutHandle(c) });
  for (const s of [...state.sets].sort(byName)) ops.push({ verb: "add", object: withoutHandle(s) });
  const elements = [...state.elements].sort((a, b) => compareText(a.set, b.set) || compareText(keyText(a), keyText(b)));
  for (const e of elements) ops.push({ verb: "add", object: e });
  const chainOrder = new Map([...state.chains].sort(byName).map((c, i) => [c.name, i] as const));
  const rules = state.rules
    .map((r, i) => ({ r, i }))
    .sort((a, b) => (chainOrder.get(a.r.chain) ?? Infinity) - (chainOrder.get(b.r.chain) ?? Infinity) || compareText(a.r.chain, b.r.chain) || a.i - b.i);
  for (const { r } of rules) {
    const { handle: _h, index: _i, ...plain } = r;
    ops.push({ verb: "add", object: plain });
  }
  return ops;
}

/**
 * Replaces whatever the table holds by `state` in one transaction: `add table` (so that the delete
 * cannot fail on a fresh netns), `delete table`, then `stateOps`. bookworm's nft 1.0.6 has no
 * `destroy` (added in nftables 1.0.8), and the all-or-nothing commit means no packet sees the table
 * half built.
 */
export function freshTableOps(state: TableState): Op[] {
  return [{ verb: "add", object: { kind: "table" } }, { verb: "delete", object: { kind: "table" } }, ...stateOps(state)];
}

/**
 * The operations that turn the elements `before` of one set or map into `after`, identified by key
 * text: deletes first, then adds. A map element whose value, timeout or comment changed is deleted
 * and added again (nft refuses `add` of an existing key with another value). Duplicate keys in a
 * list count once (the last wins). Returns no operations when nothing changed.
 */
export function diffElements(before: readonly Element[], after: readonly Element[]): Op[] {
  const old = new Map(before.map((e) => [`${e.set}\u0000${keyText(e)}`, e] as const));
  const next = new Map(after.map((e) => [`${e.set}\u0000${keyText(e)}`, e] as const));
  const deletes: Op[] = [];
  const adds: Op[] = [];
  for (const [key, e] of old) {
    const replacement = next.get(key);
    if (replacement === undefined || !sameElement(e, replacement)) deletes.push({ verb: "delete", object: e });
  }
  for (const [key, e] of next) {
    const previous = old.get(key);
    if (previous === undefined || !sameElement(previous, e)) adds.push({ verb: "add", object: e });
  }
  return [...deletes, ...adds];
}

function sameElement(a: Element, b: Element): boolean {
  return valueText(a) === valueText(b) && elementText(a) === elementText(b);
}
