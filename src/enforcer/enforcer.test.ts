// The reconcile loop over the fake nft (FakeExecutor: one fake ruleset per netns path) and a
// desired-state double; what is asserted is what a netns ends up holding and which scripts ran.
import { afterEach, describe, expect, it } from "vitest";
import { fail, ok } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import type { ClusterState } from "../cluster/cluster-state.js";
import { chain, element, rule, type Element } from "../nft/objects.js";
import { FakeExecutor, NftFake } from "../nft/fake.js";
import type { NftExecutor, NftRunResult, RunOptions } from "../nft/exec.js";
import { freshTableOps, type TableState } from "../nft/state.js";
import { snapshotFrom } from "../../test/support/cluster.js";
import { Enforcer, type DesiredStateSource, type DesiredTable, type EnforcerLog, type LogLevel } from "./enforcer.js";
import { createEnforcerMetrics } from "./metrics.js";
import type { NetnsLookup, NetnsResolver } from "./netns.js";

function pod(ns: string, name: string, node = "node-1", uid = `uid-${ns}-${name}`): string {
  return `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, uid: ${uid} }
spec: { nodeName: ${node}, containers: [{ name: app }] }
status: { phase: Running }
---
`;
}

function tableWith(allow: readonly string[], extraRule?: string, setFlags: ("interval" | "constant")[] = ["interval"]): TableState {
  return {
    chains: [chain("ingress", { type: "filter", hook: "input", priority: "filter", policy: "accept" })],
    sets: [{ kind: "set", name: "allow4", type: "ipv4_addr", flags: setFlags }],
    elements: allow.map((a): Element => element("allow4", [a])),
    rules: [rule("ingress", "ct state established,related accept"), rule("ingress", "ip saddr @allow4 accept"), ...(extraRule ? [rule("ingress", extraRule)] : []), rule("ingress", 'iifname "net1" drop')],
  };
}

function desired(state: TableState): DesiredTable {
  return { state, fingerprint: JSON.stringify(state) };
}

