import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG } from "../config/config.js";
import { BLUE, RED, gridSnapshot, policy } from "../../test/policy-conformance/grid.js";
import { verdict } from "./verdict.js";

const snapshot = gridSnapshot(
  policy("x", "from-y", { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8" } }, { namespaceSelector: { matchLabels: { ns: "y" } } }] }] }),
  policy("x", "web", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ ports: [{ port: 443 }] }, { ports: [{ port: "web" }] }] }),
  policy("y", "out", { podSelector: {}, policyTypes: ["Egress"], egress: [{ to: [{ podSelector: {} }] }] }),
);

describe("verdict", () => {
  it("names, on each side, the policies that isolate and the rule and peer that allow", () => {
    const v = verdict(snapshot, DEFAULT_CONFIG, { from: "z/a", to: "x/a", network: BLUE, port: 80 });
    expect(v.ok).toBe(true);
    if (!v.ok) return;
    expect(v.value.allowed).toBe(true);
    expect(v.value.families.map((f) => [f.family, f.source, f.destination])).toEqual([
      [4, "198.18.0.16", "198.18.0.10"],
      [6, "fd00:b::10", "fd00:b::a"],
    ]);
    expect(v.value.families[0]!.egress).toMatchObject({ pod: "z/a", interface: "net1", managed: true, isolated: false, allowed: true, allowedBy: [] });
    expect(v.value.families[0]!.ingress).toMatchObject({
      pod: "x/a",
      interface: "net1",
      isolated: true,
      isolatedBy: ["x/from-y", "x/web"],
      allowed: true,
      allowedBy: [{ policy: "x/web", rule: 1 }],
    });
  });

  it("denies when the destination is isolated and no rule matches; both sides are evaluated", () => {
    const v = verdict(snapshot, DEFAULT_CONFIG, { from: "y/b", to: "x/a", network: BLUE, port: 81 });
    expect(v.ok && v.value.families[0]!.ingress.allowedBy).toEqual([{ policy: "x/from-y", rule: 0, peer: 1 }]);
    const denied = verdict(snapshot, DEFAULT_CONFIG, { from: "y/b", to: "z/a", network: BLUE, port: 81, family: 6 });
    expect(denied.ok && denied.value.families.map((f) => [f.family, f.allowed, f.egress.allowed, f.ingress.allowed])).toEqual([[6, false, false, true]]);
    expect(denied.ok && denied.value.families[0]!.egress.isolatedBy).toEqual(["y/out"]);
  });

  it("allows a pod to reach itself", () => {
    const v = verdict(snapshot, DEFAULT_CONFIG, { from: "y/a", to: "y/a", network: BLUE, port: 1 });
    expect(v.ok && v.value.allowed && v.value.families[0]!.samePod).toBe(true);
  });

  it("fails with problems for unknown pods, networks and bad ports", () => {
    expect(verdict(snapshot, DEFAULT_CONFIG, { from: "q/a", to: "x/a", network: BLUE, port: 80 })).toMatchObject({ ok: false, error: [{ code: "verdict.pod", path: "--from" }] });
    expect(verdict(snapshot, DEFAULT_CONFIG, { from: "x/a", to: "x/b", network: "nets/green", port: 80 })).toMatchObject({
      ok: false,
      error: [{ code: "verdict.network" }, { code: "verdict.network" }],
    });
    expect(verdict(snapshot, DEFAULT_CONFIG, { from: "x/a", to: "x/b", network: RED, port: 70000 })).toMatchObject({ ok: false, error: [{ code: "verdict.port" }] });
  });
});
