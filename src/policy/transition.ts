// Transitions: the transaction that turns a pod's table from one desired state into another. Only
// elements change while the static part stays; elements both states share are never formatted, and
// pods sharing both states share the element diff.
import type { Element } from "../nft/objects.js";
import { NADGUARD_TABLE, quoted } from "../nft/objects.js";
import { freshTableOps } from "../nft/state.js";
import { type Op, Transaction } from "../nft/transaction.js";
import { type DesiredState, desiredTable } from "./desired-state.js";
import type { Direction } from "./policy.js";
import { FAMILIES } from "./ranges.js";
import {
  type ElementMaker,
  type Keyed,
  type RulesetOptions,
  hashElementMaker,
  hostAllElement,
  hostPortElement,
  hostProtoElement,
  intervalElements,
  isolatedElement,
  keyedElements,
  setNames,
  staticObjects,
} from "./ruleset.js";
import { type DirectionPatch, type DirectionSets, EMPTY_FAMILY_SETS, type FamilySets, cmpHashElement, cmpHostPort, cmpHostProto } from "./sets.js";
import { cmpBigint, mergeWalk, strictlySorted } from "./sorted.js";

/** What changes between two direction states, for any interface name. */
export interface DirectionDiff {
  readonly deletes: readonly ElementMaker[];
  readonly adds: readonly ElementMaker[];
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

// FamilySets objects are immutable: each is checked once in its life.
const checkedSorted = new WeakSet<FamilySets>();

function familySorted(f: FamilySets): boolean {
  if (checkedSorted.has(f)) return true;
  if (!strictlySorted(f.hosts, cmpHostPort) || !strictlySorted(f.hostsProto, cmpHostProto) || !strictlySorted(f.hostsAll, cmpBigint)) return false;
  checkedSorted.add(f);
  return true;
}

/**
 * `directionDiff` without formatting the elements both sides share: the hash sets (the bulk of a
 * direction) are walked in their sort order; the interval sets, which are small, are compared by key.
 * The same elements, in the same order, as the keyed diff. Undefined when a list is not strictly
 * sorted (a state not made by the compiler): the caller then diffs by key.
 */
function mergedDiff(direction: Direction, before: DirectionSets | undefined, after: DirectionSets | undefined): DirectionDiff | undefined {
  const s = setNames(direction);
  const deletes: ElementMaker[] = [];
  const adds: ElementMaker[] = [];
  for (const family of FAMILIES) {
    const x = before ? before[`v${family}`] : EMPTY_FAMILY_SETS;
    const y = after ? after[`v${family}`] : EMPTY_FAMILY_SETS;
    if (!familySorted(x) || !familySorted(y)) return undefined;
    const names = s[family];
    mergeWalk(x.hosts, y.hosts, cmpHostPort, (h) => deletes.push(hostPortElement(names, family, h)), (h) => adds.push(hostPortElement(names, family, h)));
    mergeWalk(x.hostsProto, y.hostsProto, cmpHostProto, (h) => deletes.push(hostProtoElement(names, family, h)), (h) => adds.push(hostProtoElement(names, family, h)));
    mergeWalk(x.hostsAll, y.hostsAll, cmpBigint, (a) => deletes.push(hostAllElement(names, family, a)), (a) => adds.push(hostAllElement(names, family, a)));
    const old: Keyed[] = [];
    const next: Keyed[] = [];
    intervalElements(names, x, old);
    intervalElements(names, y, next);
    keyedDiff(old, next, deletes, adds);
  }
  if (before && !after) deletes.push(isolatedElement(direction));
  if (after && !before) adds.push(isolatedElement(direction));
  return { deletes, adds };
}

/** Appends the makers of what only `old` has to `deletes`, of what only `next` has to `adds`, in list order. */
function keyedDiff(old: readonly Keyed[], next: readonly Keyed[], deletes: ElementMaker[], adds: ElementMaker[]): void {
  const oldKeys = new Set(old.map(([k]) => k));
  const nextKeys = new Set(next.map(([k]) => k));
  for (const [k, make] of old) if (!nextKeys.has(k)) deletes.push(make);
  for (const [k, make] of next) if (!oldKeys.has(k)) adds.push(make);
}

/** The diff of patched sets from the sets they were patched from, in `keyedElements`' order (family, then set, each sorted). */
function patchDiff(direction: Direction, patch: DirectionPatch): DirectionDiff {
  const s = setNames(direction);
  type Edit = DirectionPatch["adds"][number];
  const order = (x: Edit, y: Edit): number => x.family - y.family || cmpHashElement(x.element, y.element);
  const make = ({ family, element }: Edit): ElementMaker => hashElementMaker(s[family as 4 | 6], family, element);
  return { deletes: [...patch.deletes].sort(order).map(make), adds: [...patch.adds].sort(order).map(make) };
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
  let diff = patch && patch.from.deref() === b ? patchDiff(direction, patch) : mergedDiff(direction, b, a);
  if (!diff) {
    const deletes: ElementMaker[] = [];
    const adds: ElementMaker[] = [];
    keyedDiff(keyedElements(direction, b), keyedElements(direction, a), deletes, adds);
    diff = { deletes, adds };
  }
  cache?.set(direction, b, a, diff);
  return diff;
}

/** The transaction that turns a netns holding `before` into `after`. */
export function transitionOps(
  before: DesiredState | undefined,
  after: DesiredState | undefined,
  options: RulesetOptions = {},
  beforeOptions: RulesetOptions = options,
  diffCache?: DirectionDiffCache,
): Op[] {
  if (after === undefined) return [{ verb: "add", object: { kind: "table" } }, { verb: "delete", object: { kind: "table" } }];
  if (before === undefined) return freshTableOps(desiredTable(after, options));
  const ops: Op[] = [];
  // The same options make the same static part: nothing to compare.
  const prevStatic = beforeOptions === options ? undefined : staticObjects(beforeOptions);
  const nextStatic = beforeOptions === options ? undefined : staticObjects(options);
  if (prevStatic && nextStatic && (JSON.stringify(prevStatic.sets) !== JSON.stringify(nextStatic.sets) || JSON.stringify(prevStatic.chains) !== JSON.stringify(nextStatic.chains))) return freshTableOps(desiredTable(after, options));
  for (const c of nextStatic && prevStatic ? nextStatic.chains : []) {
    const a = prevStatic!.rules.filter((r) => r.chain === c.name).map((r) => r.rule);
    const b = nextStatic!.rules.filter((r) => r.chain === c.name);
    if (a.join("\n") !== b.map((r) => r.rule).join("\n")) {
      ops.push({ verb: "flush", object: c });
      for (const r of b) ops.push({ verb: "add", object: r });
    }
  }
  const deletes: Element[] = [];
  const adds: Element[] = [];
  const names = [...new Set([...before.interfaces, ...after.interfaces].map((i) => i.name))];
  for (const name of names) {
    const a = before.interfaces.find((i) => i.name === name);
    const b = after.interfaces.find((i) => i.name === name);
    for (const direction of ["ingress", "egress"] as const) {
      const diff = directionDiff(direction, a?.[direction], b?.[direction], diffCache);
      const ifname = quoted(name);
      for (const make of diff.deletes) deletes.push(make(ifname));
      for (const make of diff.adds) adds.push(make(ifname));
    }
  }
  // Deletes first, so that a new element never overlaps one on its way out (interval sets refuse overlaps).
  const bySet = (x: Element, y: Element): number => (x.set < y.set ? -1 : x.set > y.set ? 1 : 0);
  return [
    ...deletes.sort(bySet).map((object): Op => ({ verb: "delete", object })),
    ...ops,
    ...adds.sort(bySet).map((object): Op => ({ verb: "add", object })),
  ];
}

/** The script of a transition (see `transitionOps`). */
export function opsScript(ops: readonly Op[]): string {
  return new Transaction(NADGUARD_TABLE).append(ops).render();
}
