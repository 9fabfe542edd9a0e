import { describe, expect, it } from "vitest";
import type { Problem } from "../api/errors.js";
import type { LabelSelector } from "../api/objects.js";
import { compileSelector } from "./selector.js";

const labels = { app: "web", tier: "front" };

describe("compileSelector", () => {
  it.each<[string, LabelSelector | null, boolean]>([
    ["null selects everything", null, true],
    ["{} selects everything", {}, true],
    ["matchLabels equal", { matchLabels: { app: "web" } }, true],
    ["matchLabels differ", { matchLabels: { app: "db" } }, false],
    ["In", { matchExpressions: [{ key: "tier", operator: "In", values: ["front", "back"] }] }, true],
    ["In, key absent", { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] }, false],
    ["NotIn, key absent matches", { matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }, true],
    ["NotIn, value listed", { matchExpressions: [{ key: "app", operator: "NotIn", values: ["web"] }] }, false],
    ["Exists", { matchExpressions: [{ key: "app", operator: "Exists" }] }, true],
    ["DoesNotExist", { matchExpressions: [{ key: "app", operator: "DoesNotExist" }] }, false],
    ["labels and expressions are ANDed", { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "DoesNotExist" }] }, false],
  ])("%s", (_, selector, expected) => {
    const problems: Problem[] = [];
    expect(compileSelector(selector, "sel", problems).matches(labels)).toBe(expected);
    expect(problems).toEqual([]);
  });

  it("lists the label keys it reads, each once; none when it selects everything or nothing", () => {
    const problems: Problem[] = [];
    const selector = compileSelector({ matchLabels: { app: "web", tier: "front" }, matchExpressions: [{ key: "zone", operator: "Exists" }, { key: "app", operator: "NotIn", values: ["db"] }] }, "sel", problems);
    expect(selector.keys).toEqual(["app", "tier", "zone"]);
    expect(compileSelector({}, "sel", problems).keys).toEqual([]);
    expect(compileSelector({ matchExpressions: [{ key: "app", operator: "In", values: [] }] }, "sel", problems).keys).toEqual([]);
  });

  it.each<[string, LabelSelector]>([
    ["In without values", { matchExpressions: [{ key: "app", operator: "In", values: [] }] }],
    ["Exists with values", { matchExpressions: [{ key: "app", operator: "Exists", values: ["web"] }] }],
  ])("an invalid selector (%s) matches nothing and is reported", (_, selector) => {
    const problems: Problem[] = [];
    const compiled = compileSelector(selector, "spec.podSelector", problems);
    expect(compiled.matches(labels)).toBe(false);
    expect(compiled.matches({})).toBe(false);
    expect(problems).toEqual([expect.objectContaining({ code: "policy.selector", path: "spec.podSelector.matchExpressions[0]" })]);
  });
});
