import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCidr } from "../networks/addresses.js";
import { type Box, addrRangeText, cidrRange, disjointBoxes, subtractRanges } from "./ranges.js";

const box = (from: number, to: number, pfrom: number, pto: number, protocol: Box["port"]["protocol"] = "TCP"): Box => ({
  addr: { family: 4, from: BigInt(from), to: BigInt(to) },
  port: { protocol, from: pfrom, to: pto },
});

const covers = (boxes: readonly Box[], a: number, p: number, protocol: string): boolean =>
  boxes.some((b) => b.port.protocol === protocol && b.addr.from <= BigInt(a) && BigInt(a) <= b.addr.to && b.port.from <= p && p <= b.port.to);

describe("disjointBoxes", () => {
  it("keeps the union and makes the boxes disjoint (property, small domain)", () => {
    const arbBox = fc
      .tuple(fc.nat(15), fc.nat(15), fc.nat(15), fc.nat(15), fc.constantFrom("TCP", "UDP") as fc.Arbitrary<"TCP" | "UDP">)
      .map(([a, b, c, d, proto]) => box(Math.min(a, b), Math.max(a, b), Math.min(c, d), Math.max(c, d), proto));
    fc.assert(
      fc.property(fc.array(arbBox, { maxLength: 8 }), (boxes) => {
        const out = disjointBoxes(boxes);
        for (let a = 0; a < 16; a++) {
          for (let p = 0; p < 16; p++) {
            for (const proto of ["TCP", "UDP"]) {
              expect(covers(out, a, p, proto)).toBe(covers(boxes, a, p, proto));
              expect(out.filter((b) => covers([b], a, p, proto)).length).toBeLessThanOrEqual(1);
            }
          }
        }
      }),
    );
  });

  it("merges neighbours with the same ports into one element", () => {
    expect(disjointBoxes([box(0, 3, 80, 80), box(4, 7, 80, 80), box(2, 5, 81, 81)])).toEqual([box(0, 1, 80, 80), box(2, 5, 80, 81), box(6, 7, 80, 80)]);
  });
});

describe("address ranges", () => {
  it("subtracts an except list (bare addresses are host routes) and prints ranges as nft lists them", () => {
    const cidr = cidrRange(parseCidr("198.18.0.0/24")!);
    const except = [cidrRange(parseCidr("198.18.0.13", { allowBare: true })!), cidrRange(parseCidr("198.18.0.128/25")!)];
    expect(subtractRanges(cidr, except).map(addrRangeText)).toEqual(["198.18.0.0-198.18.0.12", "198.18.0.14-198.18.0.127"]);
    expect(addrRangeText(cidrRange(parseCidr("fd00::/8")!))).toBe("fd00::/8");
    expect(addrRangeText(cidrRange(parseCidr("::/0")!))).toBe("::/0");
  });
});
