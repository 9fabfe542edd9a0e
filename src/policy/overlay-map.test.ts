// The overlay map against a plain Map given the same edits: same entries in the same order, through
// chains of overlays (each one the next recompile's copy of the last), and the shared base untouched.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { overlay } from "./overlay-map.js";

type Edit = { op: "set"; key: number; value: number } | { op: "delete"; key: number };

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant("set" as const), key: fc.nat(40), value: fc.integer() }),
  fc.record({ op: fc.constant("delete" as const), key: fc.nat(40) }),
);

describe("overlay", () => {
  it("reads, iterates and sizes as a copied Map edited the same way, over chains of overlays", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(40), fc.integer()), { maxLength: 40 }), fc.array(fc.array(edit, { maxLength: 12 }), { minLength: 1, maxLength: 6 }), (initial, steps) => {
        const base = new Map(initial);
        const frozen = [...base];
        let expected = new Map(base);
        let current: ReadonlyMap<number, number> = base;
        for (const step of steps) {
          const next = overlay(current);
          const copy = new Map(expected);
          for (const e of step) {
            if (e.op === "set") {
              next.set(e.key, e.value);
              copy.set(e.key, e.value);
            } else expect(next.delete(e.key)).toBe(copy.delete(e.key));
          }
          expect([...next]).toEqual([...copy]);
          expect([...next.keys()]).toEqual([...copy.keys()]);
          expect([...next.values()]).toEqual([...copy.values()]);
          expect(next.size).toBe(copy.size);
          for (let k = 0; k <= 40; k++) {
            expect(next.has(k)).toBe(copy.has(k));
            expect(next.get(k)).toBe(copy.get(k));
          }
          const seen: [number, number][] = [];
          next.forEach((v, k, m) => {
            expect(m).toBe(next);
            seen.push([k, v]);
          });
          expect(seen).toEqual([...copy]);
          // The map it was made from reads as before.
          expect([...current]).toEqual([...expected]);
          expected = copy;
          current = next;
        }
        expect([...base]).toEqual(frozen);
      }),
    );
  });

  it("puts a key deleted from the base and set again after the base's keys, as a Map does", () => {
    const map = overlay(new Map([["a", 1], ["b", 2], ["c", 3]]));
    map.delete("a");
    map.set("b", 20);
    map.set("a", 10);
    expect([...map]).toEqual([["b", 20], ["c", 3], ["a", 10]]);
    expect(map.size).toBe(3);
  });

  it("copies into a fresh base once a chain's edits reach a quarter of it", () => {
    let map: ReadonlyMap<number, number> = new Map(Array.from({ length: 100 }, (_, i) => [i, i]));
    const deltas: number[] = [];
    for (let i = 0; i < 60; i++) {
      const next = overlay(map);
      next.set(1000 + i, i);
      deltas.push(next.delta);
      map = next;
    }
    expect(Math.max(...deltas)).toBeLessThanOrEqual(30);
    expect(deltas).toContain(1);
    expect(map.size).toBe(160);
  });
});
