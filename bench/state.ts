// Benchmark 7 — state directory churn: review latency of `nadguard webhook --state DIR` while 1,000
// files are added to its state directory at once, side by side with the same load and no file
// churn; how long until the new files are in use, and how many reloads the burst cost.
import { type ChildProcess, spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateCa, generateServingCertificate } from "../certs/generate.js";
import { type JobOutcome, runLoad } from "./admission.js";
import type { LoadJob } from "./admission-load.js";
import { listeningPort } from "./memory.js";
import type { BenchContext, Section } from "./report.js";
import { type Table, count, ms, pairedRatios, ratioPair, size, summarize } from "./stats.js";
import { must, sleep } from "./system.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
/** Reviews per second: a busy cluster's pod creations, sent as kube-apiserver does (one HTTP/2 session). */
const RATE = 200;
/** The burst starts this long into the churn run, so that the run holds quiet reviews on both sides. */
const CHURN_AFTER_MS = 1000;

interface Webhook {
  readonly child: ChildProcess;
  readonly port: number;
  readonly pid: number;
}

async function startWebhook(ctx: BenchContext, state: string, certFile: string, keyFile: string): Promise<Webhook> {
  const child = ctx.cleanup.track(
    spawn(process.execPath, [join(ROOT, "bin", "nadguard.js"), "webhook", "--state", state, "--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile, "--log-level", "info"], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const port = await listeningPort(child);
  return { child, port, pid: child.pid! };
}

function reloads(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/metrics", ca, servername: "localhost" }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString("utf8")));
      res.on("end", () => resolve(Number(/^nadguard_state_reloads_total (\d+)/m.exec(text)?.[1] ?? Number.NaN)));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Waits until the reload count moves past `from` and stays there for a poll interval and more;
 * `visibleMs` runs from `started` to the last reload, the one that put the last file in use.
 */
async function settled(port: number, ca: string, from: number, started: number): Promise<{ visibleMs: number; reloads: number }> {
  let visibleMs = Number.NaN;
  let last = from;
  let stableSince = performance.now();
  for (;;) {
    const now = await reloads(port, ca);
    if (now !== last) {
      last = now;
      stableSince = performance.now();
      visibleMs = stableSince - started;
    }
    // 3 s without a reload: past the source's 2 s poll, which re-reads files written within 2 s.
    if (now > from && performance.now() - stableSince > 3000) return { visibleMs, reloads: now - from };
    if (performance.now() - started > 120_000) throw new Error("the webhook did not reload within 120 s");
    await sleep(25);
  }
}

interface Repetition {
  readonly quiet: JobOutcome;
  readonly churn: JobOutcome;
  readonly visibleMs: number;
  readonly reloads: number;
  readonly copyMs: number;
}

export const state: Section = {
  id: "state",
  title: "7. State directory: reviews while 1,000 files are added",
  async run(ctx) {
    const files = ctx.full ? 1000 : 200;
    const reps = ctx.full ? 3 : 1;
    const durationS = ctx.full ? 8 : 4;
    const dir = await mkdtemp(join(tmpdir(), `${ctx.cleanup.prefix}-state-`));
    let webhook: Webhook | undefined;
    try {
      const ca = generateCa({ commonName: "nadguard-bench-ca", validityDays: 2 });
      const serving = generateServingCertificate(ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], validityDays: 2 });
      const tls = { caFile: join(dir, "ca.pem"), certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key") };
      await Promise.all([writeFile(tls.caFile, ca.cert), writeFile(tls.certFile, serving.cert), writeFile(tls.keyFile, serving.key, { mode: 0o600 })]);
      const stateDir = join(dir, "state");
      const staging = join(dir, "staging");
      await cp(join(ROOT, "examples", "cluster"), stateDir, { recursive: true });
      await mkdir(staging);
      await Promise.all(Array.from({ length: files }, (_, i) => writeFile(join(staging, `bulk-${i}.yaml`), bulkNad(i))));
      const body = join(dir, "review.json");
      await writeFile(body, await readFile(join(ROOT, "examples", "reviews", "pod-tenant-a-allowed.json")));

      webhook = await startWebhook(ctx, stateDir, tls.certFile, tls.keyFile);
      const running = webhook;
      const job = (name: string): LoadJob => ({ name, tool: "paced", path: "/mutate?timeout=10s", bodyFile: body, rate: RATE, durationS });
      await runLoad(ctx, running, tls.caFile, [{ ...job("warmup"), durationS: 2 }], dir);

      const results: Repetition[] = [];
      for (let rep = 0; rep < reps; rep++) {
        ctx.log(`state: repetition ${rep + 1}/${reps}: quiet, then ${size(files)} files added`);
        let burst: Promise<{ copyMs: number; visibleMs: number; reloads: number }> | undefined;
        const outcomes = await runLoad(ctx, running, tls.caFile, [job("quiet"), job("churn")], dir, (name) => {
          if (name !== "churn") return;
          burst = (async () => {
            await sleep(CHURN_AFTER_MS);
            const from = await reloads(running.port, ca.cert);
            const started = performance.now();
            // One process writes them all (create, write, close per file), as `cp` or `tar x` would.
            await must("sh", ["-c", 'cp "$0"/*.yaml "$1"/', staging, stateDir], { timeoutMs: 120_000 });
            const copyMs = performance.now() - started;
            return { copyMs, ...(await settled(running.port, ca.cert, from, started)) };
          })();
        });
        const churned = await burst!;
        results.push({ quiet: outcomes.find((o) => o.name === "quiet")!, churn: outcomes.find((o) => o.name === "churn")!, ...churned });
        // Back to the base state before the next repetition (not measured).
        const removeFrom = await reloads(running.port, ca.cert);
        const added = (await readdir(stateDir)).filter((name) => name.startsWith("bulk-"));
        await Promise.all(added.map((name) => rm(join(stateDir, name))));
        await settled(running.port, ca.cert, removeFrom, performance.now());
      }
      return { status: "done", ...describe(results, { files, reps, durationS }) };
    } finally {
      if (webhook) await ctx.cleanup.stop(webhook.child);
      await rm(dir, { recursive: true, force: true });
    }
  },
};

function bulkNad(i: number): string {
  return [
    "apiVersion: k8s.cni.cncf.io/v1",
    "kind: NetworkAttachmentDefinition",
    `metadata: { name: bulk-${i}, namespace: tenant-${String.fromCharCode(97 + (i % 26))} }`,
    "spec:",
    "  config: |",
    `    { "cniVersion": "1.0.0", "type": "macvlan", "master": "eth0", "ipam": { "type": "host-local", "subnet": "198.18.${i % 256}.0/24" } }`,
    "",
  ].join("\n");
}

function describe(results: readonly Repetition[], run: { files: number; reps: number; durationS: number }): { tables: Table[]; method: string[]; reading: string[] } {
  const quiet = results.map((r) => r.quiet);
  const churn = results.map((r) => r.churn);
  const row = (label: string, outcomes: readonly JobOutcome[], base?: readonly JobOutcome[]): string[] => {
    const pooled = summarize(outcomes.flatMap((o) => o.latencies));
    const p99s = outcomes.map((o) => summarize(o.latencies).p99);
    const maxes = outcomes.map((o) => summarize(o.latencies).max);
    return [
      label,
      count(summarize(outcomes.map((o) => o.throughput)).median, "/s"),
      ms(pooled.median),
      ms(pooled.p99),
      ms(pooled.max),
      base ? ratioPair(pairedRatios(p99s, base.map((o) => summarize(o.latencies).p99))) : "1×",
      base ? ratioPair(pairedRatios(maxes, base.map((o) => summarize(o.latencies).max))) : "1×",
      String(outcomes.reduce((s, o) => s + o.errors + o.non2xx, 0)),
    ];
  };
  const latency: Table = {
    title: `Reviews at ${RATE}/s (paced HTTP/2), ${run.durationS} s per run, ${run.reps} repetition${run.reps > 1 ? "s" : ""}`,
    columns: ["state directory", "throughput", "p50", "p99", "max", "p99 / quiet", "max / quiet", "errors"],
    rows: [row("quiet (no file changes)", quiet), row(`${size(run.files)} files added ${CHURN_AFTER_MS / 1000} s into the run`, churn, quiet)],
    notes: ["p50, p99, max: every response of every repetition pooled; x / quiet: ratio to the quiet run of the same repetition, median (p99) over repetitions."],
  };
  const visible = summarize(results.map((r) => r.visibleMs));
  const reload: Table = {
    title: "The burst",
    columns: ["files", "written in", "all in use after", "reloads per burst"],
    rows: [[size(run.files), ms(summarize(results.map((r) => r.copyMs)).median), ms(visible.median), results.map((r) => String(r.reloads)).join(", ")]],
    notes: [
      "written in: the `cp` of all files; all in use after: from the start of the copy until nadguard_state_reloads_total last moved (the snapshot with the last of the files published; sampled every 25 ms); reloads: how many snapshots the burst made, counted until 3 s passed without one. A burst that lasts longer than 1 s is reloaded at least once while it runs (the source's longest wait).",
    ],
  };
  const method = [
    "Server: `nadguard webhook --state DIR` as a user runs it (bin/nadguard.js: the build in dist/ when it is current with the sources, else the sources through tsx), TLS from certs/generate.ts, log level warn; the state directory starts as a copy of examples/cluster.",
    `Load: bench/admission-load.ts in its own process, one HTTP/2 session, ${RATE} reviews/s started on a fixed schedule (open loop), the example pod review examples/reviews/pod-tenant-a-allowed.json (allowed, SR-IOV patch). Per repetition a quiet run, then a churn run in which, ${CHURN_AFTER_MS / 1000} s in, one \`cp\` writes ${size(run.files)} NAD files (one NAD each, 26 namespaces) into the directory; they are removed again between repetitions, outside any measured run.`,
  ];
  const q = summarize(quiet.flatMap((o) => o.latencies));
  const c = summarize(churn.flatMap((o) => o.latencies));
  const reading = [
    `With ${size(run.files)} files arriving, the slowest review took ${ms(c.max)} against ${ms(q.max)} with no churn (p99 ${ms(c.p99)} vs ${ms(q.p99)}); all of them were in use ${ms(visible.median)} after the copy started, in ${results.map((r) => r.reloads).join(", ")} reload(s) per burst.`,
  ];
  return { tables: [latency, reload], method, reading };
}
