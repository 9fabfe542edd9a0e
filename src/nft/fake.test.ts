import { describe, expect, it } from "vitest";
import { FakeExecutor, NftFake, referencesOf } from "./fake.js";
import { Nft } from "./nft.js";
import { chain, element, quoted, rule, type Chain, type NftMap, type NftSet } from "./objects.js";
import { diffElements, freshTableOps, type TableState } from "./state.js";

const input: Chain = chain("input", { type: "filter", hook: "input", priority: 0, policy: "accept" });
const allow4: NftSet = { kind: "set", name: "allow4", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] };
const dispatch: NftMap = { kind: "map", name: "dispatch", type: "ifname", value: "verdict" };

/** A fake holding a base chain, a pod chain, a set and a verdict map that jumps to the pod chain. */
async function populated(): Promise<NftFake> {
  const nft = new NftFake();
  const tx = nft
    .transaction()
    .add({ kind: "table" })
    .add([input, chain("pod-a"), allow4, dispatch])
    .add([element("allow4", ["198.18.0.0/24", "tcp", "80-90"]), element("dispatch", [quoted("net1")], ["jump pod-a"])])
    .add([rule("input", "iifname vmap @dispatch"), rule("pod-a", "ip saddr . meta l4proto . th dport @allow4 accept"), rule("pod-a", "drop")]);
  const result = await nft.run(tx);
  expect(result).toEqual({ ok: true, value: undefined });
  return nft;
}

async function reasonOf(nft: NftFake, build: (tx: ReturnType<NftFake["transaction"]>) => unknown): Promise<string> {
  const tx = nft.transaction();
  build(tx);
  const result = await nft.run(tx);
  return result.ok ? "ok" : result.error.reason;
}

