import { describe, expect, it } from "vitest";
import { automaticInterfaceName, findDuplicateInterfaces, interfaceNameFor } from "./interfaces.js";

describe("interface naming", () => {
  it.each<[number, string | undefined, string]>([
    [0, undefined, "net1"],
    [1, undefined, "net2"],
    [9, undefined, "net10"],
    [0, "foo", "foo"],
    [4, "net1", "net1"],
  ])("element at index %i requesting %j gets %j", (index, requested, expected) => {
    expect(interfaceNameFor(index, requested)).toBe(expected);
  });

  it("numbers from 1: the cluster network is delegate 0", () => {
    expect(automaticInterfaceName(0)).toBe("net1");
  });

  it.each<[(string | undefined)[], Array<[number, number]>]>([
    [[], []],
    [["net1", "net2"], []],
    [["foo", "net2", "foo"], [[0, 2]]],
    [["x", "x", "x"], [[0, 1], [0, 2]]],
    [["x", undefined, "x", undefined], [[0, 2]]],
  ])("duplicates in %j are %j", (names, expected) => {
    expect(findDuplicateInterfaces(names)).toEqual(expected);
  });
});
