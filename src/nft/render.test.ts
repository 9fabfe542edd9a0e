import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FakeExecutor } from "./fake.js";
import { Nft } from "./nft.js";
import { chain, element, NADGUARD_TABLE, quoted, rule, type Element, type NftMap, type NftSet } from "./objects.js";
import { opAt, renderOps } from "./render.js";
import { parseScript } from "./script.js";
import { Transaction, type Op } from "./transaction.js";

const allow4: NftSet = {
  kind: "set",
  name: "allow4",
  type: ["ipv4_addr", "inet_proto", "inet_service"],
  flags: ["interval"],
  autoMerge: true,
};
const dispatch: NftMap = { kind: "map", name: "dispatch", type: "ifname", value: "verdict" };

function tx(): Transaction {
  return new Transaction(NADGUARD_TABLE);
}

describe("render", () => {
  it("renders exactly the operations, in order, one statement per line", () => {
    const t = tx()
      .add({ kind: "table" })
      .delete({ kind: "table" })
      .add({ kind: "table", comment: "owned by nadguard" })
      .add(chain("input", { type: "filter", hook: "input", priority: "filter", policy: "accept" }))
      .add(chain("pod-a", undefined, "pod a"))
      .add(allow4)
      .add({ kind: "set", name: "allow6", type: "ipv6_addr", flags: ["timeout", "interval"], timeout: "90m", comment: "v6" })
      .add(dispatch)
      .add([element("allow4", ["198.18.0.0/24", "tcp", "80-90"]), element("allow4", ["198.18.1.1", "udp", "53"])])
      .add(element("allow6", ["fd00::/64"]))
      .add(element("dispatch", [quoted("net1")], ["jump pod-a"]))
      .add(rule("input", "iifname vmap @dispatch"))
      .add(rule("pod-a", "ip saddr . meta l4proto . th dport @allow4 accept", "allow a"))
      .insert({ ...rule("pod-a", "ct state established,related accept"), index: 0 })
      .add({ ...rule("pod-a", "counter"), handle: 7 })
      .replace({ ...rule("pod-a", "drop"), handle: 9 })
      .delete({ kind: "rule", chain: "pod-a", rule: "", handle: 12 })
      .delete(element("allow6", ["fd00::/64"]))
      .flush([chain("pod-a"), allow4])
      .delete({ kind: "map", name: "dispatch", type: "ifname", value: "verdict" })
      .create({ kind: "set", name: "s", typeof: "ip saddr . tcp dport" })
      .add({ kind: "map", name: "marks", typeof: "iifname", value: "meta mark" });
    expect(t.problems).toEqual([]);
    expect(t.render()).toBe(
      [
        "add table inet nadguard",
        "delete table inet nadguard",
        'add table inet nadguard { comment "owned by nadguard"; }',
        "add chain inet nadguard input { type filter hook input priority 0; policy accept; }",
        'add chain inet nadguard pod-a { comment "pod a"; }',
        "add set inet nadguard allow4 { type ipv4_addr . inet_proto . inet_service; flags interval; auto-merge; }",
        'add set inet nadguard allow6 { type ipv6_addr; flags interval,timeout; timeout 1h30m; comment "v6"; }',
        "add map inet nadguard dispatch { type ifname : verdict; }",
        "add element inet nadguard allow4 { 198.18.0.0/24 . tcp . 80-90, 198.18.1.1 . udp . 53 }",
        "add element inet nadguard allow6 { fd00::/64 }",
        'add element inet nadguard dispatch { "net1" : jump pod-a }',
        "add rule inet nadguard input iifname vmap @dispatch",
        'add rule inet nadguard pod-a ip saddr . meta l4proto . th dport @allow4 accept comment "allow a"',
        "insert rule inet nadguard pod-a index 0 ct state established,related accept",
        "add rule inet nadguard pod-a position 7 counter",
        "replace rule inet nadguard pod-a handle 9 drop",
        "delete rule inet nadguard pod-a handle 12",
        "delete element inet nadguard allow6 { fd00::/64 }",
        "flush chain inet nadguard pod-a",
        "flush set inet nadguard allow4",
        "delete map inet nadguard dispatch",
        "create set inet nadguard s { typeof ip saddr . tcp dport; }",
        "add map inet nadguard marks { typeof iifname : meta mark; }",
        "",
      ].join("\n"),
    );
  });

  it("renders an empty transaction as an empty script", () => {
    expect(tx().render()).toBe("");
  });

  it("puts at most 1000 elements in one statement and keeps one script", () => {
    const elements = Array.from({ length: 2500 }, (_, i) => element("allow4", [`198.18.${i >> 8}.${i & 255}`, "tcp", "443"]));
    const rendered = tx().add(elements).rendered();
    const lines = rendered.script.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.split(", ").length)).toEqual([1000, 1000, 500]);
    expect(lines[2]!.slice(0, 61)).toBe("add element inet nadguard allow4 { 198.18.7.208 . tcp . 443, ");
    expect(lines[2]!.endsWith("198.18.9.195 . tcp . 443 }")).toBe(true);
    expect(rendered.lines.map((l) => [l.firstOp, l.opCount])).toEqual([
      [0, 1000],
      [1000, 1000],
      [2000, 500],
    ]);
  });

  it("starts a new statement when the set or the verb changes", () => {
    const script = tx()
      .add([element("a", ["1.1.1.1"]), element("a", ["1.1.1.2"]), element("b", ["1.1.1.3"])])
      .delete(element("b", ["1.1.1.4"]))
      .add(element("b", ["1.1.1.5"]))
      .render();
    expect(script).toBe(
      [
        "add element inet nadguard a { 1.1.1.1, 1.1.1.2 }",
        "add element inet nadguard b { 1.1.1.3 }",
        "delete element inet nadguard b { 1.1.1.4 }",
        "add element inet nadguard b { 1.1.1.5 }",
        "",
      ].join("\n"),
    );
  });

  it("deletes map elements by key only", () => {
    expect(tx().delete(element("dispatch", ['"net1"'], ["drop"])).render()).toBe('delete element inet nadguard dispatch { "net1" }\n');
  });

  it("maps a line and column back to the element nft pointed at", () => {
    const rendered = tx()
      .add(rule("c", "drop"))
      .add([element("s", ["10.0.0.1"]), element("s", ["10.0.0.22"]), element("s", ["10.0.0.3"])])
      .rendered();
    const line2 = rendered.script.split("\n")[1]!;
    const column = line2.indexOf("10.0.0.22") + 1;
    expect(opAt(rendered, 1)).toBe(0);
    expect(opAt(rendered, 2, column)).toBe(2);
    expect(opAt(rendered, 2, column + 3)).toBe(2);
    expect(opAt(rendered, 2, 1)).toBe(1);
    expect(opAt(rendered, 9)).toBeUndefined();
  });

  it("renders 100k elements in batches of 1,000 per line", () => {
    const elements = Array.from({ length: 100_000 }, (_, i) => element("allow4", [`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, "tcp", "1-1024"]));
    const script = tx().add(elements).render();
    expect(script.split("\n")).toHaveLength(101);
  });
});

describe("validation", () => {
  it.each([
    ["a rule that smuggles a second command", rule("c", "drop; delete table inet other"), "ops[0].rule"],
    ["a rule with a line break", rule("c", "drop\ndelete table inet other"), "ops[0].rule"],
    ["a rule with an nft comment", rule("c", "drop # hidden"), "ops[0].rule"],
    ["a rule with an unterminated quote", rule("c", 'iifname "net1 accept'), "ops[0].rule"],
    ["an empty rule", rule("c", "  "), "ops[0].rule"],
    ["a chain name with a space", chain("pod a"), "ops[0].name"],
    ["a chain name starting with a digit", chain("1pod"), "ops[0].name"],
    ["a comment with a quote", rule("c", "drop", 'say "hi"'), "ops[0].comment"],
    ["a comment longer than 128 bytes", rule("c", "drop", "x".repeat(129)), "ops[0].comment"],
    ["an element key that closes the braces", element("s", ["1.1.1.1 } ; add table inet x {"]), "ops[0].key[0]"],
    ["an element key with a comma", element("s", ["1.1.1.1, 2.2.2.2"]), "ops[0].key[0]"],
    ["a set without a type", { kind: "set", name: "s" } as NftSet, "ops[0].type"],
    ["a set with a bad timeout", { kind: "set", name: "s", type: "ipv4_addr", timeout: "soon" } as NftSet, "ops[0].timeout"],
    ["a chain with a bad priority", chain("c", { type: "filter", hook: "input", priority: "loud" as "raw" }), "ops[0].base.priority"],
  ] as const)("refuses %s", (_label, object, path) => {
    const t = tx().add(object);
    expect(t.problems.map((p) => p.path)).toContain(path);
    expect(t.problems.every((p) => p.code === "nft.invalid")).toBe(true);
  });

  it("refuses replace and delete of a rule without a handle, and flush of an element", () => {
    const t = tx()
      .replace(rule("c", "drop"))
      .delete(rule("c", "drop"))
      .flush(element("s", ["1.1.1.1"]) as never);
    expect(t.problems.map((p) => p.message)).toEqual([
      "replace rule needs the rule's handle",
      "delete rule needs the rule's handle",
      "a element cannot be flushed",
    ]);
  });

  it("never starts nft for a transaction with problems", async () => {
    const executor = new FakeExecutor();
    const nft = new Nft({ executor });
    const result = await nft.run(nft.transaction().add({ kind: "table" }).add(rule("c", "drop; flush ruleset")));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.reason).toBe("invalid");
    expect(result.error.message).toContain('ops[1].rule: text contains ";" outside quotes');
    expect(executor.calls).toEqual([]);
  });

  it("allows ; and # inside quoted strings", () => {
    expect(tx().add(rule("c", 'iifname "a;b#c" accept')).problems).toEqual([]);
  });
});

describe("parseScript", () => {
  it("reads back what render writes", () => {
    const t = tx()
      .add({ kind: "table", comment: "x" })
      .add(chain("input", { type: "filter", hook: "input", priority: -5, policy: "drop" }, "base"))
      .add(allow4)
      .add({ kind: "map", name: "m", type: ["ipv4_addr", "inet_service"], value: "verdict", flags: ["interval"] })
      .add([element("m", ["198.18.0.0/16", "80-81"], ["goto pod-a"]), { ...element("allow4", ["fd00::1", "tcp", "1"]), comment: "c d", timeout: "1s" }])
      .insert({ ...rule("input", 'iifname "net1" jump pod-a'), handle: 3, comment: "why" })
      .replace({ ...rule("input", "drop"), handle: 4 })
      .delete([{ kind: "rule", chain: "input", rule: "", handle: 5 }, element("m", ["1.2.3.4", "80"])])
      .flush({ kind: "table" });
    const parsed = parseScript(t.render());
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    const again = new Transaction(NADGUARD_TABLE).append(parsed.value.map((s) => s.op));
    expect(again.render()).toBe(t.render());
  });

  it("round-trips arbitrary element lists", () => {
    const part = fc.oneof(
      fc.ipV4().map((ip) => ip),
      fc.ipV6(),
      fc.integer({ min: 0, max: 65535 }).map(String),
      fc.constantFrom("tcp", "udp", '"net1"', '"a, b"', "1-1024"),
    );
    const el = fc.record({ key: fc.array(part, { minLength: 1, maxLength: 3 }), value: fc.option(fc.constantFrom("accept", "jump x", "goto pod-a"), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(el, { minLength: 1, maxLength: 30 }), (els) => {
        const elements: Element[] = els.map((e) => element("s", e.key, e.value === undefined ? undefined : [e.value]));
        const ops: Op[] = elements.map((object) => ({ verb: "add", object }));
        const rendered = renderOps(NADGUARD_TABLE, ops, 7);
        const parsed = parseScript(rendered.script);
        expect(parsed.ok && parsed.value.map((s) => s.op)).toEqual(ops);
        // Every element's column, as the parser sees it, is the one the renderer recorded.
        if (parsed.ok) parsed.value.forEach((s, i) => expect(opAt(rendered, s.line, s.column)).toBe(i));
      }),
    );
  });

  it("names the line it cannot read", () => {
    expect(parseScript("add table inet nadguard\nfrobnicate\n")).toEqual({ ok: false, error: { line: 2, message: 'unexpected statement "frobnicate"' } });
  });
});
