// The one transaction that takes a netns from what the enforcer knows it holds to what the
// compiler wants (issue 4, section 1): nothing when equal; element adds and deletes when only set
// contents changed (FIELD-NOTES: static chains, dynamic sets); the chains whose rules changed
// flushed and rebuilt in the same transaction; a fresh table (add + delete + recreate, all or
// nothing) when sets or chains themselves changed or when the netns's content is unknown.
import { priorityValue, type Chain, type NftMap, type NftSet, type Rule } from "../nft/objects.js";
import { diffElements, freshTableOps, type TableState } from "../nft/state.js";
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
  const type = s.typeof ?? (typeof s.type === "string" ? s.type : (s.type ?? []).join(" . "));
  const value = s.kind === "map" ? (typeof s.value === "string" ? s.value : s.value.join(" . ")) : "";
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
  for (const r of rules) out.set(r.chain, [...(out.get(r.chain) ?? []), `${normalizeRuleText(r.rule)} #${r.comment ?? ""}`]);
  return out;
}

const sortedKeys = <T>(items: readonly T[], key: (item: T) => string): string => items.map(key).sort().join("\n");

/** Whether two states have the same chains and sets (definitions, not contents). */
export function sameSkeleton(a: TableState, b: TableState): boolean {
  return (a.comment ?? "") === (b.comment ?? "") && sortedKeys(a.chains, chainKey) === sortedKeys(b.chains, chainKey) && sortedKeys(a.sets, setKey) === sortedKeys(b.sets, setKey);
}

/** Whether two states hold the same table: skeleton, rules in order per chain, and elements. */
export function sameState(a: TableState, b: TableState): boolean {
  if (!sameSkeleton(a, b)) return false;
  const ra = rulesByChain(a.rules);
  const rb = rulesByChain(b.rules);
  if (ra.size !== rb.size || [...ra].some(([chain, list]) => rb.get(chain)?.join("\n") !== list.join("\n"))) return false;
  return diffElements(a.elements, b.elements).length === 0;
}

/** The transaction from `known` to `desired` (undefined: no table wanted). Pure. */
export function planTransaction(known: Known, desired: TableState | undefined): Plan {
  if (desired === undefined) return known.kind === "absent" ? { mode: "none", ops: [] } : { mode: "remove", ops: REMOVE_TABLE_OPS };
  if (known.kind !== "table" || !sameSkeleton(known.state, desired)) return { mode: "fresh", ops: freshTableOps(desired) };
  const before = known.state;
  const elementOps = diffElements(before.elements, desired.elements);
  const oldRules = rulesByChain(before.rules);
  const newRules = rulesByChain(desired.rules);
  const rebuilt: Op[] = [];
  for (const c of desired.chains) {
    if ((oldRules.get(c.name) ?? []).join("\n") === (newRules.get(c.name) ?? []).join("\n")) continue;
    rebuilt.push({ verb: "flush", object: { kind: "chain", name: c.name } });
    for (const r of desired.rules) {
      if (r.chain !== c.name) continue;
      const { handle: _h, index: _i, ...plain } = r;
      rebuilt.push({ verb: "add", object: plain });
    }
  }
  if (rebuilt.length === 0) return elementOps.length === 0 ? { mode: "none", ops: [] } : { mode: "elements", ops: elementOps };
  // Deletes first (no new element ever overlaps one on its way out), then the chains, then adds.
  const deletes = elementOps.filter((op) => op.verb === "delete");
  const adds = elementOps.filter((op) => op.verb !== "delete");
  return { mode: "chains", ops: [...deletes, ...rebuilt, ...adds] };
}
