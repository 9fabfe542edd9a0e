// Benchmark 5 — convergence: time from a cluster state change to nadguard's rules applied in every
// affected pod netns, through the real enforcer loop (src/enforcer Enforcer with the compiler as its
// desired-state source, the bounded-frequency runner with its default 100 ms minimum interval, one
// apply per netns, 8 in parallel), for 10 and 100 local pods, each a netns of the bench; once through
// the default executor (the native addon) and once through `nft -f` processes, side by side.
import type { Snapshot } from "../src/api/snapshot.js";
import type { ClusterState } from "../src/cluster/cluster-state.js";
import { DEFAULT_CONFIG } from "../src/config/config.js";
import type { NftExecutor, NftRunResult, RunOptions } from "../src/nft/exec.js";
import { loadEngine, netnsUnavailable } from "./apply.js";
import { type Section, skipped } from "./report.js";
import { type Table, ms, msPair, size, summarize } from "./stats.js";
import { CV_NS, convergenceCluster, editPolicy, relabelPod, withRemotePod } from "./synthetic.js";
import { addNetns, delNetns, engineModule, sleep } from "./system.js";

/** A ClusterState the bench publishes snapshots to. */
function publishedState(initial: Snapshot): ClusterState & { publish(next: Snapshot): void } {
  let current = initial;
  const listeners = new Set<(s: Snapshot) => void>();
  return {
    current: () => current,
    ready: () => true,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    start: async () => undefined,
    stop: async () => undefined,
    publish(next) {
      current = next;
      for (const listener of listeners) listener(next);
    },
  };
}

interface Applied {
  readonly netns: string;
  readonly end: number;
}

/** The real executor, noting when each successful `nft -f` (not --check) finished in which netns. */
function recordingExecutor(inner: NftExecutor): NftExecutor & { applied: Applied[] } {
  const applied: Applied[] = [];
  return {
    applied,
    async run(script: string, opts: RunOptions): Promise<NftRunResult> {
      const result = await inner.run(script, opts);
      if (result.exitCode === 0 && !opts.check && opts.netns !== undefined) applied.push({ netns: opts.netns, end: performance.now() });
      return result;
    },
    list: (table, opts) => inner.list(table, opts),
  };
}

interface EventKind {
  readonly id: string;
  readonly label: string;
  readonly next: (s: Snapshot, k: number) => Snapshot;
}

const EVENTS: readonly EventKind[] = [
  { id: "policy", label: "policy edit (+1 port) on the policy selecting every pod", next: (s, k) => editPolicy(s, `${CV_NS}/isolate-all`, 9000 + k) },
  { id: "peer", label: "a remote client pod appears (a peer of every pod)", next: (s, k) => withRemotePod(s, `n${k}`, 2000 + k, { app: "client" }) },
  {
    id: "relabel",
    label: "a local pod relabelled client ↔ server (leaves/joins every peer set)",
    next: (s) => relabelPod(s, `${CV_NS}/p002`, s.pods.get(`${CV_NS}/p002`)?.metadata.labels?.app === "client" ? "server" : "client"),
  },
  { id: "one", label: "a peer of the db pod only appears", next: (s, k) => withRemotePod(s, `a${k}`, 4000 + k, { role: "admin" }) },
];

