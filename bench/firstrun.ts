// Benchmark 11 — first run, as a new user meets nadguard: a fresh `git clone` of this
// repository into a temporary directory, `npm ci` there, then the time from `npm ci` finishing to
// `npm start -- --listen 127.0.0.1:PORT` answering its first AdmissionReview over TLS, a second
// start (certificates reused), and the wall time of `npx nadguard admit` against `node -e ''`
// measured alternately in the same run. Opt-in (`--only firstrun`): `npm ci` takes most of a minute.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext, Section } from "./report.js";
import { type Table, ms, pairedRatios, ratio, ratioPair, summarize } from "./stats.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The review and the pod README's quick start uses. */
const REVIEW = "examples/reviews/pod-tenant-a-allowed.json";
const ADMIT = ["nadguard", "admit", "examples/pods/tenant-a-web.yaml", "--state", "examples/cluster", "--as", "alice"];
/** The first-run targets (BENCHMARKS.md, summary). */
const START_TARGET_MS = 5000;
const ADMIT_TARGET_MS = 1000;

/** Wall times (ms) of the commands compared, call by call. */
interface Calls {
  readonly npx: number[];
  readonly bin: number[];
  readonly node: number[];
  /** npx's own cost with the least nadguard work: the CLI loaded, nothing read. */
  readonly npxVersion: number[];
}

interface Timed {
  readonly ms: number;
  readonly code: number | null;
  readonly output: string;
}

/** Runs a command to its end; its wall time from spawn to exit. */
function timed(command: string, args: readonly string[], cwd: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (output += c.toString("utf8")));
    child.once("error", reject);
    child.once("close", (code) => resolve({ ms: performance.now() - started, code, output }));
  });
}

