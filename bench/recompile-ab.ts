// Side by side: `recompile` of two builds of the policy engine (before and after a change), alternated
// in one process on the same synthetic cluster and change, so that a loaded machine slows both alike;
// the results of both are checked equal (affected pods, their fingerprints and operation counts).
// Not a section of `npm run bench`: it compares two trees, each compiled with
//   npx tsc -p bench/tsconfig.json --noEmit false --outDir DIR
// (in a worktree of each commit, inside the repository so that DIR finds node_modules), then
//   npx tsx bench/recompile-ab.ts --before DIR1 --after DIR2 [--pods 10000] [--policies 1000]
//     [--change pod|namespace|policy] [--events] [--gc] [--pairs 40]
// --events: the change's events are passed in (as a watch delivers them) instead of found by diffing
// the snapshots; --gc: the GC forced before each run (as section 2 of BENCHMARKS.md does).
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Snapshot } from "../src/api/snapshot.js";
import type * as ConfigModule from "../src/config/config.js";
import type * as PolicyModule from "../src/policy/index.js";
import { forceGc } from "./compile.js";
import { type PolicyCluster, editPolicy, policyCluster, relabelNamespace, relabelPod } from "./synthetic.js";

interface Build {
  readonly policy: typeof PolicyModule;
  readonly config: typeof ConfigModule;
}

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

async function load(dir: string): Promise<Build> {
  const url = (path: string): string => pathToFileURL(resolve(dir, path)).href;
  return { policy: (await import(url("src/policy/index.js"))) as typeof PolicyModule, config: (await import(url("src/config/config.js"))) as typeof ConfigModule };
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const fixed = (x: number): string => x.toFixed(2);

/** The cluster after the change, and the change's events. */
function changeOf(cluster: PolicyCluster, change: string): { next: Snapshot; events: PolicyModule.PolicyEvent[] } | undefined {
  if (change === "pod") {
    const key = cluster.podKeys[0]!;
    return { next: relabelPod(cluster.snapshot, key, cluster.snapshot.pods.get(key)?.metadata.labels?.app === "api" ? "web" : "api"), events: [{ kind: "pod", key }] };
  }
  if (change === "namespace") {
    const ns = cluster.namespaces[0]!;
    const team = cluster.snapshot.namespaces.get(ns)?.metadata.labels?.team === "team-1" ? "team-2" : "team-1";
    return { next: relabelNamespace(cluster.snapshot, ns, { team }), events: [{ kind: "namespace", name: ns }] };
  }
  if (change === "policy") {
    const key = cluster.policyKeys[Math.min(1, cluster.policyKeys.length - 1)]!;
    return { next: editPolicy(cluster.snapshot, key, 8443), events: [{ kind: "policy", key }] };
  }
  return undefined;
}

async function main(): Promise<number> {
  const before = option("before", "");
  const after = option("after", "");
  if (before === "" || after === "") {
    process.stderr.write("usage: tsx bench/recompile-ab.ts --before DIR --after DIR [--pods N] [--policies N] [--change pod|namespace|policy] [--events] [--gc] [--pairs N]\n");
    return 2;
  }
  const pods = Number(option("pods", "10000"));
  const policies = Number(option("policies", "1000"));
  const pairs = Number(option("pairs", "40"));
  const change = option("change", "pod");
  const passEvents = process.argv.includes("--events");
  const gc = process.argv.includes("--gc") ? forceGc() : undefined;
  const builds = [await load(before), await load(after)];
  const cluster = policyCluster({ pods, policies });
  const made = changeOf(cluster, change);
  if (!made) {
    process.stderr.write(`--change ${change}: expected pod, namespace or policy\n`);
    return 2;
  }
  const { next, events } = made;
  const compiled = builds.map((b) => b.policy.compile(cluster.snapshot, b.config.DEFAULT_CONFIG));
  const run = (i: number): PolicyModule.Recompiled => builds[i]!.policy.recompile(compiled[i]!, next, builds[i]!.config.DEFAULT_CONFIG, passEvents ? events : undefined);
  const signature = (r: PolicyModule.Recompiled): string =>
    [...r.changes]
      .map(([k, c]) => `${k} ${c.after?.fingerprint ?? "-"} ${c.ops.length}`)
      .sort()
      .join("\n");
  const first = [run(0), run(1)];
  if (signature(first[0]!) !== signature(first[1]!)) {
    process.stderr.write("the two builds give different results\n");
    return 1;
  }
  for (let i = 0; i < 10; i++) [0, 1].forEach(run);
  const times: [number[], number[]] = [[], []];
  const ratios: number[] = [];
  const load0 = loadavg();
  for (let i = 0; i < pairs; i++) {
    const pair = [0, 0];
    for (const k of i % 2 === 0 ? [0, 1] : [1, 0]) {
      gc?.();
      const t = performance.now();
      run(k);
      pair[k] = performance.now() - t;
    }
    times[0].push(pair[0]!);
    times[1].push(pair[1]!);
    ratios.push(pair[1]! / pair[0]!);
  }
  const load1 = loadavg();
  const line = [
    `${pods} pods × ${policies} policies, ${change} change${passEvents ? " (events passed)" : " (snapshots diffed)"}${gc ? ", GC forced before each" : ""}, ${pairs} pairs, ${first[1]!.affected.size} pods affected`,
    `before: median ${fixed(median(times[0]))} ms, fastest ${fixed(Math.min(...times[0]))} ms`,
    `after: median ${fixed(median(times[1]))} ms, fastest ${fixed(Math.min(...times[1]))} ms`,
    `after / before, median of pairs: ${fixed(median(ratios))}×`,
    `load average: ${load0.map(fixed).join(" ")} → ${load1.map(fixed).join(" ")}`,
  ];
  process.stdout.write(`${line.join("\n")}\n`);
  return 0;
}

process.exitCode = await main();
