// Benchmark 1 — admission: the nadguard webhook over TLS on 127.0.0.1, with 10,000 NADs in 1,000
// namespaces, answering a realistic pod review, against the floor of the same server process
// answering a constant review on another route; load from a separate process at fixed rates and at
// open throttle; memory of the server with 10k and 100k NADs.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { generateCa, generateServingCertificate } from "../certs/generate.js";
import type { LoadJob, LoadPlan, LoadResult } from "./admission-load.js";
import { type BenchContext, type Section } from "./report.js";
import { type Table, bytes, count, memoryRow, ms, pairedRatios, percent, ratio, ratioPair, summarize } from "./stats.js";
import { podReview } from "./synthetic.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");

interface Target {
  readonly id: "pod" | "plain" | "floor";
  readonly label: string;
  readonly path: string;
  readonly bodyFile: string;
}

interface Load {
  readonly id: string;
  readonly label: string;
  readonly tool: LoadJob["tool"];
  readonly rate: number;
}

/** The loads of the CPU-per-review table: open throttle and the paced rate kube-apiserver's calls resemble. */
const CPU_LOADS = ["open", "p1000"] as const;

function loadLabel(id: string): string {
  return LOADS.find((load) => load.id === id)?.label ?? id;
}

const LOADS: readonly Load[] = [
  { id: "p100", label: "100/s paced h2", tool: "paced", rate: 100 },
  { id: "p1000", label: "1,000/s paced h2", tool: "paced", rate: 1000 },
  { id: "a100", label: "100/s autocannon", tool: "autocannon", rate: 100 },
  { id: "a1000", label: "1,000/s autocannon", tool: "autocannon", rate: 1000 },
  { id: "open", label: "open, autocannon ×10", tool: "autocannon", rate: 0 },
];

export interface Server {
  readonly child: ChildProcess;
  readonly port: number;
  readonly pid: number;
  readonly buildMs: number;
  /** Where nadguard's modules came from: the build (dist/, current with the sources) or the sources through tsx. */
  readonly from: "dist" | "tsx";
}

/** Starts bench/admission-server.ts; node flags in BENCH_SERVER_FLAGS are added (e.g. "--cpu-prof --cpu-prof-dir=DIR" to profile it). */
export async function startServer(ctx: BenchContext, args: Record<string, unknown>): Promise<Server> {
  const child = ctx.cleanup.track(
    spawn(process.execPath, ["--expose-gc", ...(process.env.BENCH_SERVER_FLAGS ?? "").split(" ").filter(Boolean), "--import", "tsx", join(HERE, "admission-server.ts"), JSON.stringify(args)], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }),
  );
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<Omit<Server, "child">>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`admission server did not start in 120 s: ${stderr}`)), 120_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as Omit<Server, "child">);
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`admission server exited with ${code}: ${stderr}`));
    });
  });
  return { child, ...ready };
}

/** utime+stime of a process in ms (from /proc, 100 Hz ticks). */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** GET of one of the bench server's own routes, as JSON. */
export function benchRoute<T>(port: number, ca: string, path: "/bench/memory" | "/bench/loop"): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "GET", ca, servername: "localhost" }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString("utf8")));
      res.on("end", () => resolve(JSON.parse(text) as T));
    });
    req.on("error", reject);
    req.end();
  });
}

/** process.memoryUsage() of the bench server after a full GC. */
export function memory(port: number, ca: string): Promise<NodeJS.MemoryUsage> {
  return benchRoute(port, ca, "/bench/memory");
}

export interface JobOutcome extends LoadResult {
  /** The server's CPU time over the job's wall time (1 = one core busy). */
  readonly serverCpu: number;
  /** The server's CPU time over the job, ms (/proc: 10 ms ticks). */
  readonly serverCpuMs: number;
}

/** Microseconds as ms() writes durations (µs below 1 ms). */
const us = (micro: number): string => ms(micro / 1000);

/** The server's CPU time per answered review, µs. */
export function cpuPerReview(outcome: JobOutcome): number {
  return (outcome.serverCpuMs * 1000) / Math.max(1, outcome.latencies.length);
}

/**
 * Runs the jobs in one load process; measures the server's CPU over each job from /proc.
 * `onStart` is called as each job starts (to do something to the server while it is measured).
 */
