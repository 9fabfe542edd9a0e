import { describe, expect, it } from "vitest";
import { cutText } from "../api/text.js";
import { MAX_DENIAL_LENGTH, explainObjectProblems, explainProblems } from "./denial.js";

const same = (line: string) => line;

describe("explainProblems", () => {
  it("puts one problem on the pod's line and several one per line", () => {
    expect(explainProblems("pod a/b", ["x: bad"], same)).toBe("pod a/b: x: bad");
    expect(explainProblems("pod a/b", ["x: bad", "y: worse"], same)).toBe("pod a/b:\n- x: bad\n- y: worse");
  });

  it("lists ten problems and counts the rest, formatting only the ten", () => {
    const formatted: number[] = [];
    const message = explainProblems("pod a/b", Array.from({ length: 30_000 }, (_, i) => i), (i) => (formatted.push(i), `problem ${i}`));
    expect(message.split("\n")).toEqual(["pod a/b:", ...Array.from({ length: 10 }, (_, i) => `- problem ${i}`), "- and 29,990 more problems"]);
    expect(formatted).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("stops listing before the size limit and counts what did not fit", () => {
    const big = "x".repeat(4000);
    const message = explainProblems("pod a/b", Array.from({ length: 10 }, (_, i) => `${i}${big}`), same);
    expect(message.split("\n- ").map((line) => line.slice(0, 12))).toEqual(["pod a/b:", "0xxxxxxxxxxx", "1xxxxxxxxxxx", "2xxxxxxxxxxx", "3xxxxxxxxxxx", "and 6 more p"]);
    expect(message.length).toBeLessThanOrEqual(MAX_DENIAL_LENGTH);
  });

  it("cuts a first problem larger than the limit instead of dropping it", () => {
    const message = explainProblems("pod a/b", ["y".repeat(100_000), "z"], same);
    expect(message.length).toBeLessThanOrEqual(MAX_DENIAL_LENGTH);
    expect(message).toMatch(/^pod a\/b:\n- y+…\n- and 1 more problem$/);
    expect(explainProblems("pod a/b", ["y".repeat(100_000)], same)).toHaveLength(MAX_DENIAL_LENGTH);
  });

  it("adds what the caller counted, in one closing line, merging like with like", () => {
    const unlisted = [
      { count: 5, one: "problem", many: "problems" },
      { count: 1, one: "network not checked", many: "networks not checked" },
    ];
    const message = explainProblems("pod a/b", Array.from({ length: 12 }, (_, i) => `p${i}`), same, { unlisted });
    expect(message.split("\n").at(-1)).toBe("- and 7 more problems, and 1 network not checked");
    expect(explainProblems("pod a/b", ["p"], same, { unlisted: [unlisted[1]!] })).toBe("pod a/b:\n- p\n- and 1 more network not checked");
  });

  it("heads an object's list with the total count", () => {
    const problems = Array.from({ length: 1200 }, (_, i) => ({ code: "schema" as const, path: `spec.x[${i}]`, message: "bad" }));
    const message = explainObjectProblems("MultiNetworkPolicy a/p", problems);
    expect(message.split("\n")[0]).toBe("MultiNetworkPolicy a/p: 1,200 problems:");
    expect(message.split("\n").at(-1)).toBe("- and 1,190 more problems");
  });
});

describe("cutText", () => {
  it.each([
    ["short", 10, "short"],
    ["exactly", 7, "exactly"],
    ["abcdef", 4, "abc…"],
    ["😀😀😀", 2, "😀…"],
    ["😀😀", 2, "😀😀"],
    ["a😀b", 2, "a…"],
  ])("cuts %j to %i characters: %j", (text, max, expected) => {
    expect(cutText(text, max)).toBe(expected);
  });

  it("cuts 64 MiB to the cap and keeps the start", () => {
    expect(cutText("ab".repeat(32 * 1024 * 1024), 5)).toBe("abab…");
  });
});
