// Interface naming inside the pod, as Multus does it (pkg/multus getIfname): an explicitly
// requested name wins; otherwise `net<idx>`, where idx is the delegate's position in Multus's
// delegate list with the cluster network at 0. An explicitly named element still uses up its
// index, so `a@foo,b` gives foo and net2 (not net1).
//
// Edge case: a Multus configured with `defaultNetworks` puts those delegates between the cluster
// network and the pod's own networks, which shifts every automatic name; nadguard assumes the
// usual configuration without them.

/** The cluster (primary) network is delegate 0; the annotation's first element is delegate 1. */
export const FIRST_SECONDARY_DELEGATE = 1;

/** The name Multus gives to the element at 0-based `index` of the annotation when none is requested. */
export function automaticInterfaceName(index: number): string {
  return `net${index + FIRST_SECONDARY_DELEGATE}`;
}

/** The interface the element at 0-based `index` gets: `requested` when given, else `net<index+1>`. */
export function interfaceNameFor(index: number, requested: string | undefined): string {
  return requested ?? automaticInterfaceName(index);
}

/**
 * Pairs `[first, later]` of positions in `names` that carry the same interface name, one pair per
 * later duplicate (a name used three times gives two pairs, both pointing at the first).
 * `undefined` entries (interface unknown) are skipped. Returns an empty list when all differ.
 */
export function findDuplicateInterfaces(names: readonly (string | undefined)[]): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  // Annotations list a handful of networks: comparing pairs allocates nothing and beats a Map
  // below a few dozen names (measured on the admission path); past that, a Map keeps it linear.
  if (names.length > 32) return duplicatesByMap(names, pairs);
  for (let i = 1; i < names.length; i++) {
    const name = names[i];
    if (name === undefined) continue;
    for (let j = 0; j < i; j++) {
      if (names[j] === name) {
        pairs.push([j, i]);
        break;
      }
    }
  }
  return pairs;
}

function duplicatesByMap(names: readonly (string | undefined)[], pairs: Array<[number, number]>): Array<[number, number]> {
  const firstSeen = new Map<string, number>();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (name === undefined) continue;
    const first = firstSeen.get(name);
    if (first === undefined) firstSeen.set(name, i);
    else pairs.push([first, i]);
  }
  return pairs;
}
