// Webhook memory as production runs it: the real `nadguard webhook --state DIR` process from the
// compiled build (node dist/src/cli/main.js, the image's entrypoint) with the environment (NODE_OPTIONS, malloc settings) of
// manifests/webhook/deployment.yaml, DIR holding the admission section's synthetic cluster
// (1,000 namespaces × 10 NADs, RBAC) written as one YAML file per namespace. RSS is read from
// /proc/PID/status once /readyz answers 200 (the state loaded) and again after a load phase of
// admission reviews over HTTP/2, against the same process over an almost empty state directory.
// The target: ≤ 100 MiB with 10,000 NADs.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { benchCertificates } from "./admission.js";
import { compiledCli, readyz, rssOf } from "./kube.js";
import type { Section } from "./report.js";
import { type Table, bytes, count, ms, summarize } from "./stats.js";
import { type AdmissionClusterOptions, admissionObjects, podReview } from "./synthetic.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The environment the webhook's Deployment sets (NODE_OPTIONS and the rest), as the container runs with it. */
export async function webhookEnv(): Promise<Record<string, string>> {
  const manifest = await readFile(join(ROOT, "manifests", "webhook", "deployment.yaml"), "utf8");
  const env: Record<string, string> = {};
  for (const [, name, value] of manifest.matchAll(/- name: ([A-Z_][A-Z0-9_]*)\s*\n\s*value: "?([^"\n]+)"?/g)) env[name!] = value!.trim();
  if (!env.NODE_OPTIONS) throw new Error("manifests/webhook/deployment.yaml sets no NODE_OPTIONS");
  return env;
}

/** The Deployment's environment as `NAME=value …`, for the report. */
export function envText(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => `${name}=${value}`)
    .join(" ");
}

/** The Deployment's environment and a serving certificate for 127.0.0.1 written below `dir`. */
export async function productionStart(dir: string): Promise<Production> {
  const certs = join(dir, "certs");
  await mkdir(certs, { recursive: true });
  const { ca, files } = await benchCertificates(certs);
  return { env: await webhookEnv(), certFile: files.certFile, keyFile: files.keyFile, ca: ca.cert };
}

/**
 * The port of a webhook started with --tls-cert at the default log level: its JSON log's
 * "nadguard webhook listening" line carries the address. Rejects after 60 s or when it exits.
 */
export function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`nadguard webhook did not listen in 60 s: ${err.slice(0, 500)}`)), 60_000);
    child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
    child.stdout!.on("data", (chunk: Buffer) => {
      if (out.length < 100_000) out += chunk.toString();
      const match = /"address":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`nadguard webhook exited with ${code}: ${err.slice(0, 500)}`));
    });
  });
}

/** The synthetic cluster as state files: cluster-scoped objects in one file, each namespace's objects in its own. */
async function writeState(dir: string, options: AdmissionClusterOptions): Promise<void> {
  const files = new Map<string, Record<string, unknown>[]>();
  for (const object of admissionObjects(options)) {
    const metadata = object.metadata as { name: string; namespace?: string };
    const file = object.kind === "Namespace" ? metadata.name : (metadata.namespace ?? "cluster");
    files.set(file, [...(files.get(file) ?? []), object]);
  }
  await mkdir(dir, { recursive: true });
  for (const [name, objects] of files) await writeFile(join(dir, `${name}.yaml`), objects.map((o) => stringify(o)).join("---\n"));
}

interface Sample {
  readonly readyMs: number;
  readonly rssReady: number;
  readonly rssAfterLoad: number;
  readonly reviews: number;
  readonly errors: number;
}

/** Sends the review body over one HTTP/2 session, `streams` at a time, for `seconds`; counts answers that allow. */
async function load(port: number, ca: string, body: string, seconds: number, streams: number): Promise<{ reviews: number; errors: number }> {
  const session = connect(`https://127.0.0.1:${port}`, { ca, servername: "localhost" });
  const until = performance.now() + seconds * 1000;
  let reviews = 0;
  let errors = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const stream = session.request({ ":method": "POST", ":path": "/mutate", "content-type": "application/json" });
      let text = "";
      let status = 0;
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      stream.on("end", () => {
        const allowed = status === 200 && (JSON.parse(text) as { response?: { allowed?: boolean } }).response?.allowed === true;
        if (allowed) reviews++;
        else errors++;
        resolve();
      });
      stream.on("error", () => {
        errors++;
        resolve();
      });
      stream.end(body);
    });
  await Promise.all(Array.from({ length: streams }, async () => {
    while (performance.now() < until) await one();
  }));
  session.close();
  return { reviews, errors };
}

/** How the Deployment starts the webhook: its environment, a serving certificate from files. */
export interface Production {
  /** The Deployment's environment (NODE_OPTIONS, MALLOC_ARENA_MAX, MALLOC_TRIM_THRESHOLD_). */
  readonly env: Record<string, string>;
  readonly certFile: string;
  readonly keyFile: string;
  readonly ca: string;
}

