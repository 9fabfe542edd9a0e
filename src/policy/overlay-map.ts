// A map carried from one recompile to the next without copying: the next generation's map is the
// previous one's entries (shared, never mutated) plus what changed since, so that one pod relabel
// costs work in proportion to what changed, not a copy of every pod, state and set of the cluster.
// It behaves exactly as a Map built by copying and then editing would, iteration order included.

/** A ReadonlyMap over a shared base, editable in its own layer; see `overlay`. */
export class OverlayMap<K, V> implements ReadonlyMap<K, V> {
  readonly #base: ReadonlyMap<K, V>;
  /** Base keys hidden by `delete` (and not set again since: a key set after its delete is in `#added`). */
  readonly #deleted: Set<K>;
  /** New values of base keys still in place. */
  readonly #changed: Map<K, V>;
  /** Keys not in the base, or deleted from it and set again: after the base's, in insertion order. */
  readonly #added: Map<K, V>;

  constructor(base: ReadonlyMap<K, V>, deleted = new Set<K>(), changed = new Map<K, V>(), added = new Map<K, V>()) {
    this.#base = base;
    this.#deleted = deleted;
    this.#changed = changed;
    this.#added = added;
  }

  /** Entries edited in this layer: how far it has drifted from its base. */
  get delta(): number {
    return this.#deleted.size + this.#changed.size + this.#added.size;
  }

  /** Entries of the shared base. */
  get baseSize(): number {
    return this.#base.size;
  }

  /** A new overlay with the same entries over the same base (the layer copied, the base shared). */
  fork(): OverlayMap<K, V> {
    return new OverlayMap(this.#base, new Set(this.#deleted), new Map(this.#changed), new Map(this.#added));
  }

  get size(): number {
    return this.#base.size - this.#deleted.size + this.#added.size;
  }

  #inBase(key: K): boolean {
    return this.#base.has(key) && !(this.#deleted.size > 0 && this.#deleted.has(key));
  }

  // Empty layers are skipped: most lookups are of keys no edit touched, one read of the base.
  get(key: K): V | undefined {
    if (this.#added.size > 0 && this.#added.has(key)) return this.#added.get(key);
    if (this.#deleted.size > 0 && this.#deleted.has(key)) return undefined;
    if (this.#changed.size > 0 && this.#changed.has(key)) return this.#changed.get(key);
    return this.#base.get(key);
  }

  has(key: K): boolean {
    return (this.#added.size > 0 && this.#added.has(key)) || this.#inBase(key);
  }

  set(key: K, value: V): this {
    if (this.#inBase(key)) this.#changed.set(key, value);
    else this.#added.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (this.#added.delete(key)) return true;
    if (!this.#inBase(key)) return false;
    this.#deleted.add(key);
    this.#changed.delete(key);
    return true;
  }

  *entries(): MapIterator<[K, V]> {
    const edited = this.#deleted.size > 0 || this.#changed.size > 0;
    for (const entry of this.#base) {
      if (!edited) {
        yield entry;
        continue;
      }
      const [key] = entry;
      if (this.#deleted.has(key)) continue;
      yield this.#changed.has(key) ? [key, this.#changed.get(key)!] : entry;
    }
    yield* this.#added;
  }

  *keys(): MapIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) fn.call(thisArg, value, key, this);
  }
}

/**
 * An editable copy of `map` that shares its entries: an overlay over `map` (or over the base of
 * `map` when it is an overlay itself, its layer copied). Once the edits reach a quarter of the
 * base the entries are copied into a fresh base, so lookups stay two map reads and each copy
 * is paid for by the edits that made it needed.
 */
export function overlay<K, V>(map: ReadonlyMap<K, V>): OverlayMap<K, V> {
  if (map instanceof OverlayMap) {
    const layered = map as OverlayMap<K, V>;
    return layered.delta * 4 > layered.baseSize + 16 ? new OverlayMap(new Map(layered)) : layered.fork();
  }
  return new OverlayMap(map);
}