class MutableState implements ClusterState {
  #snapshot: Snapshot | undefined;
  #listeners = new Set<(s: Snapshot) => void>();
  constructor(snapshot?: Snapshot) {
    this.#snapshot = snapshot;
  }
  set(snapshot: Snapshot): void {
    this.#snapshot = snapshot;
    for (const l of this.#listeners) l(snapshot);
  }
  current = (): Snapshot | undefined => this.#snapshot;
  ready = (): boolean => this.#snapshot !== undefined;
  subscribe(listener: (s: Snapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  start = async (): Promise<void> => undefined;
  stop = async (): Promise<void> => undefined;
}

/** The desired tables a test sets by pod key; only pods of the node are returned, as the compiler does. */
class TableSource implements DesiredStateSource {
  tables = new Map<string, DesiredTable>();
  desired(snapshot: Snapshot, node: string): ReadonlyMap<string, DesiredTable> {
    return new Map([...this.tables].filter(([key]) => snapshot.pods.get(key)?.spec.nodeName === node));
  }
}

/** netns `ns-<namespace>-<name>`, identity from a map the test can bump (a new sandbox); missing pods named in `missing`. */
class FakeResolver implements NetnsResolver {
  description = "fake";
  generation = new Map<string, number>();
  missing = new Set<string>();
  async resolve(pods: readonly { namespace: string; name: string }[]): Promise<Map<string, NetnsLookup>> {
    return new Map(
      pods.map((p): [string, NetnsLookup] => {
        const key = `${p.namespace}/${p.name}`;
        if (this.missing.has(key)) return [key, fail({ code: "netns.not-found", path: key, message: "no sandbox" })];
        return [key, ok({ path: `ns-${p.namespace}-${p.name}`, id: `${key}#${this.generation.get(key) ?? 0}` })];
      }),
    );
  }
}

/** Counts concurrent runs and fails the netns listed in `failing`. */
class InstrumentedExecutor implements NftExecutor {
  readonly inner = new FakeExecutor();
  failing = new Set<string>();
  unreadable = new Set<string>();
  active = 0;
  maxActive = 0;
  async run(script: string, opts: RunOptions): Promise<NftRunResult> {
    this.active += 1;
    this.maxActive = Math.max(this.maxActive, this.active);
    await new Promise((resolve) => setTimeout(resolve, 2));
    this.active -= 1;
    if (opts.netns !== undefined && this.failing.has(opts.netns)) return { exitCode: 1, stdout: "", stderr: "Error: Could not process rule: Invalid argument\n" };
    return this.inner.run(script, opts);
  }
  list: NftExecutor["list"] = async (table, opts) => {
    if (opts.netns !== undefined && this.unreadable.has(opts.netns)) {
      return fail({ code: "nft.unknown", reason: "unknown", path: opts.netns, message: "cannot read nft's listing", details: [], stderr: "" });
    }
    return this.inner.list(table, opts);
  };
}

function setup(pods: string[], options: { parallelism?: number } = {}) {
  const state = new MutableState(snapshotFrom(pods.join("")));
  const source = new TableSource();
  const resolver = new FakeResolver();
  const executor = new InstrumentedExecutor();
  const logs: string[] = [];
  const events: { level: LogLevel; fields: Readonly<Record<string, unknown>> | undefined }[] = [];
  const log: EnforcerLog = (level, m, fields) => {
    logs.push(`${level}: ${m}`);
    events.push({ level, fields });
  };
  const metrics = createEnforcerMetrics(undefined, { defaultMetrics: false });
  const make = (): Enforcer => new Enforcer({ node: "node-1", state, source, resolver, executor, metrics, log, ...options });
  const dump = (netns: string): string => executor.inner.fake(netns).dump();
  const runs = (): string[] => executor.inner.calls.filter((c) => c.kind === "run").map((c) => `${c.netns}\n${c.script}`);
  return { state, source, resolver, executor, logs, events, metrics, make, dump, runs };
}

const A = "x/a";
const B = "x/b";

/** The element transaction taking x/a's table from 198.18.0.1 and .2 to .2 and .3, as run in its netns. */
const SWAP_1_FOR_3 = ["ns-x-a", "delete element inet nadguard allow4 { 198.18.0.1 }", "add element inet nadguard allow4 { 198.18.0.3 }", ""].join("\n");

/** A setup whose pod x/a holds the table with 198.18.0.1 and .2 after a full sync. */
async function holdingOneAndTwo(): Promise<{ t: ReturnType<typeof setup>; enforcer: Enforcer; first: DesiredTable }> {
  const t = setup([pod("x", "a")]);
  const first = desired(tableWith(["198.18.0.1", "198.18.0.2"]));
  t.source.tables.set(A, first);
  const enforcer = t.make();
  await enforcer.sync("full");
  return { t, enforcer, first };
}

describe("Enforcer", () => {
  let enforcer: Enforcer | undefined;
  afterEach(async () => {
    await enforcer?.stop();
    enforcer = undefined;
  });

  it("builds the desired table in each local pod's netns, one transaction each, and leaves other pods alone", async () => {
    const t = setup([pod("x", "a"), pod("x", "b"), pod("x", "c", "node-2")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    t.source.tables.set("x/c", desired(tableWith(["198.18.0.3"])));
    enforcer = t.make();
    const report = await enforcer.sync("full");
    expect(report.failures).toEqual([]);
    expect(report.outcomes).toEqual([
      { pod: A, netns: "ns-x-a", mode: "fresh" },
      { pod: B, netns: "ns-x-b", mode: "none" },
    ]);
    expect(t.dump("ns-x-a")).toContain("add element inet nadguard allow4 { 198.18.0.1 }");
    expect(t.dump("ns-x-b")).toBe("");
    expect(t.executor.inner.calls.filter((c) => c.netns === "ns-x-c")).toEqual([]);
    expect(t.runs()).toHaveLength(1);
  });

  it("logs every apply at info with its pod, netns, mode, elements added and removed and duration; what it left alone at debug", async () => {
    const t = setup([pod("x", "a"), pod("x", "b")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1", "198.18.0.2"])));
    enforcer = t.make();
    await enforcer.sync("full");
    t.source.tables.set(A, desired(tableWith(["198.18.0.2", "198.18.0.3", "198.18.0.4"])));
    await enforcer.sync("partial");
    const applies = t.events.filter((e) => e.level === "info");
    expect(applies).toEqual([
      { level: "info", fields: { pod: A, netns: "ns-x-a", mode: "fresh", added: 2, removed: 0, durationMs: expect.any(Number) } },
      { level: "info", fields: { pod: A, netns: "ns-x-a", mode: "elements", added: 2, removed: 1, durationMs: expect.any(Number) } },
    ]);
    expect(t.logs.filter((l) => l.startsWith("info: "))).toEqual(["info: x/a: applied (fresh, +2 -0 elements)", "info: x/a: applied (elements, +2 -1 elements)"]);
    expect(t.events).toContainEqual({ level: "debug", fields: { pod: B, netns: "ns-x-b", adopted: false } });
  });

  it("logs and counts what a policy asks that the rules cannot express, when it applies the table", async () => {
    const t = setup([pod("x", "a")]);
    const warning = { code: "policy.named-port-unresolved" as const, path: "x/p: spec.ingress[0].ports[0]", message: "named port http is defined by no pod" };
    t.source.tables.set(A, { ...desired(tableWith(["198.18.0.1"])), warnings: [warning] });
    enforcer = t.make();
    await enforcer.sync("full");
    expect(t.logs).toContain("warn: x/a: x/p: spec.ingress[0].ports[0]: named port http is defined by no pod");
    const text = await t.metrics.registry.getSingleMetricAsString("nadguard_policy_warnings_total");
    expect(text).toContain('nadguard_policy_warnings_total{code="policy.named-port-unresolved"} 1');
  });

  it("does nothing on a partial sync when nothing changed", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    enforcer = t.make();
    await enforcer.sync("full");
    const calls = t.executor.inner.calls.length;
    const report = await enforcer.sync("partial");
    expect(report.outcomes).toEqual([]);
    expect(t.executor.inner.calls.length).toBe(calls);
  });

  it("applies the source's element transaction when the netns holds the table it starts from, without reading the new table", async () => {
    const held = await holdingOneAndTwo();
    const { t, first } = held;
    enforcer = held.enforcer;
    const next = tableWith(["198.18.0.2", "198.18.0.3"]);
    let read = 0;
    const ops = [
      { verb: "delete" as const, object: element("allow4", ["198.18.0.1"]) },
      { verb: "add" as const, object: element("allow4", ["198.18.0.3"]) },
    ];
    t.source.tables.set(A, {
      get state(): TableState {
        read += 1;
        return next;
      },
      fingerprint: JSON.stringify(next),
      transition: { from: first.fingerprint, ops },
    });
    const report = await enforcer.sync("partial");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "elements" }]);
    expect(read).toBe(0);
    expect(t.runs().at(-1)).toBe(SWAP_1_FOR_3);
    expect(t.logs.filter((l) => l.startsWith("info: ")).at(-1)).toBe("info: x/a: applied (elements, +1 -1 elements)");
    // What the netns holds is the new table: a full sync reads it back, finds it equal and writes nothing.
    const runs = t.runs().length;
    expect((await enforcer.sync("full")).outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "none" }]);
    expect(t.runs()).toHaveLength(runs);
    expect(t.dump("ns-x-a")).toContain("198.18.0.3");
    expect(t.dump("ns-x-a")).not.toContain("198.18.0.1 ");
  });

  it("plans from the tables when the netns does not hold the table the source's transaction starts from", async () => {
    const held = await holdingOneAndTwo();
    const { t } = held;
    enforcer = held.enforcer;
    const next = tableWith(["198.18.0.2", "198.18.0.3"]);
    // A transaction from some other table (a sync the netns missed): not applied.
    const wrong = [{ verb: "add" as const, object: element("allow4", ["198.18.0.9"]) }];
    t.source.tables.set(A, { ...desired(next), transition: { from: "another fingerprint", ops: wrong } });
    const report = await enforcer.sync("partial");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "elements" }]);
    expect(t.runs().at(-1)).toBe(SWAP_1_FOR_3);
    expect(t.dump("ns-x-a")).not.toContain("198.18.0.9");
  });

  it("changes only elements when only set contents changed", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1", "198.18.0.2"])));
    enforcer = t.make();
    await enforcer.sync("full");
    t.source.tables.set(A, desired(tableWith(["198.18.0.2", "198.18.0.3"])));
    const report = await enforcer.sync("partial");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "elements" }]);
    expect(t.runs().at(-1)).toBe(
      ["ns-x-a", "delete element inet nadguard allow4 { 198.18.0.1 }", "add element inet nadguard allow4 { 198.18.0.3 }", ""].join("\n"),
    );
  });

  it("flushes and rebuilds a chain whose rules changed, in the same transaction as the elements", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    enforcer = t.make();
    await enforcer.sync("full");
    t.source.tables.set(A, desired(tableWith(["198.18.0.2"], "tcp dport 22 accept")));
    const report = await enforcer.sync("partial");
    expect(report.outcomes[0]!.mode).toBe("chains");
    const script = t.runs().at(-1)!;
    expect(script).toContain("flush chain inet nadguard ingress");
    expect(script).not.toContain("delete table");
    expect(t.dump("ns-x-a")).toBe(await dumpOf(tableWith(["198.18.0.2"], "tcp dport 22 accept")));
  });

  it("replaces the table whole when a set definition changed", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    enforcer = t.make();
    await enforcer.sync("full");
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"], undefined, [])));
    const report = await enforcer.sync("partial");
    expect(report.outcomes[0]!.mode).toBe("fresh");
    expect(t.runs().at(-1)).toMatch(/^ns-x-a\nadd table inet nadguard\ndelete table inet nadguard\nadd table inet nadguard\n/);
  });

  it("removes the table when a pod needs none any more, and forgets a deleted pod without touching its netns", async () => {
    const t = setup([pod("x", "a"), pod("x", "b")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    t.source.tables.set(B, desired(tableWith(["198.18.0.2"])));
    enforcer = t.make();
    await enforcer.sync("full");
    t.source.tables.delete(A);
    t.state.set(snapshotFrom(pod("x", "a")));
    const calls = t.executor.inner.calls.length;
    const report = await enforcer.sync("partial");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "remove" }]);
    expect(t.dump("ns-x-a")).toBe("");
    expect(t.dump("ns-x-b")).toContain("198.18.0.2");
    expect(t.executor.inner.calls.slice(calls).every((c) => c.netns === "ns-x-a")).toBe(true);
    expect([...enforcer.tracked().keys()]).toEqual([A]);
    expect(t.logs).toContain("info: x/b: forgotten (no longer on this node)");
  });

  it("forgets a pod replaced by one of the same name (new uid) and rebuilds its new netns", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    enforcer = t.make();
    await enforcer.sync("full");
    t.state.set(snapshotFrom(pod("x", "a", "node-1", "uid-2")));
    t.resolver.generation.set(A, 1);
    const report = await enforcer.sync("partial");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "none", adopted: true }]);
  });

  it("rebuilds the table of a new sandbox (same path, new netns identity) on the next full sync", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    enforcer = t.make();
    await enforcer.sync("full");
    // The sandbox is recreated: the same path now names an empty namespace.
    await t.executor.inner.fake("ns-x-a").run(t.executor.inner.fake("ns-x-a").transaction().add({ kind: "table" }).delete({ kind: "table" }));
    t.resolver.generation.set(A, 1);
    const report = await enforcer.sync("full");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "fresh" }]);
    expect(t.dump("ns-x-a")).toContain("198.18.0.1");
  });

  it("marks a netns whose apply failed dirty, retries it whole, and names it", async () => {
    const t = setup([pod("x", "a"), pod("x", "b")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    t.source.tables.set(B, desired(tableWith(["198.18.0.2"])));
    enforcer = t.make();
    await enforcer.sync("full");
    t.source.tables.set(A, desired(tableWith(["198.18.0.9"])));
    t.executor.failing.add("ns-x-a");
    const failed = await enforcer.sync("partial");
    expect(failed.failures).toHaveLength(1);
    expect(failed.failures[0]).toMatchObject({ pod: A, netns: "ns-x-a", problem: { code: "nft.invalid" } });
    expect(t.logs.some((l) => l.startsWith("error: x/a (ns-x-a):"))).toBe(true);
    t.executor.failing.clear();
    const retried = await enforcer.sync("partial");
    // Read back first: the failed transaction changed nothing, so the old table is there; replaced by a diff of what was read.
    expect(retried.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "elements" }]);
    expect(t.dump("ns-x-a")).toContain("198.18.0.9");
    expect(t.dump("ns-x-a")).not.toContain("198.18.0.1 ");
    const text = await t.metrics.registry.getSingleMetricAsString("nadguard_enforcer_apply_failures_total");
    expect(text).toContain('nadguard_enforcer_apply_failures_total{reason="invalid"} 1');
  });

  it("names a pod whose netns cannot be found, and does not count a pod that needs no table", async () => {
    const t = setup([pod("x", "a"), pod("x", "b")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    t.resolver.missing.add(A);
    t.resolver.missing.add(B);
    enforcer = t.make();
    const report = await enforcer.sync("full");
    expect(report.failures.map((f) => [f.pod, f.problem.code])).toEqual([[A, "netns.not-found"]]);
  });

  it("adopts tables that already hold the desired state after a restart, writing nothing", async () => {
    const t = setup([pod("x", "a"), pod("x", "b")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    t.source.tables.set(B, desired(tableWith(["198.18.0.2"])));
    await t.make().sync("full");
    t.source.tables.set(B, desired(tableWith(["198.18.0.7"])));
    const before = t.runs().length;
    enforcer = t.make();
    const report = await enforcer.sync("full");
    expect(report.outcomes).toEqual([
      { pod: A, netns: "ns-x-a", mode: "none", adopted: true },
      { pod: B, netns: "ns-x-b", mode: "elements" },
    ]);
    expect(t.runs().length).toBe(before + 1);
  });

  it("removes a table left behind for a pod that needs none, found when reading back at start", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    await t.make().sync("full");
    t.source.tables.clear();
    enforcer = t.make();
    const report = await enforcer.sync("full");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "remove" }]);
    expect(t.dump("ns-x-a")).toBe("");
  });

  it("restores a table changed behind its back on a full sync", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    enforcer = t.make();
    await enforcer.sync("full");
    const fake = t.executor.inner.fake("ns-x-a");
    await fake.run(fake.transaction().flush(chain("ingress")));
    expect((await enforcer.sync("partial")).outcomes).toEqual([]);
    const report = await enforcer.sync("full");
    expect(report.outcomes[0]!.mode).toBe("chains");
    expect(t.dump("ns-x-a")).toContain('iifname "net1" drop');
    expect(t.logs.some((l) => l.includes("changed behind nadguard's back"))).toBe(true);
  });

  it("replaces a table it cannot read back, and fails a netns it cannot enter", async () => {
    const t = setup([pod("x", "a"), pod("x", "b")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    t.source.tables.set(B, desired(tableWith(["198.18.0.2"])));
    t.executor.unreadable.add("ns-x-a");
    const original = t.executor.list;
    t.executor.list = async (table, opts) =>
      opts.netns === "ns-x-b" ? fail({ code: "nft.exec", reason: "exec", path: "ns-x-b", message: "nsenter: cannot open ns-x-b", details: [], stderr: "" }) : original(table, opts);
    enforcer = t.make();
    const report = await enforcer.sync("full");
    expect(report.outcomes).toEqual([{ pod: A, netns: "ns-x-a", mode: "fresh" }]);
    expect(report.failures.map((f) => [f.pod, f.problem.code])).toEqual([[B, "nft.exec"]]);
    expect(t.logs.some((l) => l.startsWith("warn: x/a: cannot read table inet nadguard"))).toBe(true);
  });

  it("works on at most `parallelism` netns at once", async () => {
    const pods = Array.from({ length: 12 }, (_, i) => pod("x", `p${i}`));
    const t = setup(pods, { parallelism: 3 });
    for (let i = 0; i < 12; i += 1) t.source.tables.set(`x/p${i}`, desired(tableWith([`198.18.0.${i + 1}`])));
    enforcer = t.make();
    const report = await enforcer.sync("full");
    expect(report.outcomes.filter((o) => o.mode === "fresh")).toHaveLength(12);
    expect(t.executor.maxActive).toBe(3);
  });

  it("stop leaves the tables in place unless asked to remove them", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    const first = t.make();
    await first.sync("full");
    await first.stop();
    expect(t.dump("ns-x-a")).not.toBe("");
    const second = t.make();
    await second.sync("full");
    await second.stop({ removeTables: true });
    expect(t.dump("ns-x-a")).toBe("");
  });

  it("follows the cluster state when started: a change is applied and measured", async () => {
    const t = setup([pod("x", "a")]);
    t.source.tables.set(A, desired(tableWith(["198.18.0.1"])));
    enforcer = new Enforcer({
      node: "node-1",
      state: t.state,
      source: t.source,
      resolver: t.resolver,
      executor: t.executor,
      metrics: t.metrics,
      runner: { minIntervalMs: 5, maxIntervalMs: 60_000 },
    });
    enforcer.start();
    await waitFor(() => t.dump("ns-x-a").includes("198.18.0.1"));
    t.source.tables.set(A, desired(tableWith(["198.18.0.5"])));
    t.state.set(snapshotFrom(pod("x", "a")));
    await waitFor(() => t.dump("ns-x-a").includes("198.18.0.5"));
    const text = await t.metrics.registry.metrics();
    expect(text).toMatch(/nadguard_enforcer_event_to_applied_seconds_count 1\b/);
    expect(text).toMatch(/nadguard_enforcer_applies_total\{mode="elements"\} 1\b/);
    expect(text).toMatch(/nadguard_enforcer_sync_duration_seconds_count\{kind="full"\} 1\b/);
    expect(text).toMatch(/nadguard_enforcer_pods_managed 1\b/);
    expect(text).toMatch(/nadguard_enforcer_netns_managed 1\b/);
  });
});

/** What a netns holding exactly `state` dumps as. */
async function dumpOf(state: TableState): Promise<string> {
  const fake = new NftFake();
  await fake.run(fake.transaction().append(freshTableOps(state)));
  return fake.dump();
}

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