/** A webhook process started as the Deployment starts it, once /readyz answered 200. */
export interface ReadyWebhook {
  readonly child: ChildProcess;
  readonly port: number;
  /** From the spawn to the first 200 of /readyz. */
  readonly readyMs: number;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `node MAIN webhook ARGS… --listen 127.0.0.1:0 --tls-cert … --tls-key …` with the Deployment's environment; stops it again when it does not become ready. */
export async function readyWebhook(main: string, production: Production, args: readonly string[], track: (child: ChildProcess) => ChildProcess, readyWithinMs: number): Promise<ReadyWebhook> {
  const started = performance.now();
  const child = track(
    spawn(process.execPath, [main, "webhook", ...args, "--listen", "127.0.0.1:0", "--tls-cert", production.certFile, "--tls-key", production.keyFile], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...production.env },
    }),
  );
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  };
  try {
    const port = await listeningPort(child);
    const deadline = Date.now() + readyWithinMs;
    while ((await readyz(port, production.ca)) !== 200) {
      if (Date.now() > deadline) throw new Error(`the webhook did not become ready in ${readyWithinMs / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { child, port, readyMs: performance.now() - started, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function measure(main: string, production: Production, stateDir: string, body: string, loadSeconds: number, track: (child: ChildProcess) => ChildProcess): Promise<Sample> {
  const webhook = await readyWebhook(main, production, ["--state", stateDir], track, 180_000);
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const rssReady = await rssOf(webhook.child.pid!);
    const { reviews, errors } = await load(webhook.port, production.ca, body, loadSeconds, 8);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return { readyMs: webhook.readyMs, rssReady, rssAfterLoad: await rssOf(webhook.child.pid!), reviews, errors };
  } finally {
    await webhook.stop();
  }
}

export const memory: Section = {
  id: "memory",
  title: "13. Webhook memory as production runs it: `nadguard webhook --state` from the build",
  async run(ctx) {
    const repetitions = ctx.full ? 3 : 1;
    const loadSeconds = ctx.full ? 10 : 3;
    const cluster: AdmissionClusterOptions = { namespaces: 1_000, nadsPerNamespace: 10 };
    const track = (child: ChildProcess): ChildProcess => ctx.cleanup.track(child);
    const work = await mkdtemp(join(tmpdir(), "nadguard-bench-memory-state-"));
    const production = await productionStart(work);
    ctx.log("memory: compiling the CLI (tsconfig.build.json) into a scratch folder");
    const build = await compiledCli();
    const rows: { label: string; samples: Sample[] }[] = [
      { label: "examples/cluster (4 NADs, 3 ns)", samples: [] },
      { label: "10,000 NADs / 1,000 ns (1,001 files)", samples: [] },
    ];
    try {
      const big = join(work, "state");
      await writeState(big, cluster);
      // The 10,000-NAD pod in its state; examples/cluster has no such namespace, so the same pod
      // without the annotation there (allowed, no NAD read): the load is the review path.
      const annotated = JSON.stringify(podReview(cluster, true));
      const plain = JSON.stringify(podReview(cluster, false));
      for (let r = 0; r < repetitions; r++) {
        ctx.log(`memory: repetition ${r + 1}/${repetitions}`);
        rows[0]!.samples.push(await measure(build.main, production, join(ROOT, "examples", "cluster"), plain, loadSeconds, track));
        rows[1]!.samples.push(await measure(build.main, production, big, annotated, loadSeconds, track));
      }
    } finally {
      await rm(build.dir, { recursive: true, force: true });
      await rm(work, { recursive: true, force: true });
    }
    const median = (values: number[]): number => summarize(values).median;
    const table: Table = {
      title: "nadguard webhook --state, compiled, environment of the Deployment",
      columns: ["state", "start → /readyz", "RSS when ready", "RSS after load", "reviews in the load (allowed)", "errors"],
      rows: rows.map(({ label, samples }) => [
        label,
        ms(median(samples.map((s) => s.readyMs))),
        bytes(median(samples.map((s) => s.rssReady))),
        bytes(median(samples.map((s) => s.rssAfterLoad))),
        count(median(samples.map((s) => s.reviews))),
        count(samples.reduce((sum, s) => sum + s.errors, 0)),
      ]),
      notes: [
        `node dist/src/cli/main.js webhook --state DIR --tls-cert FILE --tls-key FILE (the image's ENTRYPOINT, certificate files as the Deployment mounts them), ${envText(production.env)} (the environment of manifests/webhook/deployment.yaml); no --expose-gc, no forced collection: RSS as the container's memory limit sees it.`,
        `RSS from /proc/PID/status 1 s after /readyz first answered 200, and 1 s after ${loadSeconds} s of reviews (8 concurrent streams on one HTTP/2 session); median of ${repetitions} process(es) per row.`,
      ],
    };
    const bigRow = rows[1]!.samples;
    return {
      status: "done",
      tables: [table],
      method: ["The state directory holds the admission section's cluster (bench/synthetic.ts admissionObjects) as YAML, one file per namespace and one for the cluster-scoped objects."],
      reading: [
        `With 10,000 NADs the webhook held ${bytes(median(bigRow.map((s) => s.rssReady)))} RSS when ready and ${bytes(median(bigRow.map((s) => s.rssAfterLoad)))} after the load (target ≤ 100 MiB).`,
      ],
    };
  },
};