describe("NftFake", () => {
  it("dumps itself as a deterministic nft -f script", async () => {
    const nft = await populated();
    expect(nft.dump()).toBe(
      [
        "add table inet nadguard",
        "add chain inet nadguard input { type filter hook input priority 0; policy accept; }",
        "add chain inet nadguard pod-a",
        "add set inet nadguard allow4 { type ipv4_addr . inet_proto . inet_service; flags interval; }",
        "add map inet nadguard dispatch { type ifname : verdict; }",
        "add element inet nadguard allow4 { 198.18.0.0/24 . tcp . 80-90 }",
        'add element inet nadguard dispatch { "net1" : jump pod-a }',
        "add rule inet nadguard input iifname vmap @dispatch",
        "add rule inet nadguard pod-a ip saddr . meta l4proto . th dport @allow4 accept",
        "add rule inet nadguard pod-a drop",
        "",
      ].join("\n"),
    );
  });

  it("dumps the same text whatever order the objects were added in", async () => {
    const a = await populated();
    const b = new NftFake();
    await b.run(
      b
        .transaction()
        .add({ kind: "table" })
        .add([dispatch, allow4, chain("pod-a"), input])
        .add([element("dispatch", ['"net1"'], ["jump pod-a"]), element("allow4", ["198.18.0.0/24", "tcp", "80-90"])])
        .add([rule("pod-a", "ip saddr . meta l4proto . th dport @allow4 accept"), rule("input", "iifname vmap @dispatch"), rule("pod-a", "drop")]),
    );
    expect(b.dump()).toBe(a.dump());
  });

  it("treats add of an existing object as a no-op and create as a failure", async () => {
    const nft = await populated();
    const before = nft.dump();
    expect(await reasonOf(nft, (tx) => tx.add([{ kind: "table" }, chain("pod-a"), allow4, element("allow4", ["198.18.0.0/24", "tcp", "80-90"])]))).toBe("ok");
    expect(nft.dump()).toBe(before);
    expect(await reasonOf(nft, (tx) => tx.create({ kind: "table" }))).toBe("exists");
    expect(await reasonOf(nft, (tx) => tx.create(chain("pod-a")))).toBe("exists");
    expect(await reasonOf(nft, (tx) => tx.create(allow4))).toBe("exists");
    expect(await reasonOf(nft, (tx) => tx.create(element("allow4", ["198.18.0.0/24", "tcp", "80-90"])))).toBe("exists");
  });

  it("refuses to redefine an existing set or to re-add a map key with another value", async () => {
    const nft = await populated();
    expect(await reasonOf(nft, (tx) => tx.add({ ...allow4, flags: ["interval", "timeout"] }))).toBe("exists");
    expect(await reasonOf(nft, (tx) => tx.add({ kind: "map", name: "allow4", type: "ipv4_addr", value: "verdict" }))).toBe("exists");
    expect(await reasonOf(nft, (tx) => tx.add(element("dispatch", ['"net1"'], ["drop"])))).toBe("exists");
    expect(await reasonOf(nft, (tx) => tx.add(element("dispatch", ['"net1"'], ["jump pod-a"])))).toBe("ok");
  });

  it("updates the policy of an existing base chain but not its hook", async () => {
    const nft = await populated();
    expect(await reasonOf(nft, (tx) => tx.add(chain("input", { type: "filter", hook: "input", priority: "filter", policy: "drop" })))).toBe("ok");
    expect(nft.dump()).toContain("add chain inet nadguard input { type filter hook input priority 0; policy drop; }");
    expect(await reasonOf(nft, (tx) => tx.add(chain("input", { type: "filter", hook: "output", priority: 0 })))).toBe("invalid");
    expect(await reasonOf(nft, (tx) => tx.add(chain("pod-a", { type: "filter", hook: "input", priority: 0 })))).toBe("exists");
  });

  it.each([
    ["a rule that references a missing set", (tx: Tx) => tx.add(rule("pod-a", "ip daddr @nope drop")), "not-found"],
    ["a rule that jumps to a missing chain", (tx: Tx) => tx.add(rule("pod-a", "jump pod-b")), "not-found"],
    ["a rule that goes to a missing chain in an anonymous vmap", (tx: Tx) => tx.add(rule("input", 'iifname vmap { "net2" : goto pod-b }')), "not-found"],
    ["a rule that jumps to a base chain", (tx: Tx) => tx.add(rule("pod-a", "jump input")), "invalid"],
    ["a rule in a missing chain", (tx: Tx) => tx.add(rule("pod-b", "drop")), "not-found"],
    ["a map element that jumps to a missing chain", (tx: Tx) => tx.add(element("dispatch", ['"net2"'], ["jump pod-b"])), "not-found"],
    ["an element of a missing set", (tx: Tx) => tx.add(element("allow9", ["1.2.3.4"])), "not-found"],
    ["a set element with a value", (tx: Tx) => tx.add(element("allow4", ["1.2.3.4", "tcp", "1"], ["drop"])), "invalid"],
    ["a map element without a value", (tx: Tx) => tx.add(element("dispatch", ['"net2"'])), "invalid"],
    ["an element timeout in a set without flag timeout", (tx: Tx) => tx.add({ ...element("allow4", ["1.2.3.4", "tcp", "1"]), timeout: "1s" }), "invalid"],
    ["deleting a set a rule references", (tx: Tx) => tx.delete(allow4), "busy"],
    ["deleting a map a rule references", (tx: Tx) => tx.delete(dispatch), "busy"],
    ["deleting a chain a map element jumps to", (tx: Tx) => tx.flush(chain("pod-a")).delete(chain("pod-a")), "busy"],
    ["deleting a chain that still has rules", (tx: Tx) => tx.delete(chain("pod-a")), "busy"],
    ["deleting a missing chain", (tx: Tx) => tx.delete(chain("pod-b")), "not-found"],
    ["deleting a missing set", (tx: Tx) => tx.delete({ kind: "set", name: "nope", type: "ipv4_addr" }), "not-found"],
    ["deleting a missing element", (tx: Tx) => tx.delete(element("allow4", ["10.0.0.1", "tcp", "1"])), "not-found"],
    ["deleting a missing rule handle", (tx: Tx) => tx.delete({ ...rule("pod-a", ""), handle: 999 }), "not-found"],
    ["adding after a missing index", (tx: Tx) => tx.add({ ...rule("pod-a", "drop"), index: 5 }), "not-found"],
    ["flushing a missing set", (tx: Tx) => tx.flush({ kind: "set", name: "nope", type: "ipv4_addr" }), "not-found"],
    ["deleting a missing table", (tx: Tx) => tx.delete({ kind: "table" }).delete({ kind: "table" }), "not-found"],
  ])("rejects %s", async (_label, build, reason) => {
    const nft = await populated();
    expect(await reasonOf(nft, build)).toBe(reason);
  });

  it("allows what releases the reference first, in the same transaction", async () => {
    const nft = await populated();
    const tx = nft
      .transaction()
      .flush(chain("input"))
      .delete(dispatch)
      .flush(chain("pod-a"))
      .delete([chain("pod-a"), allow4]);
    expect(await nft.run(tx)).toEqual({ ok: true, value: undefined });
    expect(nft.dump()).toBe(
      ["add table inet nadguard", "add chain inet nadguard input { type filter hook input priority 0; policy accept; }", ""].join("\n"),
    );
  });

  it("applies nothing when any operation fails, and names the failing line", async () => {
    const nft = await populated();
    const before = nft.dump();
    const tx = nft
      .transaction()
      .add(element("allow4", ["198.18.9.0/24", "udp", "53"]))
      .add(chain("pod-b"))
      .add(rule("pod-b", "ip saddr @allow9 accept"))
      .add(rule("pod-b", "drop"));
    const result = await nft.run(tx);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ reason: "not-found", line: 3, statement: "add rule inet nadguard pod-b ip saddr @allow9 accept", opIndex: 2 });
    expect(result.error.message).toContain("set @allow9");
    expect(nft.dump()).toBe(before);
  });

  it("checks without changing anything", async () => {
    const nft = await populated();
    const before = nft.dump();
    expect(await nft.check(nft.transaction().add(chain("pod-b")))).toEqual({ ok: true, value: undefined });
    expect((await nft.check(nft.transaction().add(rule("pod-b", "drop")))).ok).toBe(false);
    expect(nft.dump()).toBe(before);
    expect(nft.scripts).toHaveLength(1);
  });

  it("places rules by index and handle, replaces and deletes them by handle", async () => {
    const nft = await populated();
    const handles = async (): Promise<[number, string][]> => {
      const listed = await nft.list();
      if (!listed.ok) throw new Error(listed.error.message);
      return listed.value.rules.filter((r) => r.chain === "pod-a").map((r) => [r.handle, r.rule]);
    };
    const [[first], [second]] = (await handles()) as [[number, string], [number, string]];
    await nft.run(
      nft
        .transaction()
        .insert(rule("pod-a", "ct state established accept"))
        .add({ ...rule("pod-a", "counter"), handle: first })
        .insert({ ...rule("pod-a", "meta mark 1"), index: 3 })
        .replace({ ...rule("pod-a", "reject"), handle: second }),
    );
    expect((await handles()).map(([, text]) => text)).toEqual([
      "ct state established accept",
      "ip saddr . meta l4proto . th dport @allow4 accept",
      "counter",
      "meta mark 1",
      "reject",
    ]);
    await nft.run(nft.transaction().delete({ ...rule("pod-a", ""), handle: first }));
    expect((await handles()).map(([, text]) => text)).toEqual(["ct state established accept", "counter", "meta mark 1", "reject"]);
  });

  it("flushes every chain of a table but keeps set elements, as nft does", async () => {
    const nft = await populated();
    await nft.run(nft.transaction().flush({ kind: "table" }));
    const state = nft.state();
    expect(state?.rules).toEqual([]);
    expect(state?.elements).toHaveLength(2);
  });

  it("lists a missing table as not-found, and elements only when asked", async () => {
    const empty = new NftFake();
    const missing = await empty.list();
    expect(!missing.ok && missing.error.reason).toBe("not-found");
    const nft = await populated();
    const terse = await nft.list();
    const full = await nft.list({ elements: true });
    expect(terse.ok && terse.value.elements).toEqual([]);
    expect(full.ok && full.value.elements.map((e) => e.key)).toEqual([["198.18.0.0/24", "tcp", "80-90"], ['"net1"']]);
    expect(full.ok && full.value.chains.every((c) => typeof c.handle === "number")).toBe(true);
  });

  it("replaces the whole table with freshTableOps, whether or not it existed", async () => {
    const desired: TableState = {
      chains: [input, chain("pod-b")],
      sets: [allow4],
      elements: [element("allow4", ["198.18.2.0/24", "tcp", "443"])],
      rules: [rule("input", 'iifname "net1" jump pod-b'), rule("pod-b", "ip saddr . meta l4proto . th dport @allow4 accept")],
    };
    const fresh = new NftFake();
    const old = await populated();
    for (const nft of [fresh, old]) {
      expect(await nft.run(nft.transaction().append(freshTableOps(desired)))).toEqual({ ok: true, value: undefined });
    }
    expect(old.dump()).toBe(fresh.dump());
    expect(fresh.dump()).toContain("add element inet nadguard allow4 { 198.18.2.0/24 . tcp . 443 }");
    expect(fresh.dump()).not.toContain("pod-a");
  });
});

