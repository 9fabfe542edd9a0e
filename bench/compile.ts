// Benchmark 2 — compile: the full compile of synthetic clusters (pods × policies, two secondary
// networks, a realistic selector mix) and the incremental path after one pod relabel, one namespace
// relabel and one policy edit: time, what changes, and how big the transactions are. Pure CPU work
// in this process, measured with the GC forced between runs.
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Snapshot } from "../src/api/snapshot.js";
import { DEFAULT_CONFIG } from "../src/config/config.js";
import type * as PolicyModule from "../src/policy/index.js";
import { type Section, skipped } from "./report.js";
import { type Table, bytes, count, ms, msPair, pairedRatios, ratioPair, size, summarize } from "./stats.js";
import { type PolicyCluster, editPolicy, policyCluster, relabelNamespace, relabelPod } from "./synthetic.js";
import { engineModule } from "./system.js";

type Policy = typeof PolicyModule;

/** Pods whose scripts are rendered to measure render time and sizes. */
const SAMPLE = 500;
/** Repetitions of one cluster size stop once they have used this much time (at least two run). */
const BUDGET_MS = 90_000;

/** The GC, exposed at run time (tsx gives no way to pass --expose-gc through npm scripts). */
export function forceGc(): () => void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  return () => {
    gc();
    gc();
  };
}

/**
 * After a forced GC, V8 keeps sweeping on background threads and an allocation that needs swept pages
 * waits for it; a watch event reaches an idle enforcer, not one in the middle of a major GC, so an
 * incremental run starts after this pause.
 */
const SETTLE_MS = 100;
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

interface Change {
  readonly id: string;
  readonly label: string;
  readonly make: (c: PolicyCluster) => Snapshot;
  /** The events passed to recompile, as a watch delivers them; absent: recompile diffs the snapshots. */
  readonly events?: (c: PolicyCluster) => PolicyModule.PolicyEvent[];
}

const relabelFirstPod = (c: PolicyCluster): Snapshot => {
  const key = c.podKeys[0]!;
  const app = c.snapshot.pods.get(key)?.metadata.labels?.app === "api" ? "web" : "api";
  return relabelPod(c.snapshot, key, app);
};

const CHANGES: readonly Change[] = [
  { id: "pod", label: "one pod relabelled", make: relabelFirstPod },
  { id: "pod-events", label: "one pod relabelled, its event passed", make: relabelFirstPod, events: (c) => [{ kind: "pod", key: c.podKeys[0]! }] },
  {
    id: "namespace",
    label: "one namespace relabelled",
    make: (c) => {
      const ns = c.namespaces[0]!;
      const team = c.snapshot.namespaces.get(ns)?.metadata.labels?.team === "team-1" ? "team-2" : "team-1";
      return relabelNamespace(c.snapshot, ns, { team });
    },
  },
  { id: "policy", label: "one policy edited (+1 port)", make: (c) => editPolicy(c.snapshot, c.policyKeys[Math.min(1, c.policyKeys.length - 1)]!, 8443) },
];

function timed<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const value = fn();
  return [value, performance.now() - t];
}

