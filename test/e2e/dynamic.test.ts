// End-to-end dynamic cases: a long-running `nadguard enforce` follows the
// lab's state directory while pods and namespaces are relabelled, policies edited, retargeted and
// deleted, a pod restarted with new addresses, and the enforcer itself restarted (SIGTERM and
// SIGKILL) under a probe loop that must never get through to an isolated interface.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStateDir } from "../../src/cluster/state-dir.js";
import { BLUE, RED, policy } from "../policy-conformance/grid.js";
import type { ProbeResult } from "./agent-client.js";
import { EnforcerProcess } from "./enforcer-process.js";
import { addressOf, compareWithOracle, eth0Failures, gridLab, modelOf, reached, type MatrixProbe } from "./grid-lab.js";
import type { Lab } from "./lab.js";
import { LEVEL, acquireE2eLock, sleep } from "./sys.js";
import { actualTable, waitConverged } from "./tables.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("\n!! test/e2e/dynamic.test.ts SKIPPED: not root (network namespaces, CNI plugins and nft need root) !!\n");

const TCP80_BLUE: MatrixProbe = { network: BLUE, protocol: "TCP", port: 80 };
const TCP80_RED: MatrixProbe = { network: RED, protocol: "TCP", port: 80 };
const TCP81_BLUE: MatrixProbe = { network: BLUE, protocol: "TCP", port: 81 };

