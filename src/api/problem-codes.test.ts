// The problem-code registry: README's "Problem codes" table is the registry, row for row, and a code
// that is not in it does not type-check.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Problem } from "./errors.js";
import { PROBLEM_CODES, isProblemCode } from "./problem-codes.js";

const README = join(import.meta.dirname, "..", "..", "README.md");

/** The rows `| \`code\` | meaning |` of README's "## Problem codes" section, in order. */
async function readmeCodes(): Promise<[string, string][]> {
  const lines = (await readFile(README, "utf8")).split("\n");
  const start = lines.indexOf("## Problem codes");
  expect(start, 'README has no "## Problem codes" section').toBeGreaterThanOrEqual(0);
  const rows: [string, string][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith("#")) break;
    const row = /^\| `([^`]+)` \| (.*) \|$/.exec(line);
    if (row) rows.push([row[1]!, row[2]!.replaceAll("\\|", "|")]);
  }
  return rows;
}

describe("problem codes", () => {
  it("README lists every code of the registry with its meaning, in the registry's order, and no other", async () => {
    expect(await readmeCodes()).toEqual(Object.entries(PROBLEM_CODES));
  });

  it("each code is area.what in lower case (or a bare area), with a one-line meaning", () => {
    for (const [code, meaning] of Object.entries(PROBLEM_CODES)) {
      expect(code).toMatch(/^[a-z][a-z-]*(\.[a-z][a-z0-9-]*)?$/);
      expect(meaning, code).toMatch(/^[^\n]{10,120}$/);
    }
  });

  it("a misspelt code does not compile, and is not a problem code at run time", () => {
    // @ts-expect-error "selection.empty-elemnt" is not in PROBLEM_CODES: tsc --noEmit fails if this ever type-checks.
    const misspelt: Problem = { code: "selection.empty-elemnt", path: "", message: "" };
    expect(isProblemCode(misspelt.code)).toBe(false);
    expect(isProblemCode("selection.empty-element")).toBe(true);
  });
});
