import { describe, expect, it } from "vitest";
import { parseGoDuration, reviewBudget } from "./timeout.js";

describe("parseGoDuration", () => {
  it.each([
    ["10s", 10_000],
    ["1s", 1_000],
    ["500ms", 500],
    ["1.5s", 1_500],
    ["1m", 60_000],
    ["1m30s", 90_000],
    ["250000us", 250],
    ["0", 0],
  ])("given %s, returns %d ms", (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  it.each(["", "10", "-1s", "s", "10 s", "ten seconds", "1d", "1s "])("given %j, returns undefined", (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});

describe("reviewBudget", () => {
  it("answers 10% before the timeout kube-apiserver passes", () => {
    expect(reviewBudget("10s", 5_000)).toEqual({ timeoutMs: 10_000, budgetMs: 9_000, source: "query" });
  });

  it("keeps at least 100 ms for the way back on a short timeout", () => {
    expect(reviewBudget("500ms").budgetMs).toBe(400);
    expect(reviewBudget("50ms").budgetMs).toBe(0);
  });

  it.each([undefined, "soon", ["1s", "2s"]])("uses the default for %j", (param) => {
    expect(reviewBudget(param, 2_000)).toEqual({ timeoutMs: 2_000, budgetMs: 1_800, source: "default" });
  });

  it("does not believe more than the 30 s a webhook may be given", () => {
    expect(reviewBudget("1h").timeoutMs).toBe(30_000);
  });
});
