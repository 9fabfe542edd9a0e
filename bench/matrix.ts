// Benchmark 9 — matrix: `nadguard matrix`'s evaluation (src/policy/matrix.ts) of every pod pair of
// one network and one port, against its rival — `verdictOf` asked pair by pair on the same model,
// as a script looping over `nadguard verdict` would (without the process starts) — and against a
// floor: the matrix of the same pods with no policy, where every side is open and a cell costs
// only the walk, the address lookups and the write. Cells per second; each ratio taken within one
// repetition. Pure CPU work in this process.
import type { Snapshot } from "../src/api/snapshot.js";
import { DEFAULT_CONFIG } from "../src/config/config.js";
import type * as MatrixModule from "../src/policy/matrix.js";
import type * as ModelModule from "../src/policy/model.js";
import type * as VerdictModule from "../src/policy/verdict.js";
import { forceGc } from "./compile.js";
import { type Section, skipped } from "./report.js";
import { type Table, count, msPair, pairedRatios, ratioPair, size, summarize } from "./stats.js";
import { DATA_NET, policyCluster } from "./synthetic.js";
import { prng } from "../test/support/prng.js";

/** A port the synthetic policies name (same-namespace app→app rules, namespaceSelector rules). */
const PORT = { port: 8080, protocol: "TCP" as const };

interface Engine {
  readonly matrix: typeof MatrixModule;
  readonly model: typeof ModelModule;
  readonly verdict: typeof VerdictModule;
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

export const matrix: Section = {
  id: "matrix",
  title: "9. Matrix: every pod pair of a network against verdict pair by pair",
  async run(ctx) {
    let engine: Engine;
    try {
      engine = { matrix: await import("../src/policy/matrix.js"), model: await import("../src/policy/model.js"), verdict: await import("../src/policy/verdict.js") };
    } catch (error) {
      return skipped(`src/policy cannot be loaded: ${(error as Error).message.split("\n")[0]}`);
    }
    const gc = forceGc();
    const sizes = ctx.full ? [[100, 100], [1000, 1000]] : [[100, 100]];
    const sample = ctx.full ? 20_000 : 2_000;
    const reps = ctx.full ? 5 : 2;
    const rows: string[][] = [];
    const reading: string[] = [];
    for (const [pods, policies] of sizes as [number, number][]) {
      const cluster = policyCluster({ pods, policies });
      const bare: Snapshot = { ...cluster.snapshot, policies: new Map() };
      const options = { network: DATA_NET, ports: [PORT] };
      ctx.log(`matrix: ${pods} pods × ${policies} policies, ${reps} repetitions`);
      const coldMs: number[] = [];
      const matrixMs: number[] = [];
      const verdictMs: number[] = [];
      const floorMs: number[] = [];
      let cells = 0;
      let allowed = 0;
      for (let rep = 0; rep < reps; rep++) {
        gc();
        // Cold: a fresh model, whose peer sets and rule entries the matrix computes on first use.
        const model = engine.model.buildModel(cluster.snapshot, DEFAULT_CONFIG);
        let m: MatrixModule.Matrix | undefined;
        coldMs.push(timed(() => (m = engine.matrix.reachabilityMatrix(model, options))));
        const n = m!.members.length;
        cells = n * n;
        allowed = 0;
        const grid = m!.grids[0]!;
        for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j && engine.matrix.cellStates(m!, grid, i, j).every((s) => s.allowed)) allowed++;
        // Warm: the same model again; then verdict over a sample of the same pairs on that model.
        gc();
        matrixMs.push(timed(() => engine.matrix.reachabilityMatrix(model, options)));
        const random = prng(rep + 1);
        const keys = m!.members.map((member) => member.key);
        const pairs = Array.from({ length: sample }, () => [keys[Math.floor(random() * n)]!, keys[Math.floor(random() * n)]!] as const);
        gc();
        const verdictTime = timed(() => {
          for (const [from, to] of pairs) engine.verdict.verdictOf(model, { from, to, network: DATA_NET, port: PORT.port, protocol: PORT.protocol });
        });
        // Per cell: a verdict answers every family of a pair; the data network is dual stack.
        verdictMs.push((verdictTime / sample) * cells);
        const floorModel = engine.model.buildModel(bare, DEFAULT_CONFIG);
        engine.matrix.reachabilityMatrix(floorModel, options);
        gc();
        floorMs.push(timed(() => engine.matrix.reachabilityMatrix(floorModel, options)));
      }
      const rate = (times: number[]): string => count((cells / summarize(times).median) * 1000, "/s");
      rows.push([
        size(pods),
        size(policies),
        size(cells),
        msPair(summarize(coldMs)),
        msPair(summarize(matrixMs)),
        rate(matrixMs),
        msPair(summarize(verdictMs)),
        rate(verdictMs),
        ratioPair(pairedRatios(verdictMs, matrixMs)),
        msPair(summarize(floorMs)),
        ratioPair(pairedRatios(matrixMs, floorMs)),
        `${((allowed / (cells - Math.sqrt(cells))) * 100).toFixed(0)}%`,
      ]);
      reading.push(
        `${size(pods)} pods × ${size(policies)} policies (${size(cells)} cells): the matrix takes ${msPair(summarize(coldMs))} on a fresh model, ${msPair(summarize(matrixMs))} on a warm one — ${ratioPair(pairedRatios(verdictMs, matrixMs))} the cells per second of verdict pair by pair, at ${ratioPair(pairedRatios(matrixMs, floorMs))} the time of the no-policy floor.`,
      );
    }
    const tables: Table[] = [
      {
        title: `Matrix of ${DATA_NET}, port ${PORT.port}/${PORT.protocol} (${reps} repetitions; verdict over ${size(sample)} random pairs per repetition)`,
        columns: ["pods", "policies", "cells (pairs)", "matrix, fresh model", "matrix, warm model", "matrix cells/s", "verdict, same cells", "verdict cells/s", "matrix speed-up", "floor (no policy)", "matrix / floor", "pairs allowed (of two pods)"],
        rows,
        notes: [
          "matrix: reachabilityMatrix(model, {network, ports: [8080/TCP]}) — every ordered pair of the network's pods, both families; fresh model: the first call on a new buildModel (it computes the peer sets and rule entries); warm: a second call on the same model.",
          "verdict, same cells: verdictOf(model, probe) on the warm model for random pairs, time per pair × the number of pairs (what N calls would take); matrix speed-up: that over the warm matrix, in the same repetition.",
          "floor: the warm matrix of the same pods with every policy removed (nothing isolated): walking the pairs and writing the cells.",
        ],
      },
    ];
    const method = [
      "Clusters from bench/synthetic.ts policyCluster (as the compile section): pods in pods/20 namespaces, each with a dual-stack address on net-system/data; policies round-robin over the namespaces with the same mix (default deny, app→app on one port, namespaceSelector, AND peers, ipBlocks with excepts, egress to named ports, port ranges), a third of them for the data network alone, a third for both networks.",
      "All in one process, GC forced before each timed call; the rival runs on the same model the matrix used, so neither pays for the other's lazily computed peer sets.",
    ];
    return { status: "done", tables, method, reading };
  },
};
