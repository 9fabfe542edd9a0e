// Benchmark 8 — hostile reviews: the webhook's normal reviews (paced HTTP/2, as kube-apiserver sends
// them) alone and with a hostile client posting deep nesting, long strings, dense objects and
// envelope explosions of up to 7 MiB beside them, in alternating phases of the same run; the
// server's memory before, during and after (GC'd).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { HOSTILE_SHAPES, type HostileShape, hostileBody } from "../test/support/hostile-reviews.js";
import { prng } from "../test/support/prng.js";
import { type JobOutcome, type Server, benchCertificates, benchRoute, memory, runLoad, startServer } from "./admission.js";
import type { HostileAnswer, HostilePlan, HostileResult } from "./hostile-load.js";
import type { BenchContext, Section } from "./report.js";
import { type Table, bytes, count, memoryRow, ms, pairedRatios, ratio, ratioPair, summarize } from "./stats.js";
import { podReview } from "./synthetic.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const KiB = 1024;
const MiB = 1024 * KiB;

/** Body sizes of the corpus: from a small review to just under the 7 MiB body limit. */
const SIZES = [16 * KiB, 512 * KiB, 3 * MiB, 6.5 * MiB];
/** Shapes whose size is not theirs to choose: one body each. */
const ONE_SIZE: ReadonlySet<HostileShape> = new Set(["over-limit", "text-plain"]);

interface Settings {
  readonly reps: number;
  readonly phaseS: number;
  readonly normalRate: number;
  /** Hostile bodies per second of each phase beside the normal reviews (0: the normal reviews alone). */
  readonly hostileRates: readonly number[];
  readonly maxInFlight: number;
}

async function writeCorpus(dir: string): Promise<HostilePlan["bodies"]> {
  const bodies: { file: string; contentType: string; shape: string; uid: string | undefined }[] = [];
  for (const shape of HOSTILE_SHAPES) {
    for (const size of ONE_SIZE.has(shape) ? [SIZES[0]!] : SIZES) {
      const built = hostileBody(shape, size, `hostile-${shape}-${size}`);
      const file = join(dir, `hostile-${shape}-${size}.body`);
      await writeFile(file, built.body);
      bodies.push({ file, contentType: built.contentType, shape, uid: built.uid });
    }
  }
  // Shuffled once, seeded: every phase sends the same sequence.
  const random = prng(15);
  for (let i = bodies.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [bodies[i], bodies[j]] = [bodies[j]!, bodies[i]!];
  }
  return bodies;
}

/** Samples the server's resident set from /proc while `work` runs; returns the largest seen. */
async function peakRss<T>(pid: number, work: Promise<T>): Promise<{ value: T; peak: number }> {
  let peak = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb * 1024);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    return { value: await work, peak };
  } finally {
    running = false;
    await sampler;
  }
}

async function runHostile(ctx: BenchContext, planFile: string): Promise<HostileResult> {
  // At the lowest priority: in a cluster the hostile pod runs on another node, and its own work
  // (encrypting megabytes a second) does not take the webhook's CPU.
  const child: ChildProcess = ctx.cleanup.track(
    spawn("nice", ["-n", "19", process.execPath, "--import", "tsx", join(HERE, "hostile-load.ts"), planFile], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }),
  );
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", resolve)));
  if (code !== 0) throw new Error(`hostile client failed (${code}): ${stderr}`);
  return JSON.parse(stdout) as HostileResult;
}

/** A share of the phase's time, to 0.1%. */
const share = (value: number): string => (Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "–");

/** The server's event-loop delay, GC pauses and CPU time over a phase, ms. */
interface LoopDelay {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly gcTotal: number;
  readonly gcMax: number;
  readonly cpuMs: number;
}

interface Phase {
  /** Hostile bodies per second beside the normal reviews; 0 for none. */
  readonly rate: number;
  readonly normal: JobOutcome;
  readonly hostile?: HostileResult;
  readonly peak: number;
  readonly loop: LoopDelay;
}

