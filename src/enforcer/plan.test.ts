import { describe, expect, it } from "vitest";
import { NftFake } from "../nft/fake.js";
import { chain, element, rule } from "../nft/objects.js";
import { freshTableOps, type TableState } from "../nft/state.js";
import { normalizeRuleText, planTransaction, sameState } from "./plan.js";

const base: TableState = {
  chains: [chain("ingress", { type: "filter", hook: "input", priority: "filter", policy: "accept" })],
  sets: [{ kind: "set", name: "allow", type: ["ifname", "ipv4_addr"], flags: ["interval"] }],
  elements: [element("allow", ['"net1"', "198.18.0.1"])],
  rules: [rule("ingress", "ct state established,related accept"), rule("ingress", "iifname . ip saddr @allow accept")],
};

describe("planTransaction", () => {
  it.each([
    ["nothing wanted, nothing there", { kind: "absent" } as const, undefined, "none"],
    ["nothing wanted, a table there", { kind: "table", state: base } as const, undefined, "remove"],
    ["nothing wanted, unknown", { kind: "unknown" } as const, undefined, "remove"],
    ["a table wanted, none there", { kind: "absent" } as const, base, "fresh"],
    ["a table wanted, unknown", { kind: "unknown" } as const, base, "fresh"],
    ["the same table", { kind: "table", state: base } as const, base, "none"],
    ["another element", { kind: "table", state: base } as const, { ...base, elements: [element("allow", ['"net1"', "198.18.0.2"])] }, "elements"],
    ["another rule", { kind: "table", state: base } as const, { ...base, rules: [...base.rules, rule("ingress", "drop")] }, "chains"],
    ["another set flag", { kind: "table", state: base } as const, { ...base, sets: [{ ...base.sets[0]!, flags: [] }] }, "fresh"],
    ["another chain policy", { kind: "table", state: base } as const, { ...base, chains: [chain("ingress", { type: "filter", hook: "input", priority: 0, policy: "drop" })] }, "fresh"],
  ])("given %s, plans %s", (_label, known, desired, mode) => {
    expect(planTransaction(known, desired).mode).toBe(mode);
  });

  const two: TableState = { ...base, elements: [...base.elements, element("allow", ['"net1"', "198.18.0.2"])] };
  it.each([
    ["a table wanted, none there", { kind: "absent" } as const, two, { mode: "fresh", added: 2, removed: 0 }],
    ["a table wanted, unknown", { kind: "unknown" } as const, two, { mode: "fresh", added: 2, removed: undefined }],
    ["nothing wanted, a table there", { kind: "table", state: two } as const, undefined, { mode: "remove", added: 0, removed: 2 }],
    ["nothing wanted, unknown", { kind: "unknown" } as const, undefined, { mode: "remove", added: 0, removed: undefined }],
    ["one element more", { kind: "table", state: base } as const, two, { mode: "elements", added: 1, removed: 0 }],
    ["one element another", { kind: "table", state: two } as const, { ...base, elements: [element("allow", ['"net1"', "198.18.0.3"])] }, { mode: "elements", added: 1, removed: 2 }],
    ["a rule and an element more", { kind: "table", state: base } as const, { ...two, rules: [...base.rules, rule("ingress", "drop")] }, { mode: "chains", added: 1, removed: 0 }],
    ["another set flag, the same elements", { kind: "table", state: two } as const, { ...two, sets: [{ ...base.sets[0]!, flags: [] }] }, { mode: "fresh", added: 0, removed: 0 }],
  ])("given %s, counts the elements the netns gains and loses", (_label, known, desired, counts) => {
    const { mode, added, removed } = planTransaction(known, desired);
    expect({ mode, added, removed }).toEqual(counts);
  });

  it("builds the table without `delete table` in a netns known to hold none, and replaces it whole where unknown", () => {
    const verbs = (known: Parameters<typeof planTransaction>[0]): string[] => planTransaction(known, base).ops.map((op) => `${op.verb} ${op.object.kind}`);
    expect(verbs({ kind: "absent" })).not.toContain("delete table");
    expect(verbs({ kind: "absent" })[0]).toBe("add table");
    expect(verbs({ kind: "unknown" }).slice(0, 3)).toEqual(["add table", "delete table", "add table"]);
  });

  it("treats a named and a numeric priority as the same chain", () => {
    const numeric = { ...base, chains: [chain("ingress", { type: "filter", hook: "input", priority: 0, policy: "accept" })] };
    expect(planTransaction({ kind: "table", state: base }, numeric).mode).toBe("none");
  });

  it("produces transactions the fake applies, ending at the desired table", async () => {
    const wanted: TableState = { ...base, elements: [element("allow", ['"net1"', "198.18.0.2"])], rules: [...base.rules, rule("ingress", 'iifname "net1" drop')] };
    const fake = new NftFake();
    await fake.run(fake.transaction().append(freshTableOps(base)));
    const plan = planTransaction({ kind: "table", state: base }, wanted);
    expect(plan.mode).toBe("chains");
    expect(await fake.run(fake.transaction().append(plan.ops))).toEqual({ ok: true, value: undefined });
    expect(sameState(fake.state()!, wanted)).toBe(true);
  });
});

describe("normalizeRuleText", () => {
  it("sorts anonymous set items and collapses spaces, as nft lists them back", () => {
    expect(normalizeRuleText("icmpv6 type { nd-router-solicit,  mld-listener-query } accept")).toBe(normalizeRuleText("icmpv6 type { mld-listener-query, nd-router-solicit } accept"));
    expect(normalizeRuleText("tcp dport 80 accept")).not.toBe(normalizeRuleText("tcp dport 81 accept"));
  });
});
