// `npm run bench` — the quick smoke mode: small sizes, short runs, tables printed, nothing judged.
// `npm run bench -- --full` — every size, repeated runs; writes BENCHMARKS.md.
// Options: --only admission,apply (sections by id), --out FILE (where --full writes; default
// BENCHMARKS.md at the repository root). Opt-in sections (firstrun: a fresh clone and its `npm ci`,
// most of a minute) run only when --only names them. Exit code: 0 unless a section crashed (a number never
// fails anything); sections whose dependency is missing are skipped with the reason.
// Must run as root for the apply, datapath and convergence sections (network namespaces).
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchContext, type Section, type SectionResult, benchmarksMarkdown, sectionText, skipped } from "./report.js";
import { Cleanup, machine } from "./system.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Each family in its own module, imported only when it runs: a module whose dependency is broken skips, the others run. */
const SECTIONS: readonly { id: string; title: string; optIn?: true; load: () => Promise<Section> }[] = [
  { id: "admission", title: "1. Admission: webhook latency, throughput and memory", load: async () => (await import("./admission.js")).admission },
  { id: "compile", title: "2. Compile: full and incremental", load: async () => (await import("./compile.js")).compile },
  { id: "apply", title: "3. Apply: per-netns transaction cost vs its floor and iptables", load: async () => (await import("./apply.js")).apply },
  { id: "datapath", title: "4. Datapath: new connections and UDP packets through a secondary bridge", load: async () => (await import("./datapath.js")).datapath },
  { id: "convergence", title: "5. Convergence: state change to rules applied in every affected netns", load: async () => (await import("./convergence.js")).convergence },
  { id: "kube", title: "6. Kubernetes mode: informer memory and time to ready", load: async () => (await import("./kube.js")).kube },
  { id: "state", title: "7. State directory: reviews while 1,000 files are added", load: async () => (await import("./state.js")).state },
  { id: "hostile", title: "8. Hostile reviews: normal reviews beside a hostile client, and memory after", load: async () => (await import("./hostile.js")).hostile },
  { id: "matrix", title: "9. Matrix: every pod pair of a network against verdict pair by pair", load: async () => (await import("./matrix.js")).matrix },
  { id: "cni", title: "10. CNI meta-plugin: ADD and DEL through the shim and the daemon vs the delegates run directly", load: async () => (await import("./cni.js")).cni },
  { id: "crinode", title: "12. A pod sandbox through containerd's CRI: nadguard (eth0 + 2) vs the cluster network's conflist alone", load: async () => (await import("./crinode.js")).crinode },
  { id: "memory", title: "13. Webhook memory as production runs it: `nadguard webhook --state` from the build", load: async () => (await import("./memory.js")).memory },
  { id: "firstrun", title: "11. First run: a fresh clone's npm start and npx nadguard admit", optIn: true, load: async () => (await import("./firstrun.js")).firstRun },
];

interface Args {
  full: boolean;
  only: Set<string> | undefined;
  out: string;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { full: false, only: undefined, out: join(ROOT, "BENCHMARKS.md") };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--full") args.full = true;
    else if (arg === "--quick") args.full = false;
    else if (arg === "--only" || arg.startsWith("--only=")) args.only = new Set((arg.includes("=") ? arg.split("=")[1]! : (argv[++i] ?? "")).split(",").map((s) => s.trim()).filter(Boolean));
    else if (arg === "--out" || arg.startsWith("--out=")) args.out = arg.includes("=") ? arg.split("=")[1]! : (argv[++i] ?? args.out);
    else if (arg === "--help" || arg === "-h") {
      process.stdout.write(
        "usage: npm run bench [-- --full] [--only admission,compile,apply,datapath,convergence,kube,state,hostile,matrix,cni,crinode,memory,firstrun] [--out FILE]\n" +
          "sections run by default: all but firstrun (opt-in: a fresh clone and its npm ci)\n",
      );
      process.exit(0);
    } else {
      process.stderr.write(`bench: unknown argument ${arg}\n`);
      process.exit(2);
    }
  }
  for (const id of args.only ?? []) {
    if (!SECTIONS.some((s) => s.id === id)) {
      process.stderr.write(`bench: unknown section ${id}; expected one of ${SECTIONS.map((s) => s.id).join(", ")}\n`);
      process.exit(2);
    }
  }
  return args;
}

async function runSection(entry: (typeof SECTIONS)[number], ctx: BenchContext): Promise<SectionResult> {
  const started = performance.now();
  const load = loadavg().map((l) => l.toFixed(2)).join(" ");
  const seconds = (): number => (performance.now() - started) / 1000;
  let section: Section;
  try {
    section = await entry.load();
  } catch (error) {
    return { id: entry.id, title: entry.title, ...skipped(`cannot load bench/${entry.id}.ts: ${firstLine(error)}`), seconds: seconds(), load };
  }
  try {
    return { id: entry.id, title: entry.title, ...(await section.run(ctx)), seconds: seconds(), load };
  } catch (error) {
    ctx.log(`${entry.id}: ${(error as Error).stack ?? String(error)}`);
    return { id: entry.id, title: entry.title, status: "failed", why: firstLine(error), tables: [], method: [], reading: [], seconds: seconds(), load };
  } finally {
    await ctx.cleanup.sweep();
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!.slice(0, 300);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const ctx: BenchContext = { full: args.full, cleanup, log: (line) => process.stderr.write(`  … ${line}\n`) };
  const startedAt = new Date();
  const started = performance.now();
  const info = await machine();
  process.stdout.write(
    `nadguard bench (${args.full ? "full" : "quick"} mode, run prefix ${cleanup.prefix}) on ${info.cpus}× ${info.cpuModel}, kernel ${info.kernel}, node ${info.node}, ${info.nft}\n\n`,
  );
  const results: SectionResult[] = [];
  for (const entry of SECTIONS) {
    if (args.only ? !args.only.has(entry.id) : entry.optIn) continue;
    const result = await runSection(entry, ctx);
    results.push(result);
    process.stdout.write(`${sectionText(result)}\n\n`);
  }
  const seconds = (performance.now() - started) / 1000;
  if (args.full) {
    const command = `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim();
    await writeFile(args.out, benchmarksMarkdown({ machine: info, command, startedAt, seconds, results }));
    process.stdout.write(`wrote ${relative(process.cwd(), args.out) || args.out}\n`);
  }
  const failed = results.filter((r) => r.status === "failed");
  process.stdout.write(
    `bench: ${results.length} section(s) in ${seconds.toFixed(1)} s — ${results.map((r) => `${r.id} ${r.status}`).join(", ")}\n`,
  );
  await cleanup.sweep();
  process.exit(failed.length > 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