export const hostile: Section = {
  id: "hostile",
  title: "8. Hostile reviews: normal reviews beside a hostile client, and memory after",
  async run(ctx) {
    const settings: Settings = ctx.full
      ? { reps: 3, phaseS: 20, normalRate: 100, hostileRates: [0, 1, 5], maxInFlight: 4 }
      : { reps: 1, phaseS: 4, normalRate: 100, hostileRates: [0, 5], maxInFlight: 4 };
    const cluster = { namespaces: 1000, nadsPerNamespace: 10 };
    const dir = await mkdtemp(join(tmpdir(), `${ctx.cleanup.prefix}-hostile-`));
    let server: Server | undefined;
    try {
      const { ca, files } = await benchCertificates(dir);
      const podBody = join(dir, "pod.json");
      await writeFile(podBody, JSON.stringify(podReview(cluster, true)));
      const corpus = await writeCorpus(dir);
      ctx.log(`hostile: ${corpus.length} hostile bodies, ${bytes(corpus.length > 0 ? (await Promise.all(corpus.map((b) => readFile(b.file)))).reduce((s, b) => s + b.length, 0) : 0)} in all`);
      server = await startServer(ctx, { ...cluster, certFile: files.certFile, keyFile: files.keyFile });
      const live = server;
      const normalJob = (name: string, durationS: number) => ({ name, tool: "paced" as const, path: "/mutate?timeout=10s", bodyFile: podBody, rate: settings.normalRate, durationS });
      const hostilePlan = async (durationS: number, rate: number): Promise<string> => {
        const file = join(dir, `hostile-plan-${durationS}-${rate}.json`);
        await writeFile(file, JSON.stringify({ port: live.port, caFile: files.caFile, bodies: corpus, rate, durationS, maxInFlight: settings.maxInFlight } satisfies HostilePlan));
        return file;
      };

      // Warm-up, not recorded: normal reviews, then every hostile body once (one at a time).
      await runLoad(ctx, live, files.caFile, [normalJob("warmup", 2)], dir);
      const fresh = await memory(live.port, ca.cert);
      const once = await runHostile(ctx, await hostilePlan(corpus.length / 10, 10));
      const start = await memory(live.port, ca.cert);

      const phases: Phase[] = [];
      for (let rep = 0; rep < settings.reps; rep++) {
        // The order rotates, so that drift over the run hits every phase alike.
        const rates = settings.hostileRates.map((_, i) => settings.hostileRates[(i + rep) % settings.hostileRates.length]!);
        for (const rate of rates) {
          ctx.log(`hostile: repetition ${rep + 1}/${settings.reps}, ${rate} hostile bodies/s`);
          const plan = rate > 0 ? await hostilePlan(settings.phaseS, rate) : undefined;
          await benchRoute<LoopDelay>(live.port, ca.cert, "/bench/loop");
          const work = Promise.all([runLoad(ctx, live, files.caFile, [normalJob(`normal-${rate}`, settings.phaseS)], dir), plan ? runHostile(ctx, plan) : Promise.resolve(undefined)]);
          const { value, peak } = await peakRss(live.pid, work);
          const loop = await benchRoute<LoopDelay>(live.port, ca.cert, "/bench/loop");
          phases.push({ rate, normal: value[0][0]!, ...(value[1] && { hostile: value[1] }), peak, loop });
        }
      }
      const end = await memory(live.port, ca.cert);
      return { status: "done", ...describe(phases, once, { fresh, start, end }, settings, corpus.length) };
    } finally {
      if (server) await ctx.cleanup.stop(server.child);
      await rm(dir, { recursive: true, force: true });
    }
  },
};

