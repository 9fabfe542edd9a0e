// The real thing: nft 1.0.6 and the kernel, in a network namespace of this run's own
// (`ngt-<pid>-<random>`, removed in afterAll whatever happens). Nothing is sent: the tests only
// load and read rules. Runs whenever we are root; skipped, loudly, only when not. Every test runs
// through both executors: `nft -f` processes and the native addon (a missing addon fails).
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddonNftExecutor, loadNftAddon } from "./addon.js";
import { ExecNftExecutor, type NftExecutor } from "./exec.js";
import { NftFake } from "./fake.js";
import type { TableListing } from "./listing.js";
import { Nft } from "./nft.js";
import { chain, element, quoted, rule, type Element } from "./objects.js";
import { renderOps } from "./render.js";
import { diffElements, freshTableOps, stateOps, type TableState } from "./state.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  console.warn(
    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n" +
      "!! src/nft/kernel.test.ts SKIPPED: not root, cannot create network     !!\n" +
      "!! namespaces or load nftables rules. Run as root to test the kernel.  !!\n" +
      "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
  );
}

const desired: TableState = {
  chains: [chain("input", { type: "filter", hook: "input", priority: 0, policy: "accept" }), chain("pod-a")],
  sets: [
    { kind: "set", name: "allow4", type: ["ipv4_addr", "inet_proto", "inet_service"], flags: ["interval"] },
    { kind: "set", name: "allow6", type: "ipv6_addr", flags: ["interval"] },
    { kind: "map", name: "dispatch", type: "ifname", value: "verdict" },
  ],
  elements: [
    element("allow4", ["198.18.0.0/24", "tcp", "80-90"]),
    element("allow4", ["198.18.1.1", "udp", "53"]),
    element("allow4", ["198.19.0.0/16", "tcp", "443"]),
    element("allow6", ["fd00::/64"]),
    element("allow6", ["fd00:1::1"]),
    element("dispatch", [quoted("net1")], ["jump pod-a"]),
  ],
  rules: [
    rule("input", "iifname vmap @dispatch"),
    rule("pod-a", "ct state established,related accept"),
    rule("pod-a", "ip saddr . meta l4proto . th dport @allow4 accept", "allow a"),
    rule("pod-a", "ip6 saddr @allow6 accept"),
    rule("pod-a", "drop"),
  ],
};

const byKey = (a: Element, b: Element): number => `${a.set} ${a.key.join(" . ")}`.localeCompare(`${b.set} ${b.key.join(" . ")}`);

function withoutHandles<T extends { handle?: number }>(objects: readonly T[]): T[] {
  return objects.map(({ handle: _handle, ...rest }) => rest as T);
}

/** The listing as the canonical script `stateOps` renders, i.e. what `NftFake.dump` prints. */
function dumpOf(listing: TableListing): string {
  return renderOps({ family: listing.family, name: listing.name }, stateOps(listing)).script;
}

const addon = loadNftAddon();
const EXECUTORS: ReadonlyArray<readonly [string, NftExecutor | string]> = [
  ["nft -f processes", new ExecNftExecutor()],
  ["the native addon", addon.ok ? new AddonNftExecutor(addon.value) : addon.error],
];

