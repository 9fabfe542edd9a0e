// Kubernetes mode: the real `nadguard webhook --kubeconfig` process reading a cluster of N NADs and
// N pods through its informers (pods too, as with nads.protectInUse), served by the wire-faithful
// API server of the test suite on 127.0.0.1. Measured: time from start to /readyz, RSS once ready
// and after a stream of watch events, against the floor of the same process on an empty cluster.
// The target: with 10,000 NADs and 10,000 pods watched, ≤ 150 MiB RSS and ready within 10 s.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type FakeApiServer, startFakeApiServer } from "../test/kube/fake-apiserver.js";
import { type Production, type ReadyWebhook, productionStart, readyWebhook } from "./memory.js";
import type { Section } from "./report.js";
import { run } from "./system.js";
import { type Table, bytes, ms, ratio, size, summarize } from "./stats.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The CLI as the image runs it: compiled with tsconfig.build.json into a scratch folder (never into
 * the repository's dist/, which bin/nadguard.js would then prefer), node_modules linked beside it.
 */
export async function compiledCli(): Promise<{ main: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), "nadguard-bench-build-"));
  const built = await run(join(ROOT, "node_modules", ".bin", "tsc"), ["-p", join(ROOT, "tsconfig.build.json"), "--outDir", join(dir, "dist")], { timeoutMs: 180_000 });
  if (built.code !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`tsc -p tsconfig.build.json failed: ${built.stdout}${built.stderr}`.slice(0, 500));
  }
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"));
  await writeFile(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  return { main: join(dir, "dist", "src", "cli", "main.js"), dir };
}

interface Sample {
  readonly readyMs: number;
  readonly rssReady: number;
  readonly rssAfterEvents: number;
}

export function seed(fake: FakeApiServer, objects: number): void {
  const namespaces = Math.max(1, Math.round(objects / 10));
  const ns = (i: number): string => `tenant-${String(i % namespaces).padStart(5, "0")}`;
  fake.seed(
    "Namespace",
    Array.from({ length: namespaces }, (_, i) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns(i), labels: { team: `t${i % 7}` } } })),
  );
  fake.seed(
    "NetworkAttachmentDefinition",
    Array.from({ length: objects }, (_, i) => ({
      apiVersion: "k8s.cni.cncf.io/v1",
      kind: "NetworkAttachmentDefinition",
      metadata: { name: `net-${i}`, namespace: ns(i), annotations: i % 10 === 0 ? { "k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov" } : {} },
      spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: `net-${i}`, type: "macvlan", master: "eth1", ipam: { type: "whereabouts", range: "198.18.0.0/16" } }) },
    })),
  );
  fake.seed(
    "Pod",
    Array.from({ length: objects }, (_, i) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: `pod-${i}`,
        namespace: ns(i),
        labels: { app: `app-${i % 50}`, tier: i % 2 ? "web" : "db" },
        annotations: {
          "k8s.v1.cni.cncf.io/networks": `net-${i}`,
          "k8s.v1.cni.cncf.io/network-status": JSON.stringify([{ name: `${ns(i)}/net-${i}`, interface: "net1", ips: [`198.18.${(i >> 8) & 255}.${i & 255}`] }]),
          "kubectl.kubernetes.io/last-applied-configuration": "x".repeat(600),
        },
        managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:metadata": { "f:labels": {} } } }],
      },
      spec: {
        nodeName: `node-${i % 20}`,
        containers: [{ name: "app", image: "registry.invalid/app:1", ports: [{ name: "http", containerPort: 8080 }], env: [{ name: "A", value: "b" }] }],
      },
      status: { phase: "Running", podIP: `10.0.${(i >> 8) & 255}.${i & 255}`, conditions: [{ type: "Ready", status: "True" }] },
    })),
  );
}

export function rssOf(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, "utf8").then((text) => Number(/VmRSS:\s+(\d+) kB/.exec(text)?.[1] ?? Number.NaN) * 1024);
}

