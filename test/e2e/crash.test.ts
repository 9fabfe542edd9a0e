// End-to-end: killing the enforcer (SIGKILL) at random points during a sync
// never leaves a netns with a partial ruleset. After each kill every pod's table, read back, must be
// exactly the table of the state before the change or of the state after it (or no table where one
// of them has none) — never a mix inside one netns — and a restarted enforcer converges.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStateDir } from "../../src/cluster/state-dir.js";
import { Nft } from "../../src/nft/nft.js";
import { REMOVE_TABLE_OPS } from "../../src/enforcer/plan.js";
import { BLUE, RED, policy } from "../policy-conformance/grid.js";
import { EnforcerProcess } from "./enforcer-process.js";
import { gridLab } from "./grid-lab.js";
import type { Lab } from "./lab.js";
import { acquireE2eLock, sleep } from "./sys.js";
import { actualTable, desiredTables, sameOrBothAbsent, waitConverged } from "./tables.js";
import { prng } from "../support/prng.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("\n!! test/e2e/crash.test.ts SKIPPED: not root (network namespaces, CNI plugins and nft need root) !!\n");

const BOTH = `${BLUE},${RED}`;

/** Policy sets whose tables differ in every pod (elements in both directions, both families). */
const STATES: readonly (readonly unknown[])[] = [
  [
    policy("x", "from-y", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] }, BOTH),
    policy("y", "out", { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: "198.18.0.0/23", except: ["198.18.0.16/28"] } }, { ipBlock: { cidr: "fd00::/8" } }], ports: [{ port: 80, endPort: 90 }, { protocol: "UDP", port: 53 }] }] }, BOTH),
    policy("z", "deny", { podSelector: {}, policyTypes: ["Ingress", "Egress"] }, BOTH),
  ],
  [
    policy("x", "web", { podSelector: {}, ingress: [{ ports: [{ port: 80 }, { port: 81 }] }], egress: [{ to: [{ podSelector: {} }] }] }, BOTH),
    policy("y", "from-b", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "b" } } }] }] }, BOTH),
    policy("z", "from-x", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "x" } } }] }] }, BLUE),
  ],
  [],
];


describe.skipIf(!isRoot)("e2e: killing the enforcer at random points", () => {
  let lab: Lab;
  let enforcer: EnforcerProcess | undefined;
  let release: (() => Promise<void>) | undefined;
  const seed = Number(process.env.NADGUARD_E2E_SEED ?? Date.now() % 1_000_000);
  const random = prng(seed);

  beforeAll(async () => {
    release = await acquireE2eLock();
    lab = await gridLab();
    console.log(`crash suite seed ${seed} (NADGUARD_E2E_SEED=${seed} replays it)`);
  }, 600_000);

  afterAll(async () => {
    if (enforcer) {
      enforcer.kill("SIGKILL");
      await enforcer.exited;
    }
    await lab?.destroy();
    await release?.();
  }, 120_000);

  /** Every pod's table is whole: the before or the after table, per pod. Returns how many hold the after one (where they differ). */
  async function checkWhole(before: Map<string, unknown>, after: Map<string, unknown>, label: string): Promise<{ after: number; differing: number }> {
    let atAfter = 0;
    let differing = 0;
    const broken: string[] = [];
    for (const pod of lab.pods.values()) {
      const actual = await actualTable(pod.netnsPath);
      const b = before.get(pod.key) as Parameters<typeof sameOrBothAbsent>[0];
      const a = after.get(pod.key) as Parameters<typeof sameOrBothAbsent>[0];
      const isBefore = sameOrBothAbsent(actual, b);
      const isAfter = sameOrBothAbsent(actual, a);
      if (!isBefore && !isAfter) broken.push(`${label}: ${pod.key} holds neither the table before nor the one after (elements: ${actual?.elements.length ?? "no table"}, rules: ${actual?.rules.length ?? "-"})`);
      if (!sameOrBothAbsent(a, b)) {
        differing += 1;
        if (isAfter) atAfter += 1;
      }
    }
    expect(broken).toEqual([]);
    return { after: atAfter, differing };
  }

  /** Waits until orphaned nft processes of a killed enforcer are done (their transactions commit or not, whole). */
  async function settle(): Promise<void> {
    await sleep(150);
  }

  it("kills during change syncs leave every netns at the old or the new table, whole", async () => {
    enforcer = EnforcerProcess.start(lab, { parallelism: 1, minIntervalMs: 1 });
    await enforcer.waitForSyncs(1);
    await waitConverged(lab);
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      const before = desiredTables(lab, await loadStateDir(lab.stateDir));
      await lab.setPolicies(STATES[i % STATES.length]!);
      const after = desiredTables(lab, await loadStateDir(lab.stateDir));
      // The state source debounces 100 ms, then the sync applies 9 netns one by one.
      const delay = 90 + Math.floor(random() * 160);
      await sleep(delay);
      enforcer.kill("SIGKILL");
      await enforcer.exited;
      await settle();
      const { after: done, differing } = await checkWhole(before, after, `iteration ${i} (killed ${delay} ms after the change)`);
      outcomes.push(`${done}/${differing}`);
      enforcer = EnforcerProcess.start(lab, { parallelism: 1, minIntervalMs: 1 });
      await enforcer.waitForSyncs(1);
      await waitConverged(lab);
    }
    console.log(`netns at the new table when killed (per iteration, new/changed): ${outcomes.join(" ")}`);
    // Ten enforcer restarts, each loading the TypeScript sources: a budget for a busy 2-core machine.
  }, 120_000);

  it("kills during the first sync of a new enforcer leave every netns with no table or the whole table", async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      enforcer?.kill("SIGKILL");
      await enforcer?.exited;
      await lab.setPolicies(STATES[i % 2]!);
      await Promise.all(
        [...lab.pods.values()].map(async (pod) => {
          const nft = new Nft({ netns: pod.netnsPath });
          const r = await nft.run(nft.transaction().append(REMOVE_TABLE_OPS));
          if (!r.ok) throw new Error(r.error.message);
        }),
      );
      const none = new Map<string, unknown>();
      const after = desiredTables(lab, await loadStateDir(lab.stateDir));
      enforcer = EnforcerProcess.start(lab, { parallelism: 1 });
      // Wait for it to serve (it is about to sync), then kill it a little later.
      const deadline = Date.now() + 20_000;
      while ((await enforcer.metrics()) === undefined && Date.now() < deadline) await sleep(5);
      const delay = Math.floor(random() * 80);
      await sleep(delay);
      enforcer.kill("SIGKILL");
      await enforcer.exited;
      await settle();
      const { after: done, differing } = await checkWhole(none, after, `first sync ${i} (killed ${delay} ms after serving)`);
      outcomes.push(`${done}/${differing}`);
    }
    enforcer = EnforcerProcess.start(lab);
    await enforcer.waitForSyncs(1);
    await waitConverged(lab);
    console.log(`netns with their table when killed during the first sync (per run, built/wanted): ${outcomes.join(" ")}`);
  }, 120_000);
});