describe.skipIf(!isRoot)("e2e dynamic: the enforcer follows changes and restarts without a window", () => {
  let lab: Lab;
  let enforcer: EnforcerProcess | undefined;
  let release: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    release = await acquireE2eLock();
    lab = await gridLab();
    enforcer = EnforcerProcess.start(lab);
    await enforcer.waitForSyncs(1);
  }, 600_000);

  afterAll(async () => {
    await enforcer?.stop();
    await lab?.destroy();
    await release?.();
  }, 120_000);

  /** Waits until every netns holds its desired table, then probes and compares with the oracle. */
  async function converged(probes: MatrixProbe[] = [TCP80_BLUE, TCP80_RED]) {
    await waitConverged(lab);
    const result = await compareWithOracle(lab, probes, modelOf(await loadStateDir(lab.stateDir)));
    expect(result.problems.join("\n\n")).toBe("");
    return result.observed;
  }

  it("relabel a pod: it becomes (and stops being) a peer", async () => {
    await lab.setPolicies([policy("x", "from-b", { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })]);
    let seen = await converged();
    expect(reached(seen, TCP80_BLUE, 4, "x/a", "x/c")).toBe(false);
    await lab.relabelPod("x/a", { pod: "b" });
    seen = await converged();
    expect(reached(seen, TCP80_BLUE, 4, "x/a", "x/c")).toBe(true);
    expect(reached(seen, TCP80_BLUE, 6, "x/a", "x/c")).toBe(true);
    await lab.relabelPod("x/a", { pod: "a" });
    seen = await converged();
    expect(reached(seen, TCP80_BLUE, 4, "x/a", "x/c")).toBe(false);
  });

  it("relabel a namespace: its pods become peers", async () => {
    await lab.setPolicies([policy("x", "from-y", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] })]);
    let seen = await converged();
    expect(reached(seen, TCP80_BLUE, 4, "z/b", "x/a")).toBe(false);
    await lab.setNamespaceLabels("z", { ns: "y" });
    seen = await converged();
    expect(reached(seen, TCP80_BLUE, 4, "z/b", "x/a")).toBe(true);
    await lab.setNamespaceLabels("z", { ns: "z" });
    seen = await converged();
    expect(reached(seen, TCP80_BLUE, 6, "z/b", "x/a")).toBe(false);
  });

  it("edit a policy: another port", async () => {
    await lab.setPolicies([policy("x", "port", { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })]);
    let seen = await converged([TCP80_BLUE, TCP81_BLUE]);
    expect([reached(seen, TCP80_BLUE, 4, "y/a", "x/a"), reached(seen, TCP81_BLUE, 4, "y/a", "x/a")]).toEqual([true, false]);
    await lab.setPolicies([policy("x", "port", { podSelector: {}, ingress: [{ ports: [{ port: 81 }] }] })]);
    seen = await converged([TCP80_BLUE, TCP81_BLUE]);
    expect([reached(seen, TCP80_BLUE, 4, "y/a", "x/a"), reached(seen, TCP81_BLUE, 4, "y/a", "x/a")]).toEqual([false, true]);
  });

  it("edit policy-for: the policy moves from one network to the other", async () => {
    const deny = (policyFor: string) => policy("x", "deny", { podSelector: {}, policyTypes: ["Ingress"] }, policyFor);
    await lab.setPolicies([deny(BLUE)]);
    let seen = await converged();
    expect([reached(seen, TCP80_BLUE, 4, "y/a", "x/a"), reached(seen, TCP80_RED, 4, "y/a", "x/a")]).toEqual([false, true]);
    await lab.setPolicies([deny(RED)]);
    seen = await converged();
    expect([reached(seen, TCP80_BLUE, 4, "y/a", "x/a"), reached(seen, TCP80_RED, 4, "y/a", "x/a")]).toEqual([true, false]);
  });

  it("delete a policy: the tables are left empty of its rules", async () => {
    await lab.setPolicies([policy("x", "deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }, `${BLUE},${RED}`)]);
    await converged();
    expect((await actualTable(lab.pod("x/a").netnsPath))?.elements.length).toBeGreaterThan(0);
    await lab.setPolicies([]);
    const seen = await converged();
    expect(seen.every((o) => o.cells.flat().every(Boolean))).toBe(true);
    for (const pod of lab.pods.values()) {
      const table = await actualTable(pod.netnsPath);
      expect({ pod: pod.key, elements: table?.elements ?? [] }).toEqual({ pod: pod.key, elements: [] });
    }
  });

  it("restart a pod: new address, and its peers' tables follow", async () => {
    await lab.setPolicies([
      policy("x", "from-ya", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] }] }, `${BLUE},${RED}`),
    ]);
    let seen = await converged();
    expect(reached(seen, TCP80_BLUE, 4, "y/a", "x/b")).toBe(true);
    const old = addressOf(lab, "y/a", BLUE, 4);
    await lab.restartPod("y/a", [
      { network: BLUE, v4: "198.18.0.110", v6: "fd00:b::6e" },
      { network: RED, v4: "198.18.1.110", v6: "fd00:c::6e" },
    ]);
    expect(addressOf(lab, "y/a", BLUE, 4)).toBe("198.18.0.110");
    seen = await converged();
    expect(reached(seen, TCP80_BLUE, 4, "y/a", "x/b")).toBe(true);
    expect(reached(seen, TCP80_RED, 6, "y/a", "x/b")).toBe(true);
    const texts = (await actualTable(lab.pod("x/b").netnsPath))!.elements.map((e) => e.key.join(" . "));
    expect(texts.some((t) => t.includes("198.18.0.110"))).toBe(true);
    expect(texts.some((t) => t.includes(old))).toBe(false);
    expect(await eth0Failures(lab)).toEqual([]);
  });

  it("restart the enforcer (SIGTERM, then SIGKILL): no window where an isolated interface accepts a new connection", async () => {
    await lab.setPolicies([policy("x", "deny", { podSelector: {}, policyTypes: ["Ingress"] }, `${BLUE},${RED}`)]);
    await converged();
    const isolated = ["x/a", "x/b", "x/c"].flatMap((to) =>
      [BLUE, RED].flatMap((network) => ([4, 6] as const).map((family) => ({ to, host: addressOf(lab, to, network, family) }))),
    );
    const control = addressOf(lab, "z/c", BLUE, 4);
    const leaks: string[] = [];
    const controlFailures: ProbeResult[] = [];
    let rounds = 0;
    let looping = true;
    const loop = (async () => {
      while (looping) {
        const results = await Promise.all(isolated.map((t) => lab.probe("y/b", { proto: "tcp", host: t.host, port: 80, timeoutMs: 100 }).then((r) => ({ t, r }))));
        for (const { t, r } of results) if (r.result !== "closed") leaks.push(`round ${rounds}: y/b → ${t.to} ${t.host}: ${r.result}`);
        const c = await lab.probe("y/b", { proto: "tcp", host: control, port: 80, timeoutMs: 1000 });
        if (c.result !== "open") controlFailures.push(c);
        rounds += 1;
      }
    })();

    await sleep(300);
    expect(await enforcer!.stop()).toBe(0);
    expect(enforcer!.output.some((l) => l.includes("tables stay in place"))).toBe(true);
    await sleep(300); // no enforcer at all for a while
    enforcer = EnforcerProcess.start(lab);
    await enforcer.waitForSyncs(1);
    await sleep(200);
    enforcer.kill("SIGKILL");
    await enforcer.exited;
    await sleep(200);
    enforcer = EnforcerProcess.start(lab);
    await enforcer.waitForSyncs(1);
    await sleep(300);
    looping = false;
    await loop;

    expect(leaks).toEqual([]);
    expect(controlFailures).toEqual([]);
    expect(rounds).toBeGreaterThan(10);
    await converged();
  }, 90_000);

  it("serves its metrics on /metrics", async () => {
    await lab.setPolicies([policy("x", "p80", { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] })]);
    await converged();
    const text = (await enforcer!.metrics()) ?? "";
    for (const name of [
      "nadguard_enforcer_sync_duration_seconds_bucket",
      "nadguard_enforcer_pods_managed 9",
      "nadguard_enforcer_netns_managed 9",
      "nadguard_enforcer_event_to_applied_seconds_count",
      "nadguard_enforcer_applies_total",
      "nadguard_enforcer_apply_failures_total",
    ]) {
      expect(text).toContain(name);
    }
    expect(Number(/^nadguard_enforcer_event_to_applied_seconds_count (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
  });

  it("logs every apply as a JSON line on stdout (pod, netns, elements added and removed, duration), and prints nothing else", async () => {
    const before = enforcer!.logs.length;
    await lab.setPolicies([policy("x", "p81", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ ports: [{ port: 81 }] }] })]);
    await converged();
    const applied = enforcer!.logs.slice(before).filter((l) => l.level === LEVEL.info && / applied \(/.test(l.msg));
    // p80 (every pod of x) gives way to p81 (x/a only): the tables of x's pods change, no other.
    expect(applied.map((l) => l.pod).sort()).toEqual(["x/a", "x/b", "x/c"]);
    for (const l of applied) {
      expect(l).toMatchObject({ netns: lab.pod(l.pod as string).netnsPath, mode: expect.any(String), added: expect.any(Number), removed: expect.any(Number), durationMs: expect.any(Number) });
    }
    const a = applied.find((l) => l.pod === "x/a")!;
    expect({ mode: a.mode, gained: (a.added as number) > 0, lost: (a.removed as number) > 0 }).toEqual({ mode: "elements", gained: true, lost: true });
    expect(enforcer!.notJson).toEqual([]);
    expect(enforcer!.output.filter((l) => l.startsWith("stderr: "))).toEqual([]);
  });

  it("removes its tables on exit only when asked (--remove-on-exit)", async () => {
    await enforcer!.stop();
    for (const pod of lab.pods.values()) expect(await actualTable(pod.netnsPath)).toBeDefined();
    enforcer = EnforcerProcess.start(lab, { removeOnExit: true });
    await enforcer.waitForSyncs(1);
    expect(await enforcer.stop()).toBe(0);
    for (const pod of lab.pods.values()) expect(await actualTable(pod.netnsPath)).toBeUndefined();
    enforcer = EnforcerProcess.start(lab);
    await enforcer.waitForSyncs(1);
    await converged();
  });
});