export const convergence: Section = {
  id: "convergence",
  title: "5. Convergence: state change to rules applied in every affected netns",
  async run(ctx) {
    const unavailable = await netnsUnavailable();
    if (unavailable) return skipped(unavailable);
    const engine = await loadEngine();
    if (typeof engine === "string") return skipped(engine);
    let enforcerModule: typeof import("../src/enforcer/enforcer.js");
    let netnsModule: typeof import("../src/enforcer/netns.js");
    let cli: typeof import("../src/cli/enforce.js");
    try {
      const loaded = await Promise.all([
        engineModule<typeof import("../src/enforcer/enforcer.js")>("src/enforcer/enforcer.js"),
        engineModule<typeof import("../src/enforcer/netns.js")>("src/enforcer/netns.js"),
        engineModule<typeof import("../src/cli/enforce.js")>("src/cli/enforce.js"),
      ]);
      [enforcerModule, netnsModule, cli] = [loaded[0].module, loaded[1].module, loaded[2].module];
    } catch (error) {
      return skipped(`src/enforcer cannot be loaded: ${(error as Error).message.split("\n")[0]}`);
    }
    if (typeof enforcerModule.Enforcer !== "function" || typeof netnsModule.templateResolver !== "function" || typeof cli.compilerSource !== "function") {
      return skipped("src/enforcer does not export Enforcer/templateResolver, or src/cli/enforce.ts compilerSource, yet");
    }
    const { policy, nft } = engine;
    const sizes = [10, 100];
    const reps = ctx.full ? 15 : 3;
    const p = ctx.cleanup.prefix;
    const loaded = nft.loadNftAddon();
    if (!loaded.ok) return skipped(`the native nft addon cannot be used: ${loaded.error}`);
    const executors: ReadonlyArray<readonly [string, NftExecutor]> = [
      ["native addon", new nft.AddonNftExecutor(loaded.value)],
      ["nft -f processes", new nft.ExecNftExecutor()],
    ];
    const rows: string[][] = [];
    const facts: { local: number; executor: string; id: string; p99: number; median: number }[] = [];

    for (const local of sizes) {
      const cluster = convergenceCluster(local, local);
      ctx.log(`convergence: ${local} local pods (creating their netns)`);
      const pathOf = new Map<string, string>();
      for (const name of cluster.local) pathOf.set(`${CV_NS}/${name}`, `/run/netns/${await addNetns(`${p}-${CV_NS}-${name}`)}`);
      try {
        for (const [label, inner] of executors) {
          // Every executor starts from netns without a table (untimed).
          for (const path of pathOf.values()) await inner.run("add table inet nadguard\ndelete table inet nadguard\n", { netns: path });
          ctx.log(`convergence: ${local} local pods through the ${label}`);
          await measure(local, label, inner, cluster, pathOf);
        }
      } finally {
        for (const name of cluster.local) await delNetns(`${p}-${CV_NS}-${name}`);
      }
    }

    async function measure(local: number, label: string, inner: NftExecutor, cluster: ReturnType<typeof convergenceCluster>, pathOf: ReadonlyMap<string, string>): Promise<void> {
      const state = publishedState(cluster.snapshot);
      const executor = recordingExecutor(inner);
      const enforcer = new enforcerModule.Enforcer({
        node: "node-0",
        state,
        source: cli.compilerSource(DEFAULT_CONFIG),
        resolver: netnsModule.templateResolver(`/run/netns/${p}-{namespace}-{name}`),
        executor,
        // No periodic full resync during the measurement (it would land on some events).
        runner: { maxIntervalMs: 3_600_000 },
        log: (level, message) => (level === "error" ? ctx.log(`enforcer: ${message}`) : undefined),
      });
      try {
        const startedAt = performance.now();
        enforcer.start();
        for (let i = 0; i < 3000 && !(enforcer.lastReport?.ran && enforcer.lastReport.outcomes.length >= local); i++) await sleep(20);
        if (!enforcer.lastReport?.ran || enforcer.lastReport.failures.length > 0) {
          throw new Error(`the enforcer's first sync failed: ${JSON.stringify(enforcer.lastReport?.failures.slice(0, 3))}`);
        }
        const firstSync = performance.now() - startedAt;
        let snapshot = cluster.snapshot;
        let compiled = policy.compile(snapshot, DEFAULT_CONFIG, { node: "node-0" });
        const samples = new Map<string, { times: number[]; affected: number[] }>(EVENTS.map((e) => [e.id, { times: [], affected: [] }]));
        let k = 0;
        for (let rep = 0; rep < reps; rep++) {
          for (const event of EVENTS) {
            k++;
            const next = event.next(snapshot, k);
            const expected = policy.recompile(compiled, next, DEFAULT_CONFIG);
            const targets = [...expected.affected].map((key) => pathOf.get(key)).filter((x): x is string => x !== undefined);
            const t0 = performance.now();
            state.publish(next);
            // Bounded wait: every affected netns has had an apply that finished after the change.
            let done = 0;
            for (let i = 0; i < 20_000; i++) {
              const ends = targets.map((path) => executor.applied.findLast((a) => a.netns === path && a.end > t0)?.end);
              if (ends.every((e) => e !== undefined)) {
                done = Math.max(t0, ...(ends as number[])) - t0;
                break;
              }
              await sleep(1);
            }
            if (targets.length > 0 && done === 0) throw new Error(`${event.id}: ${targets.length} netns not updated within 20 s`);
            samples.get(event.id)!.times.push(done);
            samples.get(event.id)!.affected.push(targets.length);
            snapshot = next;
            compiled = expected.compiled;
            // Let the runner's minimum interval pass, so that every change meets an idle enforcer.
            await sleep(150);
            executor.applied.length = 0;
          }
        }
        rows.push([size(local), label, "enforcer start: first full sync (read back + tables where there were none)", size(local), ms(firstSync), "–"]);
        for (const event of EVENTS) {
          const s = samples.get(event.id)!;
          const times = summarize(s.times);
          const affected = summarize(s.affected).median;
          rows.push([size(local), label, event.label, size(affected), msPair(times), affected > 0 ? ms(times.median / affected) : "–"]);
          facts.push({ local, executor: label, id: event.id, p99: times.p99, median: times.median });
        }
      } finally {
        await enforcer.stop();
      }
    }
    const tables: Table[] = [
      {
        title: `Change → rules applied in all affected netns (${reps} changes of each kind)`,
        columns: ["local pods", "executor", "change", "netns affected", "time to all applied", "per affected netns"],
        rows,
        notes: [
          "From publishing the new snapshot to the end of the last apply in an affected netns; median (p99) over the changes. Affected netns: those whose desired table changes (the compiler's recompile, checked independently).",
          "The enforcer runs as `nadguard enforce` does: compiler source with incremental recompile, runner minimum interval 100 ms (a change 150 ms after the previous one finds it idle), parallelism 8; once through its default executor (the native addon: libnftables on libuv worker threads entering each netns with setns, one call in libnftables at a time but the kernel's commits overlapping, up to UV_THREADPOOL_SIZE − 1 applies in flight; `npm run bench` sets 9, as the image does) and once through `nsenter … nft -f FILE` processes (its fallback), one after the other on the same netns.",
        ],
      },
    ];
    const method = [
      `nadguard's modules as \`nadguard enforce\` runs them: ${engine.from === "dist" ? "the compiled build (dist/), current with the sources" : "the sources through tsx (dist/ missing or older than the sources; tsx's output is slower than tsc's)"}.`,
      "Pods: N local pods on node-0 (netns <prefix>-cv-<pod>, empty but for the table) and N remote client pods on node-1; policy isolate-all selects every pod and allows TCP 8080 from app=client; policy db allows TCP 5432 to the one db pod from role=admin.",
      "The bench publishes snapshots to the enforcer through an in-memory ClusterState (what the state directory or informers would deliver), so file-watch debounce and API latency are not included.",
    ];
    const reading = facts
      .filter((f) => f.local === 100)
      .map((f) => `100 local pods, ${f.executor}, ${EVENTS.find((e) => e.id === f.id)!.label}: median ${ms(f.median)}, p99 ${ms(f.p99)} (target: p99 ≤ 200 ms, ≤ 20 ms when one pod is touched).`);
    return { status: "done", tables, method, reading };
  },
};