function describe(
  phases: readonly Phase[],
  once: HostileResult,
  mem: { fresh: NodeJS.MemoryUsage; start: NodeJS.MemoryUsage; end: NodeJS.MemoryUsage },
  settings: Settings,
  corpusSize: number,
): { tables: Table[]; method: string[]; reading: string[] } {
  const at = (rate: number): Phase[] => phases.filter((p) => p.rate === rate);
  const alone = at(0);
  const perRunP99 = (list: readonly Phase[]): number[] => list.map((p) => summarize(p.normal.latencies).p99);
  const facts = settings.hostileRates.map((rate) => {
    const list = at(rate);
    return {
      rate,
      list,
      pooled: summarize(list.flatMap((p) => p.normal.latencies)),
      // Phases of one repetition run back to back: the ratio is taken within a repetition.
      ratio: pairedRatios(perRunP99(list), perRunP99(alone)),
      failures: list.reduce((s, p) => s + p.normal.errors + p.normal.non2xx, 0),
      loopP99: summarize(list.map((p) => p.loop.p99)).median,
      loopMax: Math.max(...list.map((p) => p.loop.max)),
      peak: Math.max(...list.map((p) => p.peak)),
      gcShare: summarize(list.map((p) => p.loop.gcTotal / (settings.phaseS * 1000))).median,
      gcMax: Math.max(...list.map((p) => p.loop.gcMax)),
      cpuShare: summarize(list.map((p) => p.loop.cpuMs / (settings.phaseS * 1000))).median,
    };
  });
  const normal: Table = {
    title: `Normal reviews (the 3-attachment pod of section 1, ${settings.normalRate}/s paced h2) alone and beside the hostile client (${settings.reps} repetition${settings.reps > 1 ? "s" : ""} of ${settings.phaseS} s per phase)`,
    columns: ["hostile bodies/s", "reviews", "p50", "p99", "p99.9", "max", "p99 / p99 alone", "errors", "server loop delay p99 / max", "server GC pauses: share / longest", "server CPU", "server RSS peak"],
    rows: facts.map((f) => [
      f.rate === 0 ? "none (alone)" : String(f.rate),
      count(f.list.reduce((s, p) => s + p.normal.latencies.length, 0)),
      ms(f.pooled.median),
      ms(f.pooled.p99),
      ms(f.pooled.p999),
      ms(f.pooled.max),
      f.rate === 0 ? "1×" : ratioPair(f.ratio),
      String(f.failures),
      `${ms(f.loopP99)} / ${ms(f.loopMax)}`,
      `${share(f.gcShare)} / ${ms(f.gcMax)}`,
      share(f.cpuShare),
      bytes(f.peak),
    ]),
    notes: [
      "Percentiles over every review of every repetition pooled; p99 / p99 alone: the ratio within each repetition (its phases run back to back), median (p99) over repetitions.",
      "server loop delay: how late the server's event loop ran (perf_hooks monitorEventLoopDelay, 1 ms resolution), median over repetitions of each phase's p99 / the largest max: how long a review that arrived could not be looked at.",
      "server GC pauses: the main thread's GC pauses (perf_hooks 'gc' entries) as a share of the phase, median over repetitions / the longest one; server CPU: the whole process's CPU time (every thread) as a share of one core over the phase, median over repetitions.",
      "server RSS peak: the server's VmRSS sampled every 50 ms from /proc, the largest of the phases.",
    ],
  };

  const answers = [...once.answers, ...phases.flatMap((p) => p.hostile?.answers ?? [])];
  const byShape = new Map<string, HostileAnswer[]>();
  for (const a of answers) byShape.set(a.shape, [...(byShape.get(a.shape) ?? []), a]);
  const statuses = (list: HostileAnswer[]): string => {
    const counts = new Map<string, number>();
    for (const a of list) {
      const key = a.failed ? "reset" : a.review ? `${a.status} review` : String(a.status);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts].sort().map(([k, n]) => `${k} ×${n}`).join(", ");
  };
  const hostileRows = [...byShape].sort(([a], [b]) => a.localeCompare(b)).map(([shape, list]) => {
    const times = summarize(list.map((a) => a.ms));
    const withUid = list.filter((a) => a.uidEchoed).length;
    return [shape, count(list.length), bytes(Math.max(...list.map((a) => a.bytes))), statuses(list), `${withUid}/${list.length}`, ms(times.median), ms(times.max)];
  });
  const sent = phases.reduce((s, p) => s + (p.hostile?.sent ?? 0), 0);
  const skipped = phases.reduce((s, p) => s + (p.hostile?.skipped ?? 0), 0);
  const hostileTable: Table = {
    title: `Hostile bodies: how the webhook answered (a warm-up pass of every body, then ${count(sent)} sent beside the normal reviews; ${count(skipped)} not sent because ${settings.maxInFlight} were in flight)`,
    columns: ["shape", "requests", "largest body", "answers", "uid echoed", "p50", "max"],
    rows: hostileRows,
    notes: [
      "answers: HTTP status, `review` when the body is an AdmissionReview with a response; reset: the connection closed before an answer (the 413 of a body over 7 MiB closes it).",
      "uid echoed: answers carrying the uid the body had before anything hostile in it (bodies that are not JSON, or whose uid cannot be read, have none).",
      "p50, max: time from the first byte sent to the whole answer, as the hostile client saw it (sending 7 MiB over TLS is part of it).",
    ],
  };

  const memoryTable: Table = {
    title: "Webhook server memory after GC, before and after the phases",
    columns: ["when", "RSS", "heap used", "external"],
    rows: [
      memoryRow("after normal reviews only (before any hostile body)", mem.fresh),
      memoryRow("after the warm-up (start)", mem.start),
      memoryRow("after the last phase (end)", mem.end),
      ["end / start", ratio(mem.end.rss / mem.start.rss), ratio(mem.end.heapUsed / mem.start.heapUsed), ""],
      ["end / before any hostile body", ratio(mem.end.rss / mem.fresh.rss), ratio(mem.end.heapUsed / mem.fresh.heapUsed), ""],
    ],
    notes: ["process.memoryUsage() after two full collections (global.gc), by GET /bench/memory."],
  };

  const method = [
    "Server: bench/admission-server.ts as in section 1 (the real app, 10,000 NADs in 1,000 namespaces, TLS, HTTP/2 with HTTP/1.1 fallback), started with --expose-gc only for the memory readings.",
    `Normal reviews: bench/admission-load.ts paced HTTP/2 at ${settings.normalRate}/s in one process; hostile client: bench/hostile-load.ts in another, HTTP/1.1 over TLS to /mutate at a fixed rate (at most ${settings.maxInFlight} in flight). All three processes share the machine's 2 cores.`,
    `Hostile corpus (test/support/hostile-reviews.ts, ${corpusSize} bodies, seeded order): a pod review carrying deep arrays or objects, one long string, strings of up to 1 MiB, dense empty objects, dense numbers or objects of many keys in groups of 50,000, one wide array or object, many annotations, a huge or mistyped userInfo.groups, each at ${SIZES.map(bytes).join(", ")}; a truncated body, bytes that are not JSON, a body over the 7 MiB limit, a review sent as text/plain. long-strings, dense-numbers and many-keys stay within every limit: their cost is what a legitimate review of that size could cost.`,
    `Phases: normal reviews alone, and beside ${settings.hostileRates.filter((r) => r > 0).join(" and ")} hostile bodies/s, in rotating order within each repetition.`,
  ];
  const reading = facts
    .filter((f) => f.rate > 0)
    .map((f) => `Beside ${f.rate} hostile bodies/s the normal reviews' p99 is ${ms(f.pooled.p99)} against ${ms(facts[0]!.pooled.p99)} alone (per-repetition ratio ${ratioPair(f.ratio)}; the target is at most 2×); ${f.failures} of them failed.`);
  reading.push(
    `Memory: ${bytes(mem.start.rss)} RSS after GC at the start (after the warm-up that sends every hostile body once; ${bytes(mem.fresh.rss)} before any), ${bytes(Math.max(...facts.map((f) => f.peak)))} at the peak, ${bytes(mem.end.rss)} after GC at the end (${ratio(mem.end.rss / mem.start.rss)} of the start, ${ratio(mem.end.rss / mem.fresh.rss)} of the figure before any hostile body; the target is within 10%); heap used ${bytes(mem.fresh.heapUsed)} → ${bytes(mem.end.heapUsed)}.`,
  );
  return { tables: [normal, hostileTable, memoryTable], method, reading };
}
