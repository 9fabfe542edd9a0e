// `--selector` of `nadguard matrix`: kubectl's label selector syntax read into a LabelSelector,
// and what the compiled selector then matches.
import { describe, expect, it } from "vitest";
import { compileSelector } from "../policy/selector.js";
import { parseLabelSelector } from "./matrix.js";

describe("parseLabelSelector", () => {
  it.each([
    ["app=web", { matchLabels: { app: "web" }, matchExpressions: [] }],
    ["app==web, tier!=db", { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "NotIn", values: ["db"] }] }],
    ["env in (prod, staging),team notin (b)", { matchLabels: {}, matchExpressions: [{ key: "env", operator: "In", values: ["prod", "staging"] }, { key: "team", operator: "NotIn", values: ["b"] }] }],
    ["example.com/role,!legacy", { matchLabels: {}, matchExpressions: [{ key: "example.com/role", operator: "Exists" }, { key: "legacy", operator: "DoesNotExist" }] }],
  ])("reads %s", (text, expected) => {
    expect(parseLabelSelector(text)).toEqual(expected);
  });

  it.each(["", "a=(b", "a in ()", "a,,b", "a=b=c", "a in (b"])("refuses %j, naming the part it cannot read", (text) => {
    expect(() => parseLabelSelector(text)).toThrow(/--selector .*: cannot read/);
  });

  it("matches as the API server would", () => {
    const selector = compileSelector(parseLabelSelector("env in (prod,staging),tier!=db,!legacy"), "--selector", []);
    const labels: Record<string, string>[] = [{ env: "prod" }, { env: "prod", tier: "db" }, { env: "dev" }, { env: "staging", legacy: "1" }, { env: "staging", tier: "web" }];
    expect(labels.map((l) => selector.matches(l))).toEqual([true, false, false, false, true]);
  });
});