export function readyz(port: number, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/readyz", ca, timeout: 1000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

async function measure(main: string, production: Production, objects: number, events: number, track: (child: ChildProcess) => ChildProcess): Promise<Sample> {
  const fake = await startFakeApiServer({});
  const dir = await mkdtemp(join(tmpdir(), "nadguard-bench-kube-"));
  let webhook: ReadyWebhook | undefined;
  try {
    if (objects > 0) seed(fake, objects);
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(kubeconfig, fake.kubeConfig().exportConfig());
    await writeFile(join(dir, "config.yaml"), "nads:\n  protectInUse: true\n");
    webhook = await readyWebhook(main, production, ["--kubeconfig", kubeconfig, "--config", join(dir, "config.yaml")], track, 120_000);
    const rssReady = await rssOf(webhook.child.pid!);
    // Watch events: relabel pods through the API, as a busy cluster would.
    for (let i = 0; i < events; i++) {
      const ns = `tenant-${String(i % Math.max(1, Math.round(objects / 10))).padStart(5, "0")}`;
      fake.seed("Pod", [{ apiVersion: "v1", kind: "Pod", metadata: { name: `churn-${i}`, namespace: ns, labels: { app: "churn" } }, spec: { containers: [{ name: "c" }] } }]);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    return { readyMs: webhook.readyMs, rssReady, rssAfterEvents: await rssOf(webhook.child.pid!) };
  } finally {
    await webhook?.stop();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export const kube: Section = {
  id: "kube",
  title: "6. Kubernetes mode: informer memory and time to ready",
  async run(ctx) {
    const sizes = ctx.full ? [0, 1_000, 10_000] : [0, 1_000];
    const repetitions = ctx.full ? 3 : 1;
    const track = (child: ChildProcess): ChildProcess => ctx.cleanup.track(child);
    const results = new Map<number, Sample[]>();
    ctx.log("kube: compiling the CLI (tsconfig.build.json) into a scratch folder");
    const build = await compiledCli();
    const production = await productionStart(build.dir);
    try {
      for (let r = 0; r < repetitions; r++) {
        for (const objects of sizes) {
          ctx.log(`kube: ${objects} NADs + ${objects} pods, repetition ${r + 1}/${repetitions}`);
          const sample = await measure(build.main, production, objects, ctx.full ? 2_000 : 200, track);
          results.set(objects, [...(results.get(objects) ?? []), sample]);
        }
      }
    } finally {
      await rm(build.dir, { recursive: true, force: true });
    }
    const floor = summarize((results.get(0) ?? []).map((s) => s.rssReady)).median;
    const rows = sizes.map((objects) => {
      const samples = results.get(objects) ?? [];
      const ready = summarize(samples.map((s) => s.readyMs));
      const rss = summarize(samples.map((s) => s.rssReady)).median;
      const after = summarize(samples.map((s) => s.rssAfterEvents)).median;
      return [
        objects === 0 ? "empty cluster (floor)" : `${size(objects)} NADs + ${size(objects)} pods`,
        `${ms(ready.median)} (${ms(ready.p99)})`,
        bytes(rss),
        bytes(after),
        objects === 0 ? "1×" : ratio(rss / floor),
      ];
    });
    const tables: Table[] = [
      {
        title: "nadguard webhook --kubeconfig against the in-suite API server",
        columns: ["cluster", "start → /readyz, median (p99)", "RSS when ready", "RSS after watch events", "RSS / floor"],
        rows,
        notes: [
          "One process per row and repetition, the CLI compiled as the image runs it (node dist/src/cli/main.js), with the NODE_OPTIONS of manifests/webhook/deployment.yaml and a serving certificate from files (--tls-cert/--tls-key, as the Deployment); start → /readyz includes starting Node, the TLS setup and every informer's first list.",
          `Watch events: ${ctx.full ? "2,000" : "200"} new pods after ready; RSS read from /proc/PID/status 0.5 s later.`,
          "Pods carry managedFields, a last-applied annotation and status conditions, which the informers strip before caching.",
        ],
      },
    ];
    const biggest = sizes[sizes.length - 1]!;
    const big = results.get(biggest) ?? [];
    const reading = [
      `With ${size(biggest)} NADs and ${size(biggest)} pods the webhook was ready ${ms(summarize(big.map((s) => s.readyMs)).median)} after its start and held ${bytes(summarize(big.map((s) => s.rssAfterEvents)).median)} RSS after the watch events (target: ≤ 150 MiB (≤ 200 MB before), ready within 10 s of the lists), against ${bytes(floor)} for the same process on an empty cluster.`,
    ];
    return {
      status: "done",
      tables,
      method: ["The API server is test/kube/fake-apiserver.ts (list with paging, chunked watch streams, bookmarks), in the bench process, on 127.0.0.1; objects are seeded directly into it."],
      reading,
    };
  },
};