type Tx = ReturnType<NftFake["transaction"]>;

describe("diffElements", () => {
  it("deletes what went away and adds what is new, deletes first", () => {
    const before = [element("s", ["10.0.0.1"]), element("s", ["10.0.0.2"])];
    const after = [element("s", ["10.0.0.2"]), element("s", ["10.0.0.3"])];
    expect(diffElements(before, after)).toEqual([
      { verb: "delete", object: element("s", ["10.0.0.1"]) },
      { verb: "add", object: element("s", ["10.0.0.3"]) },
    ]);
    expect(diffElements(after, after)).toEqual([]);
  });

  it("re-adds a map element whose value changed, and the fake accepts the result", async () => {
    const nft = await populated();
    const before = [element("dispatch", ['"net1"'], ["jump pod-a"])];
    const after = [element("dispatch", ['"net1"'], ["drop"]), element("dispatch", ['"net2"'], ["accept"])];
    const ops = diffElements(before, after);
    expect(ops.map((op) => op.verb)).toEqual(["delete", "add", "add"]);
    expect(await nft.run(nft.transaction().append(ops))).toEqual({ ok: true, value: undefined });
    expect(nft.dump()).toContain('add element inet nadguard dispatch { "net1" : drop, "net2" : accept }');
  });
});

describe("referencesOf", () => {
  it.each([
    ["ip saddr @allow4 accept", ["allow4"], []],
    ["iifname vmap @dispatch", ["dispatch"], []],
    ['iifname "net1" jump pod-a', [], ["pod-a"]],
    ['iifname vmap { "a" : goto x, "b" : jump y }', [], ["x", "y"]],
    ["@nh,16,8 0x1 drop", [], []],
    ['meta mark 1 accept comment "see @foo and jump bar"', [], []],
  ])("finds the references of %j", (text, sets, chains) => {
    expect(referencesOf(text)).toEqual({ sets, chains });
  });
});