describe.skipIf(!isRoot).each(EXECUTORS)("nft against the kernel, through %s", (_label, executor) => {
  const netns = `ngt-${process.pid}-${randomBytes(3).toString("hex")}`;
  const nft = new Nft({ netns, ...(typeof executor !== "string" && { executor }) });

  async function listed(): Promise<TableListing> {
    const result = await nft.list({ elements: true, text: true });
    if (!result.ok) throw new Error(`list failed: ${result.error.message}`);
    return result.value;
  }

  beforeAll(() => {
    if (typeof executor === "string") throw new Error(`the native addon cannot be used: ${executor}`);
    execFileSync("ip", ["netns", "add", netns]);
  });

  afterAll(() => {
    try {
      execFileSync("ip", ["netns", "delete", netns], { stdio: "ignore" });
    } catch {
      // Already gone (or never made): nothing left to clean.
    }
  });

  it("lists a table that does not exist as not-found", async () => {
    const result = await nft.list();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.reason).toBe("not-found");
  });

  it("has nft --check accept the transaction without applying it", async () => {
    const tx = nft.transaction().append(freshTableOps(desired));
    expect(await nft.check(tx)).toEqual({ ok: true, value: undefined });
    const after = await nft.list();
    expect(!after.ok && after.error.reason).toBe("not-found");
  });

  it("applies the transaction and reads back the same objects", async () => {
    expect(await nft.run(nft.transaction().append(freshTableOps(desired)))).toEqual({ ok: true, value: undefined });
    const listing = await listed();
    expect(withoutHandles(listing.chains)).toEqual(desired.chains);
    expect(withoutHandles(listing.sets)).toEqual(desired.sets);
    expect([...listing.elements].sort(byKey)).toEqual([...desired.elements].sort(byKey));
    expect(listing.rules.map(({ chain: c, rule: r, comment }) => ({ kind: "rule", chain: c, rule: r, ...(comment !== undefined ? { comment } : {}) }))).toEqual(desired.rules);
    expect(listing.rules.every((r) => r.handle > 0 && r.expr.length > 0)).toBe(true);
  });

  it("reads back a terse listing without elements", async () => {
    const terse = await nft.list();
    expect(terse.ok && terse.value.elements).toEqual([]);
    expect(terse.ok && terse.value.sets.length).toBe(3);
  });

  it("agrees with the fake on the same transaction", async () => {
    const fake = new NftFake();
    expect(await fake.run(fake.transaction().append(freshTableOps(desired)))).toEqual({ ok: true, value: undefined });
    expect(dumpOf(await listed())).toBe(fake.dump());
  });

  it("re-applies the fresh-table transaction over the existing table", async () => {
    expect(await nft.run(nft.transaction().append(freshTableOps(desired)))).toEqual({ ok: true, value: undefined });
    expect(dumpOf(await listed())).toBe(renderOps(nft.ref, stateOps(desired)).script);
  });

  it("applies nothing of a bad transaction and names the failing line", async () => {
    const before = dumpOf(await listed());
    const tx = nft
      .transaction()
      .add(element("allow4", ["198.18.9.0/24", "udp", "53-54"]))
      .add(chain("pod-b"))
      .add(rule("pod-b", "ip saddr . meta l4proto . th dport @allow9 accept"))
      .add(rule("pod-b", "drop"));
    const result = await nft.run(tx);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({
      reason: "not-found",
      line: 3,
      statement: "add rule inet nadguard pod-b ip saddr . meta l4proto . th dport @allow9 accept",
      opIndex: 2,
      path: `netns ${netns}, line 3`,
    });
    expect(dumpOf(await listed())).toBe(before);

    const fake = new NftFake();
    await fake.run(fake.transaction().append(freshTableOps(desired)));
    const fakeResult = await fake.run(tx);
    expect(!fakeResult.ok && [fakeResult.error.reason, fakeResult.error.line, fakeResult.error.opIndex]).toEqual(["not-found", 3, 2]);
  });

  it.each([
    ["create of an existing table", (tx: ReturnType<Nft["transaction"]>) => tx.create({ kind: "table" }), "exists"],
    ["deleting a set a rule references", (tx: ReturnType<Nft["transaction"]>) => tx.delete({ kind: "set", name: "allow6", type: "ipv6_addr" }), "busy"],
    ["deleting a chain a map element jumps to", (tx: ReturnType<Nft["transaction"]>) => tx.flush(chain("pod-a")).delete(chain("pod-a")), "busy"],
    ["a jump to a missing chain", (tx: ReturnType<Nft["transaction"]>) => tx.add(rule("pod-a", "jump pod-z")), "not-found"],
    ["a jump to a base chain", (tx: ReturnType<Nft["transaction"]>) => tx.add(rule("pod-a", "jump input")), "invalid"],
    ["deleting a missing element", (tx: ReturnType<Nft["transaction"]>) => tx.delete(element("allow6", ["fd00:9::1"])), "not-found"],
    ["re-adding a map key with another value", (tx: ReturnType<Nft["transaction"]>) => tx.add(element("dispatch", [quoted("net1")], ["drop"])), "exists"],
  ])("gives the same reason as the fake for %s", async (_label, build, reason) => {
    const tx = nft.transaction();
    build(tx);
    const real = await nft.run(tx);
    const fake = new NftFake();
    await fake.run(fake.transaction().append(freshTableOps(desired)));
    const faked = await fake.run(tx);
    expect(!real.ok && real.error.reason).toBe(reason);
    expect(!faked.ok && faked.error.reason).toBe(reason);
  });

  it("points at the bad element of a long element statement", async () => {
    const tx = nft.transaction().add([element("allow6", ["fd00:2::1"]), element("allow6", ["198.18.0.1"]), element("allow6", ["fd00:2::3"])]);
    const result = await nft.run(tx);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toMatchObject({ reason: "invalid", line: 1, opIndex: 1 });
    expect(result.error.op).toBe(tx.ops[1]);
  });

  it("applies an element diff, map values included, and agrees with the fake", async () => {
    const before = (await listed()).elements;
    const after = [
      ...before.filter((e) => !(e.set === "allow4" && e.key[0] === "198.18.1.1") && e.set !== "dispatch"),
      element("allow4", ["198.18.2.0/23", "tcp", "8000-8999"]),
      element("allow6", ["fd00:2::/48"]),
      element("dispatch", [quoted("net1")], ["drop"]),
      element("dispatch", [quoted("net2")], ["jump pod-a"]),
    ];
    const ops = diffElements(before, after);
    expect(ops.map((op) => `${op.verb} ${op.object.kind === "element" ? op.object.key.join(" . ") : ""}`)).toEqual([
      "delete 198.18.1.1 . udp . 53",
      'delete "net1"',
      "add 198.18.2.0/23 . tcp . 8000-8999",
      "add fd00:2::/48",
      'add "net1"',
      'add "net2"',
    ]);
    expect(await nft.run(nft.transaction().append(ops))).toEqual({ ok: true, value: undefined });
    const listing = await listed();
    expect([...listing.elements].sort(byKey)).toEqual([...after].sort(byKey));

    const fake = new NftFake();
    await fake.run(fake.transaction().append(freshTableOps(desired)));
    await fake.run(fake.transaction().append(ops));
    expect(dumpOf(listing)).toBe(fake.dump());
  });

  it("loads thousands of elements in one process, in chunked statements", async () => {
    const many = Array.from({ length: 2500 }, (_, i) => element("allow4", [`10.${i >> 8}.${i & 255}.0/24`, "tcp", String(1000 + (i % 100))]));
    const tx = nft.transaction().add(many);
    expect(tx.render().split("\n")).toHaveLength(4);
    expect(await nft.run(tx)).toEqual({ ok: true, value: undefined });
    const listing = await listed();
    expect(listing.elements.filter((e) => e.set === "allow4" && e.key[0]!.startsWith("10."))).toHaveLength(2500);
  });

  it("reports a network namespace that does not exist as an exec error, not as a missing table", async () => {
    const ghost = new Nft({ netns: `${netns}-absent`, ...(typeof executor !== "string" && { executor }) });
    const result = await ghost.run(ghost.transaction().add({ kind: "table" }));
    expect(!result.ok && result.error.reason).toBe("exec");
    const listing = await ghost.list();
    expect(!listing.ok && listing.error.reason).toBe("exec");
  });
});