export async function runLoad(
  ctx: BenchContext,
  server: { readonly port: number; readonly pid: number },
  caFile: string,
  jobs: readonly LoadJob[],
  dir: string,
  onStart?: (job: string) => void,
): Promise<JobOutcome[]> {
  const planFile = join(dir, `plan-${Math.random().toString(16).slice(2)}.json`);
  await writeFile(planFile, JSON.stringify({ port: server.port, caFile, jobs } satisfies LoadPlan));
  const child = ctx.cleanup.track(spawn(process.execPath, ["--import", "tsx", join(HERE, "admission-load.ts"), planFile], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const out: JobOutcome[] = [];
  let cpuBefore = 0;
  let wallBefore = 0;
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const parsed = JSON.parse(line) as LoadResult | { event: "start"; name: string };
    const cpuNow = await processCpuMs(server.pid);
    const wallNow = performance.now();
    if ("event" in parsed) {
      cpuBefore = cpuNow;
      wallBefore = wallNow;
      onStart?.(parsed.name);
      continue;
    }
    out.push({ ...parsed, serverCpu: (cpuNow - cpuBefore) / (wallNow - wallBefore), serverCpuMs: cpuNow - cpuBefore });
  }
  const code = await new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", resolve)));
  if (code !== 0) throw new Error(`admission load client failed (${code}): ${stderr}`);
  return out;
}

/** A CA and a serving certificate for 127.0.0.1 written into `dir`. */
export async function benchCertificates(dir: string): Promise<{ ca: { cert: string }; files: { caFile: string; certFile: string; keyFile: string } }> {
  const ca = generateCa({ commonName: "nadguard-bench-ca", validityDays: 2 });
  const serving = generateServingCertificate(ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays: 2 });
  const files = { caFile: join(dir, "ca.pem"), certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
  await Promise.all([writeFile(files.caFile, ca.cert), writeFile(files.certFile, serving.cert), writeFile(files.keyFile, serving.key, { mode: 0o600 })]);
  return { ca, files };
}

export const admission: Section = {
  id: "admission",
  title: "1. Admission: webhook latency, throughput and memory",
  async run(ctx) {
    const namespaces = 1000;
    const nadsPerNamespace = 10;
    const reps = ctx.full ? 3 : 1;
    const fixedS = ctx.full ? 10 : 1;
    const openS = ctx.full ? 10 : 2;
    const dir = await mkdtemp(join(tmpdir(), `${ctx.cleanup.prefix}-admission-`));
    const servers: Server[] = [];
    try {
      const { ca, files } = await benchCertificates(dir);
      const cluster = { namespaces, nadsPerNamespace };
      const podBody = join(dir, "pod.json");
      const plainBody = join(dir, "plain.json");
      await writeFile(podBody, JSON.stringify(podReview(cluster, true)));
      await writeFile(plainBody, JSON.stringify(podReview(cluster, false)));
      const targets: readonly Target[] = [
        { id: "pod", label: "nadguard /mutate, pod with 3 attachments", path: "/mutate?timeout=10s", bodyFile: podBody },
        { id: "plain", label: "nadguard /mutate, pod without annotation", path: "/mutate?timeout=10s", bodyFile: plainBody },
        { id: "floor", label: "floor: constant review, same server", path: "/floor", bodyFile: podBody },
      ];

      ctx.log(`admission: starting the server with ${namespaces * nadsPerNamespace} NADs`);
      const server = await startServer(ctx, { ...cluster, certFile: files.certFile, keyFile: files.keyFile });
      servers.push(server);
      const idle10k = await memory(server.port, ca.cert);

      // Warm-up (JIT, TLS sessions, pools): open throttle on every route, not recorded.
      const warmup = targets.flatMap((t): LoadJob[] => [
        { name: "warmup", tool: "autocannon", path: t.path, bodyFile: t.bodyFile, rate: 0, durationS: ctx.full ? 3 : 1 },
        { name: "warmup", tool: "paced", path: t.path, bodyFile: t.bodyFile, rate: 1000, durationS: 1 },
      ]);
      await runLoad(ctx, server, files.caFile, warmup, dir);

      // One load process per repetition; within it the targets rotate so that drift hits all alike.
      const results = new Map<string, JobOutcome[]>();
      for (let rep = 0; rep < reps; rep++) {
        const jobs: LoadJob[] = [];
        for (const load of LOADS) {
          for (let i = 0; i < targets.length; i++) {
            const t = targets[(i + rep) % targets.length]!;
            jobs.push({ name: `${load.id}/${t.id}`, tool: load.tool, path: t.path, bodyFile: t.bodyFile, rate: load.rate, durationS: load.rate === 0 ? openS : fixedS });
          }
        }
        ctx.log(`admission: repetition ${rep + 1}/${reps} (${jobs.length} runs)`);
        for (const outcome of await runLoad(ctx, server, files.caFile, jobs, dir)) results.set(outcome.name, [...(results.get(outcome.name) ?? []), outcome]);
      }
      const after10k = await memory(server.port, ca.cert);
      await ctx.cleanup.stop(server.child);

      ctx.log("admission: memory of an empty cluster and of 100,000 NADs");
      const tiny = { namespaces: 1, nadsPerNamespace: 4 };
      const tinyServer = await startServer(ctx, { ...tiny, certFile: files.certFile, keyFile: files.keyFile });
      servers.push(tinyServer);
      const tinyBody = join(dir, "pod-tiny.json");
      await writeFile(tinyBody, JSON.stringify(podReview(tiny, true)));
      await runLoad(ctx, tinyServer, files.caFile, [{ name: "tiny", tool: "autocannon", path: "/mutate", bodyFile: tinyBody, rate: 0, durationS: openS }], dir);
      const afterTiny = await memory(tinyServer.port, ca.cert);
      await ctx.cleanup.stop(tinyServer.child);

      const big = { namespaces: 10_000, nadsPerNamespace };
      const bigServer = await startServer(ctx, { ...big, certFile: files.certFile, keyFile: files.keyFile });
      servers.push(bigServer);
      const bigBody = join(dir, "pod-big.json");
      await writeFile(bigBody, JSON.stringify(podReview(big, true)));
      const idle100k = await memory(bigServer.port, ca.cert);
      const bigLoad = await runLoad(ctx, bigServer, files.caFile, [{ name: "big", tool: "autocannon", path: "/mutate", bodyFile: bigBody, rate: 0, durationS: openS }], dir);
      const after100k = await memory(bigServer.port, ca.cert);
      await ctx.cleanup.stop(bigServer.child);

      return { status: "done", ...describe(results, targets, { afterTiny, idle10k, after10k, idle100k, after100k, build10k: server.buildMs, build100k: bigServer.buildMs, big: bigLoad[0]! }, { reps, fixedS, openS, full: ctx.full, from: server.from }) };
    } finally {
      for (const s of servers) await ctx.cleanup.stop(s.child);
      await rm(dir, { recursive: true, force: true });
    }
  },
};

interface Memory {
  readonly afterTiny: NodeJS.MemoryUsage;
  readonly idle10k: NodeJS.MemoryUsage;
  readonly after10k: NodeJS.MemoryUsage;
  readonly idle100k: NodeJS.MemoryUsage;
  readonly after100k: NodeJS.MemoryUsage;
  readonly build10k: number;
  readonly build100k: number;
  readonly big: JobOutcome;
}

function describe(
  results: ReadonlyMap<string, JobOutcome[]>,
  targets: readonly Target[],
  mem: Memory,
  run: { reps: number; fixedS: number; openS: number; full: boolean; from: "dist" | "tsx" },
): { tables: Table[]; method: string[]; reading: string[] } {
  const get = (load: string, target: string): JobOutcome[] => results.get(`${load}/${target}`) ?? [];
  const rows: string[][] = [];
  const facts: Record<string, { p99: number; p50: number; thr: number; p99Ratio: number; thrRatio: number; p50Ratio: number }> = {};
  for (const load of LOADS) {
    const floor = get(load.id, "floor");
    for (const t of targets) {
      const outcomes = get(load.id, t.id);
      const pooled = summarize(outcomes.flatMap((o) => o.latencies));
      const perRunP99 = outcomes.map((o) => summarize(o.latencies).p99);
      const perRunP50 = outcomes.map((o) => summarize(o.latencies).median);
      const p99Ratio = pairedRatios(perRunP99, floor.map((o) => summarize(o.latencies).p99));
      const p50Ratio = pairedRatios(perRunP50, floor.map((o) => summarize(o.latencies).median));
      const thrRatio = pairedRatios(outcomes.map((o) => o.throughput), floor.map((o) => o.throughput));
      const thr = summarize(outcomes.map((o) => o.throughput));
      const failures = outcomes.reduce((s, o) => s + o.errors + o.non2xx, 0);
      facts[`${load.id}/${t.id}`] = { p99: pooled.p99, p50: pooled.median, thr: thr.median, p99Ratio: p99Ratio.median, thrRatio: thrRatio.median, p50Ratio: p50Ratio.median };
      rows.push([
        load.label,
        t.id === "floor" ? "floor" : t.id === "pod" ? "nadguard, 3 attachments" : "nadguard, no annotation",
        count(thr.median, "/s"),
        ms(pooled.median),
        ms(pooled.p99),
        ms(pooled.p999),
        t.id === "floor" ? "1×" : ratioPair(p50Ratio),
        t.id === "floor" ? "1×" : ratioPair(p99Ratio),
        t.id === "floor" ? "1×" : load.rate === 0 ? ratioPair(thrRatio) : "–",
        percent(summarize(outcomes.map((o) => o.serverCpu)).median),
        us(summarize(outcomes.map(cpuPerReview)).median),
        percent(summarize(outcomes.map((o) => o.clientCpu)).median),
        load.tool === "paced" ? ms(Math.max(...outcomes.map((o) => o.lagP99))) : "–",
        String(failures),
      ]);
    }
  }
  const latency: Table = {
    title: `Admission reviews over TLS, 10,000 NADs in 1,000 namespaces (${run.reps} repetition${run.reps > 1 ? "s" : ""}; ${run.fixedS} s per fixed-rate run, ${run.openS} s open)`,
    columns: ["load", "route", "throughput", "p50", "p99", "p99.9", "p50 / floor", "p99 / floor", "throughput / floor", "server CPU", "server CPU / review", "client CPU", "client lag p99", "errors"],
    rows,
    notes: [
      "p50, p99, p99.9: percentiles of every response of every repetition pooled; throughput: median over repetitions.",
      "x / floor: ratio to the floor route measured in the same repetition, median (p99) over repetitions.",
      "paced h2: one HTTP/2 session (as kube-apiserver), requests started on a fixed schedule (open loop); client lag p99: how late the client started requests against that schedule (worst repetition).",
      "autocannon: HTTP/1.1, 10 connections; its overallRate sends each second's budget back to back, so fixed-rate runs are bursts.",
      "server/client CPU: CPU time over wall time of the server and of the load process (1 = one core); server CPU / review: the server's CPU time over the run (/proc, 10 ms ticks) per answered review, median over repetitions.",
    ],
  };
  const cpuRows = targets.map((t) => {
    const row = [t.id === "floor" ? "floor: constant review" : t.id === "pod" ? "nadguard, 3 attachments" : "nadguard, no annotation"];
    for (const load of CPU_LOADS) {
      const outcomes = get(load, t.id);
      const floor = get(load, "floor");
      row.push(us(summarize(outcomes.map(cpuPerReview)).median), t.id === "floor" ? "1×" : ratioPair(pairedRatios(outcomes.map(cpuPerReview), floor.map(cpuPerReview))));
    }
    return row;
  });
  const cpuTable: Table = {
    title: "Server CPU time per review, same run",
    columns: ["route", ...CPU_LOADS.flatMap((id) => [`µs / review, ${loadLabel(id)}`, "/ floor"])],
    rows: cpuRows,
    notes: [
      "The server process's CPU time (utime + stime from /proc, all its threads) over each run of the table above, divided by the reviews answered in it; / floor: ratio to the floor route in the same repetition, median (p99) over repetitions.",
      "The steadiest figure of this section on a shared machine: it does not depend on how much CPU the load client or other processes took.",
    ],
  };
  const memoryTable: Table = {
    title: "Webhook server memory after GC",
    columns: ["state", "RSS", "heap used", "external"],
    rows: [
      memoryRow("4 NADs / 1 ns (the process without a cluster), after load", mem.afterTiny),
      memoryRow(`10,000 NADs / 1,000 ns, idle (snapshot built in ${ms(mem.build10k)})`, mem.idle10k),
      memoryRow("10,000 NADs / 1,000 ns, after the load above", mem.after10k),
      memoryRow(`100,000 NADs / 10,000 ns, idle (snapshot built in ${ms(mem.build100k)})`, mem.idle100k),
      memoryRow(`100,000 NADs / 10,000 ns, after ${run.openS} s open load (${count(mem.big.throughput, "/s")}, p99 ${ms(summarize(mem.big.latencies).p99)})`, mem.after100k),
    ],
    notes: [
      "The snapshot holds every NAD, RoleBinding and ServiceAccount, with the RBAC index built on first use.",
      `nadguard's modules ${run.from === "dist" ? "from the build (dist/, current with the sources), as the image runs them" : "from the sources through tsx (dist/ missing or older than the sources)"}; the bench's own harness through tsx, whose loader is part of every row's RSS (section 13 measures \`nadguard webhook --state\` from the build alone). The first row is that process with an almost empty cluster.`,
    ],
  };
  const method = [
    "Server: bench/admission-server.ts — the real app from webhook/server.ts buildWebhook with the handlers of `nadguard webhook` (src/admission/review.ts over src/cli/env.ts envFor), default config (authorization mode rbac), TLS with a CA and serving certificate from certs/generate.ts, HTTP/2 with HTTP/1.1 fallback; a `/floor` route on the same fastify instance answers a precomputed AdmissionReview after fastify's default JSON body parsing (the admission routes read bodies with their own reader and its limits).",
    "State: 1,000 namespaces × 10 NADs (macvlan, ipvlan, bridge, SR-IOV with resourceName, host-device, vlan), a ServiceAccount and two RoleBindings per namespace (one grants the neighbouring tenant's service accounts `use` on its NADs), 40 unrelated ClusterRoleBindings; built in memory through the state-directory schemas and SnapshotBuilder.",
    "Pod: a Deployment pod created by the ReplicaSet controller (2.8 KB review), two containers, annotation `macvlan-0, sriov-3@fast0, <neighbour>/bridge-2@shared0`: one SR-IOV attachment (resource injected, JSON patch returned) and one cross-namespace attachment whose RBAC check fails for the controller's identity and succeeds for the pod's service account.",
    "Load: bench/admission-load.ts in a separate process (see the table notes); both processes share the machine's CPUs.",
  ];
  const reading: string[] = [];
  const f = (k: string) => facts[k]!;
  const cpu = (load: string, target: string): number => summarize(get(load, target).map(cpuPerReview)).median;
  if (facts["p1000/pod"] && facts["open/pod"]) {
    reading.push(
      `At 1,000 reviews/s (paced HTTP/2) nadguard answers the 3-attachment pod with p99 ${ms(f("p1000/pod").p99)} against ${ms(f("p1000/floor").p99)} for the constant review (p99 ratio ${ratio(f("p1000/pod").p99Ratio)}; without the annotation ${ratio(f("p1000/plain").p99Ratio)}); the target is p99 ≤ 1.2× the floor's.`,
      `At open throttle the real decision sustains ${ratio(f("open/pod").thrRatio)} of the floor's throughput (${count(f("open/pod").thr, "/s")} vs ${count(f("open/floor").thr, "/s")}); target ≥ 0.7×. The pod without annotation reaches ${ratio(f("open/plain").thrRatio)}; target ≥ 0.9×.`,
      `Server CPU per review at open throttle: ${us(cpu("open", "floor"))} for the floor, ${us(cpu("open", "plain"))} for the pod without the annotation, ${us(cpu("open", "pod"))} for the 3-attachment pod (second table).`,
      `RSS after GC: ${bytes(mem.after10k.rss)} with 10,000 NADs (target ≤ 150 MB), ${bytes(mem.after100k.rss)} with 100,000, against ${bytes(mem.afterTiny.rss)} for the same process with an almost empty cluster.`,
      `The autocannon fixed-rate rows show what burst arrivals do: each connection's second of budget goes out back to back, so their p99 is close to the open-throttle p99 rather than to the paced one.`,
    );
  }
  return { tables: [latency, cpuTable, memoryTable], method, reading };
}
