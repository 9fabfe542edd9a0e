// Sorted lists, the form every list of set elements and peer addresses is kept in: comparison,
// binary search, equality and the walk of two lists that yields what each has alone.

export const cmpBigint = (x: bigint, y: bigint): number => (x < y ? -1 : x > y ? 1 : 0);

/** Code-unit order of strings (not the locale's): names, namespaces. */
export const cmpText = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

/** Index of `item` in `list`, sorted by `cmp`, or -(insertion point) - 1: the binary search of this folder. */
export function search<T>(list: readonly T[], item: T, cmp: (x: T, y: T) => number): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = cmp(list[mid]!, item);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

/** Inserts `item` (add) or removes it; false when it already was so. */
export function editSorted<T>(list: T[], item: T, cmp: (x: T, y: T) => number, add: boolean): boolean {
  const i = search(list, item, cmp);
  if (add && i < 0) list.splice(-i - 1, 0, item);
  else if (!add && i >= 0) list.splice(i, 1);
  else return false;
  return true;
}

export function sameList<T>(x: readonly T[], y: readonly T[], same: (a: T, b: T) => boolean): boolean {
  if (x === y) return true;
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (!same(x[i]!, y[i]!)) return false;
  return true;
}

export function strictlySorted<T>(list: readonly T[], cmp: (x: T, y: T) => number): boolean {
  for (let i = 1; i < list.length; i++) if (cmp(list[i - 1]!, list[i]!) >= 0) return false;
  return true;
}

/** Walks two strictly sorted lists: `gone` gets what only `a` has, `come` what only `b` has, in list order. */
export function mergeWalk<T>(a: readonly T[], b: readonly T[], cmp: (x: T, y: T) => number, gone: (x: T) => void, come: (y: T) => void): void {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const c = cmp(a[i]!, b[j]!);
    if (c === 0) {
      i++;
      j++;
    } else if (c < 0) gone(a[i++]!);
    else come(b[j++]!);
  }
  while (i < a.length) gone(a[i++]!);
  while (j < b.length) come(b[j++]!);
}