async function must(what: string, run: Promise<Timed>): Promise<Timed> {
  const result = await run;
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}: ${result.output.slice(-2000)}`);
  return result;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** One POST of the review; true when the answer is an AdmissionReview echoing its uid. */
function answered(port: number, ca: string, body: string, uid: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/mutate", method: "POST", ca, headers: { "content-type": "application/json" }, timeout: 2000 },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString("utf8")));
        res.on("end", () => {
          try {
            const review = JSON.parse(text) as { kind?: string; response?: { uid?: string } };
            resolve(res.statusCode === 200 && review.kind === "AdmissionReview" && review.response?.uid === uid);
          } catch {
            resolve(false);
          }
        });
      },
    );
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end(body);
  });
}

/** Stops `npm start` and everything under it (npm, sh, node): it runs in its own process group. */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // already gone
    }
  };
  signal("SIGTERM");
  const timer = setTimeout(() => signal("SIGKILL"), 3000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `npm start -- --listen 127.0.0.1:PORT` in `dir` and posts the review every 20 ms until
 * one is answered; the time from the call (right after `npm ci` exits) to that answer.
 */
async function firstAnswer(ctx: BenchContext, dir: string): Promise<{ ms: number; certsGenerated: boolean }> {
  const port = await freePort();
  const body = await readFile(join(dir, REVIEW), "utf8");
  const uid = (JSON.parse(body) as { request: { uid: string } }).request.uid;
  const caFile = join(dir, "certs/generated/ca.crt");
  const certsGenerated = !existsSync(caFile);
  const started = performance.now();
  const child = ctx.cleanup.track(spawn("npm", ["start", "--", "--listen", `127.0.0.1:${port}`], { cwd: dir, stdio: ["ignore", "pipe", "pipe"], detached: true }));
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output += c.toString("utf8")));
  child.stderr?.on("data", (c: Buffer) => (output += c.toString("utf8")));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`npm start exited ${child.exitCode}: ${output.slice(-2000)}`);
      if (performance.now() - started > 60_000) throw new Error(`npm start did not answer in 60 s: ${output.slice(-2000)}`);
      const ca = existsSync(caFile) ? await readFile(caFile, "utf8").catch(() => "") : "";
      if (ca.includes("END CERTIFICATE") && (await answered(port, ca, body, uid))) return { ms: performance.now() - started, certsGenerated };
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await stopGroup(child);
  }
}

export const firstRun: Section = {
  id: "firstrun",
  title: "11. First run: a fresh clone's npm start and npx nadguard admit",
  async run(ctx) {
    const settings = ctx.full ? { clones: 2, restarts: 3, calls: 10 } : { clones: 1, restarts: 1, calls: 3 };
    const head = (await must("git rev-parse", timed("git", ["rev-parse", "--short", "HEAD"], ROOT))).output.trim();
    const temp = await mkdtemp(join(tmpdir(), `${ctx.cleanup.prefix}-firstrun-`));
    const clones: { clone: number; ci: number; first: number; again: number[] }[] = [];
    const admit: Calls = { npx: [], bin: [], node: [], npxVersion: [] };
    try {
      for (let c = 0; c < settings.clones; c++) {
        const dir = join(temp, `nadguard-${c}`);
        ctx.log(`firstrun: clone ${c + 1}/${settings.clones}: git clone, npm ci`);
        const clone = await must("git clone", timed("git", ["clone", "--quiet", ROOT, dir], temp));
        const ci = await must("npm ci", timed("npm", ["ci", "--no-audit", "--no-fund"], dir));
        // Right after npm ci exits, as a user typing `npm ci && npm start` would.
        const first = await firstAnswer(ctx, dir);
        if (!first.certsGenerated) throw new Error("the fresh clone already had certs/generated");
        const again: number[] = [];
        for (let r = 0; r < settings.restarts; r++) again.push((await firstAnswer(ctx, dir)).ms);
        clones.push({ clone: clone.ms, ci: ci.ms, first: first.ms, again });
        if (c === 0) {
          ctx.log("firstrun: npx nadguard admit against node -e ''");
          // The verdict itself once, so that a broken admit cannot pass for a fast one.
          const verdict = await must("npx nadguard admit", timed("npx", ADMIT, dir));
          if (!/ALLOWED/.test(verdict.output)) throw new Error(`unexpected admit verdict: ${verdict.output}`);
          for (let i = 0; i < settings.calls; i++) {
            // Alternated, so that the machine's drift touches all three alike.
            admit.node.push((await must("node -e ''", timed(process.execPath, ["-e", ""], dir))).ms);
            admit.npx.push((await must("npx nadguard admit", timed("npx", ADMIT, dir))).ms);
            admit.bin.push((await must("node bin/nadguard.js admit", timed(process.execPath, ["bin/nadguard.js", ...ADMIT.slice(1)], dir))).ms);
            admit.npxVersion.push((await must("npx nadguard --version", timed("npx", ["nadguard", "--version"], dir))).ms);
          }
        }
        await rm(dir, { recursive: true, force: true });
      }
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
    return { status: "done", ...describe(clones, admit, settings, head) };
  },
};

function describe(
  clones: readonly { clone: number; ci: number; first: number; again: number[] }[],
  admit: Calls,
  settings: { clones: number; restarts: number; calls: number },
  head: string,
): { tables: Table[]; method: string[]; reading: string[] } {
  const first = summarize(clones.map((c) => c.first));
  const again = summarize(clones.flatMap((c) => c.again));
  const start: Table = {
    title: `A fresh clone (${clones.length} clone${clones.length > 1 ? "s" : ""}): npm ci, then npm start until its first answer`,
    columns: ["clone", "git clone", "npm ci", "npm ci exit → first review answered", "again (certificates reused), median"],
    rows: clones.map((c, i) => [String(i + 1), ms(c.clone), ms(c.ci), ms(c.first), ms(summarize(c.again).median)]),
    notes: [
      "first review answered: from the exit of `npm ci` to a 200 AdmissionReview echoing the uid of examples/reviews/pod-tenant-a-allowed.json, posted over TLS every 20 ms with the CA that `npm start` wrote (the first start generates it).",
      `again: ${settings.restarts} more starts of the same clone, each stopped after its first answer.`,
    ],
  };
  const calls: Table = {
    title: `\`npx nadguard admit\` on the quick start's pod against \`node -e ''\` (${admit.node.length} calls each, alternated)`,
    columns: ["command", "median", "p99", "min", "/ node -e '' (per call pair, median)"],
    rows: [
      ["node -e ''", ms(summarize(admit.node).median), ms(summarize(admit.node).p99), ms(summarize(admit.node).min), "1×"],
      ["npx nadguard admit …", ms(summarize(admit.npx).median), ms(summarize(admit.npx).p99), ms(summarize(admit.npx).min), ratioPair(pairedRatios(admit.npx, admit.node))],
      ["node bin/nadguard.js admit …", ms(summarize(admit.bin).median), ms(summarize(admit.bin).p99), ms(summarize(admit.bin).min), ratioPair(pairedRatios(admit.bin, admit.node))],
      ["npx nadguard --version", ms(summarize(admit.npxVersion).median), ms(summarize(admit.npxVersion).p99), ms(summarize(admit.npxVersion).min), ratioPair(pairedRatios(admit.npxVersion, admit.node))],
    ],
    notes: [
      `\`${ADMIT.join(" ")}\` in the clone, after its npm ci; node bin/nadguard.js is the same command without npx's own start-up.`,
      "npx nadguard --version: what npx costs before nadguard does any work (npm's start, then, because the clone's own package.json declares the bin, npm exec's self-execution path: it links the package into its npx cache and loads both dependency trees on every call).",
    ],
  };
  const method = [
    `\`git clone\` of this repository's HEAD (${head}; uncommitted changes are not in it) into a temporary directory, \`npm ci --no-audit --no-fund\` there with the machine's npm cache (its \`prepare\` script compiles dist/), then \`npm start -- --listen 127.0.0.1:PORT\` (a free port) started as soon as npm ci exits.`,
    "Wall times of the commands as child processes of the bench, which runs them one at a time; npm start runs in its own process group and is stopped (SIGTERM) after its first answer.",
  ];
  const npx = summarize(admit.npx).median;
  const reading = [
    `From \`npm ci\` finishing to the first review answered: ${ms(first.median)} (largest ${ms(first.max)}; the target is at most ${ms(START_TARGET_MS)}: ${first.max <= START_TARGET_MS ? "met" : "missed"}); a later start of the same clone, with its certificates reused: ${ms(again.median)}.`,
    `\`npx nadguard admit\`: ${ms(npx)} median, ${ratio(npx / summarize(admit.node).median)} of \`node -e ''\` (${ms(summarize(admit.node).median)}); the target is under ${ms(ADMIT_TARGET_MS)}: ${npx < ADMIT_TARGET_MS ? "met" : "missed"}. Without npx: ${ms(summarize(admit.bin).median)}; \`npx nadguard --version\`: ${ms(summarize(admit.npxVersion).median)}.`,
  ];
  return { tables: [start, calls], method, reading };
}