export const compile: Section = {
  id: "compile",
  title: "2. Compile: full and incremental",
  async run(ctx) {
    let policy: Policy;
    let from: "dist" | "tsx";
    try {
      const loaded = await engineModule<Policy>("src/policy/index.js");
      policy = loaded.module;
      from = loaded.from;
    } catch (error) {
      return skipped(`src/policy cannot be loaded: ${(error as Error).message.split("\n")[0]}`);
    }
    if (typeof policy.compile !== "function" || typeof policy.recompile !== "function" || typeof policy.podScript !== "function") {
      return skipped("src/policy does not export compile, recompile and podScript yet");
    }
    const gc = forceGc();
    const podSizes = ctx.full ? [100, 1000, 10_000] : [100, 1000];
    const policySizes = ctx.full ? [10, 100, 1000] : [10, 100];
    const fullRows: string[][] = [];
    const incRows: string[][] = [];
    const facts: { pods: number; policies: number; fullMs: number; retained: number; podMs: number; podEventsMs: number; podAffected: number; podOps: number }[] = [];

    for (const pods of podSizes) {
      for (const policies of policySizes) {
        const cluster = policyCluster({ pods, policies });
        const reps = ctx.full ? (pods * policies >= 1_000_000 ? 5 : 9) : 2;
        ctx.log(`compile: ${pods} pods × ${policies} policies, ${reps} repetitions`);
        // Warm-up: one untimed compile and recompile per change (JIT).
        let compiled = policy.compile(cluster.snapshot, DEFAULT_CONFIG);
        const changed = CHANGES.map((c) => c.make(cluster));
        const eventsOf = CHANGES.map((c) => c.events?.(cluster));
        changed.forEach((next, i) => policy.recompile(compiled, next, DEFAULT_CONFIG, eventsOf[i]));

        const fullTimes: number[] = [];
        const incTimes = CHANGES.map((): number[] => []);
        // Retained: heap growth while the new result and the previous one are both alive (one result's size).
        let retained = 0;
        const began = performance.now();
        for (let rep = 0; rep < reps && (rep < 2 || performance.now() - began < BUDGET_MS); rep++) {
          gc();
          const before = process.memoryUsage().heapUsed;
          const [result, t] = timed(() => policy.compile(cluster.snapshot, DEFAULT_CONFIG));
          fullTimes.push(t);
          gc();
          retained = Math.max(retained, process.memoryUsage().heapUsed - before);
          compiled = result;
          for (const [i, next] of changed.entries()) {
            gc();
            await settle();
            incTimes[i]!.push(timed(() => policy.recompile(compiled, next, DEFAULT_CONFIG, eventsOf[i]))[1]);
          }
        }

        // Sizes (once: the compiler is deterministic), from a sample of pods: a cluster-wide render is
        // not what an enforcer does (it renders its node's pods), and at 10,000 pods it takes minutes.
        const sample = [...compiled.states.values()].slice(0, SAMPLE);
        let elements = 0;
        let scriptBytes = 0;
        let rulesPerPod = 0;
        for (const state of sample.slice(0, 20)) policy.podScript(state); // warm-up
        const [, renderMs] = timed(() => {
          for (const state of sample) scriptBytes += policy.podScript(state).length;
        });
        for (const state of sample) {
          const table = policy.desiredTable(state);
          elements += table.elements.length;
          rulesPerPod = Math.max(rulesPerPod, table.rules.length);
        }
        const perPod = (x: number): number => (sample.length > 0 ? x / sample.length : Number.NaN);
        const full = summarize(fullTimes);
        fullRows.push([
          size(pods),
          size(policies),
          msPair(full),
          ms(perPod(renderMs)),
          size(compiled.states.size),
          count(Math.round(perPod(elements))),
          String(rulesPerPod),
          bytes(Math.round(perPod(scriptBytes))),
          bytes(retained),
        ]);
        CHANGES.forEach((change, i) => {
          const result = policy.recompile(compiled, changed[i]!, DEFAULT_CONFIG, eventsOf[i]);
          let ops = 0;
          let elementOps = 0;
          let scriptSize = 0;
          for (const c of result.changes.values()) {
            ops += c.ops.length;
            elementOps += c.ops.filter((op) => op.object.kind === "element").length;
            scriptSize += policy.opsScript(c.ops).length;
          }
          const inc = summarize(incTimes[i]!);
          incRows.push([
            size(pods),
            size(policies),
            change.label,
            msPair(inc),
            ratioPair(pairedRatios(incTimes[i]!, fullTimes)),
            count(result.affected.size),
            count(ops),
            count(elementOps),
            bytes(scriptSize),
          ]);
          if (change.id === "pod") facts.push({ pods, policies, fullMs: full.median, retained, podMs: inc.median, podEventsMs: Number.NaN, podAffected: result.affected.size, podOps: ops });
          if (change.id === "pod-events") facts[facts.length - 1]!.podEventsMs = inc.median;
        });
      }
    }

    const tables: Table[] = [
      {
        title: "Full compile (every pod of the cluster)",
        columns: ["pods", "policies", "compile", "render / pod", "pods with a table", "set elements / pod", "rules / pod", "script / pod", "heap retained"],
        rows: fullRows,
        notes: [
          "compile: median (p99) over repetitions of compile(snapshot, config) for all pods of the cluster.",
          `render, elements, script: per pod, mean over the first ${SAMPLE} pods with a table (podScript: the text nft reads; an enforcer renders only its node's pods).`,
          "heap retained: heap after GC holding the result, minus heap after GC before compiling.",
        ],
      },
      {
        title: "Incremental recompile after one change",
        columns: ["pods", "policies", "change", "recompile", "recompile / full", "pods affected", "ops", "element ops", "script bytes"],
        rows: incRows,
        notes: [
          "recompile(previous, next, config) as the enforcer calls it (events found by diffing the snapshots), or with the change's event passed in (as a watch delivers it); ratio to the full compile of the same repetition.",
          "ops / element ops / script bytes: the transactions of all affected pods together.",
        ],
      },
    ];
    const method = [
      `The compiler ${from === "dist" ? "from the build (dist/, current with the sources), as \`nadguard enforce\` runs it" : "from the sources through tsx (dist/ missing or older than the sources)"}.`,
      "Clusters from bench/synthetic.ts policyCluster: pods/20 namespaces (labels team, env); pods with app/tier/version labels and named container ports, Running, each with a dual-stack address on net-system/data (macvlan, net1) and an IPv4 address on net-system/storage (ipvlan, net2).",
      "Policies round-robin over namespaces, policy-for data, storage or both; the mix per 10: default-deny ingress, 3 same-namespace app→app with one port, 2 namespaceSelector (team) with two ports, AND peer (matchExpressions In on namespaces + podSelector), ipBlock with two excepts, egress to named ports plus UDP 53 to an ipBlock, matchExpressions In/NotIn with a port range.",
      `Each run after a forced GC; incremental runs also after a ${SETTLE_MS} ms pause, so the collector's background sweeping is over (an event reaches an idle enforcer).`,
      "Changes: the first pod's app label (and tier) changed (its snapshots diffed, then its event passed in); the first namespace's team label changed; the second policy given one more port.",
    ];
    const reading: string[] = [];
    const biggest = facts[facts.length - 1];
    if (biggest) {
      reading.push(
        `Full compile of ${size(biggest.pods)} pods × ${size(biggest.policies)} policies: ${ms(biggest.fullMs)} and ${bytes(biggest.retained)} retained (target for 10,000 × 1,000: ≤ 1 s, ≤ 1 GB).`,
        `One pod relabel there: ${ms(biggest.podMs)} of compile work with the snapshots diffed, ${ms(biggest.podEventsMs)} with its event passed (target ≤ 5 ms), ${count(biggest.podAffected)} pods affected, ${count(biggest.podOps)} ops.`,
      );
    }
    return { status: "done", tables, method, reading };
  },
};