describe("FakeExecutor behind the real client", () => {
  it("applies what Nft renders, per network namespace, and answers like nft", async () => {
    const executor = new FakeExecutor();
    const a = new Nft({ executor, netns: "/run/netns/a" });
    const b = new Nft({ executor, netns: "/run/netns/b" });
    const tx = a.transaction().add({ kind: "table" }).add([chain("pod-a"), allow4]).add(element("allow4", ["198.18.0.0/24", "tcp", "80-90"]));
    expect(await a.run(tx)).toEqual({ ok: true, value: undefined });
    expect(executor.fake("/run/netns/a").dump()).toContain("add element inet nadguard allow4 { 198.18.0.0/24 . tcp . 80-90 }");
    expect(executor.fake("/run/netns/b").dump()).toBe("");
    const listed = await b.list();
    expect(!listed.ok && listed.error.reason).toBe("not-found");
    expect(executor.calls.map((c) => [c.kind, c.netns])).toEqual([
      ["run", "/run/netns/a"],
      ["list", "/run/netns/b"],
    ]);
  });

  it("reports the failing element of a long statement, with nothing applied", async () => {
    const executor = new FakeExecutor();
    const nft = new Nft({ executor });
    await nft.run(nft.transaction().add({ kind: "table" }).add(allow4).add(element("allow4", ["10.0.0.2", "tcp", "1"])));
    const before = executor.fake().dump();
    const tx = nft.transaction().create([element("allow4", ["10.0.0.1", "tcp", "1"]), element("allow4", ["10.0.0.2", "tcp", "1"]), element("allow4", ["10.0.0.3", "tcp", "1"])]);
    const result = await nft.run(tx);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ reason: "exists", line: 1, opIndex: 1 });
    expect(result.error.op).toBe(tx.ops[1]);
    expect(executor.fake().dump()).toBe(before);
  });
});
