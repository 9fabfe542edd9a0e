// Benchmark 10 — the CNI meta-plugin: what a pod's ADD and DEL cost through
// the shim `nadguard-cni` and the daemon `nadguard node` against the floor, the same delegate
// plugins run directly one after another as a runtime would exec them, for eth0 + 1, 2 and 4
// secondary networks (bridge + host-local each, the pods' namespace isolated by a policy, so the
// meta-plugin's ADD also compiles and installs the pod's table); and the shim's start-up against
// `node -e ''`. Pairs are measured in the same repetition, on fresh pod network namespaces; the
// daemon and the plugins run in the bench's own "switch" netns, addresses from 198.18.0.0/15.
import { type ChildProcess, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { daemonReady } from "../test/support/nadguard-node.js";
import type { BenchContext, Section } from "./report.js";
import { skipped } from "./report.js";
import { type Table, bytes, ms, msPair, pairedRatios, ratio, ratioPair, summarize } from "./stats.js";
import { available, must, run, sleep } from "./system.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PLUGINS = "/usr/lib/cni";
/** The shim as a user installs it: bin/nadguard-cni copied alone into the CNI bin dir (so run as CommonJS, outside the repository's package.json). */
const SHIM_SOURCE = join(ROOT, "bin", "nadguard-cni");

interface Lab {
  readonly dir: string;
  readonly sw: string;
  readonly sock: string;
  readonly netd: string;
  readonly ipam: string;
}

const hostLocal = (lab: Lab, subnet: string): unknown => ({ type: "host-local", dataDir: lab.ipam, ranges: [[{ subnet }]] });
const clusterConf = (lab: Lab): Record<string, unknown> => ({ cniVersion: "1.0.0", name: "cluster", type: "bridge", bridge: "bcbr0", ipam: hostLocal(lab, "198.18.80.0/22") });
const secondaryConf = (lab: Lab, i: number): Record<string, unknown> => ({ cniVersion: "1.0.0", name: `sec${i}`, type: "bridge", bridge: `bcsec${i}`, ipam: hostLocal(lab, `198.18.${84 + i * 4}.0/22`) });

function cniEnv(command: string, containerId: string, netns: string, ifname: string, pod: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: netns,
    CNI_IFNAME: ifname,
    CNI_PATH: PLUGINS,
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
  };
}

/** Runs a process with `env` and stdin; its wall time, or throws with its output when it fails. */
function timed(command: string, args: readonly string[], env: NodeJS.ProcessEnv, input: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => (code === 0 ? resolve(performance.now() - started) : reject(new Error(`${command} ${args.join(" ")} exited ${code}: ${out.slice(0, 500)}`))));
    child.stdin.end(input);
  });
}

async function startDaemon(ctx: BenchContext, lab: Lab, state: string, daemonConfig: string): Promise<ChildProcess> {
  const child = ctx.cleanup.track(spawn("ip", ["netns", "exec", lab.sw, process.execPath, join(ROOT, "bin", "nadguard.js"), "node", "--state", state, "--node", "bench", "--daemon-config", daemonConfig, "--log-level", "warn"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] }));
  let output = "";
  child.stdout?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  child.stderr?.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4000)));
  for (let i = 0; i < 600; i++) {
    if (await daemonReady(lab.sock)) return child;
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`nadguard node did not become ready: ${output}`);
}

async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb === undefined ? Number.NaN : Number(kb) * 1024;
}

export const cni: Section = {
  id: "cni",
  title: "10. CNI meta-plugin: ADD and DEL through the shim and the daemon vs the delegates run directly",
  async run(ctx: BenchContext) {
    if (process.getuid?.() !== 0) return skipped("needs root (network namespaces)");
    if (!(await available("test", ["-x", join(PLUGINS, "bridge")]))) return skipped(`no CNI plugins in ${PLUGINS} (Debian containernetworking-plugins)`);
    const reps = ctx.full ? 40 : 8;
    const secondaries = [1, 2, 4];
    const dir = await mkdtemp(join(tmpdir(), "nadguard-bench-cni-"));
    const lab: Lab = { dir, sw: `${ctx.cleanup.prefix}cnisw`, sock: join(dir, "sock", "nadguard.sock"), netd: join(dir, "net.d"), ipam: join(dir, "ipam") };
    try {
      await must("ip", ["netns", "add", lab.sw]);
      await mkdir(lab.netd, { recursive: true });
      await mkdir(join(dir, "bin"));
      const SHIM = join(dir, "bin", "nadguard-cni");
      await copyFile(SHIM_SOURCE, SHIM);
      await writeFile(join(lab.netd, "10-cluster.conf"), JSON.stringify(clusterConf(lab)));
      const state = join(dir, "state");
      await mkdir(state);
      const objects: unknown[] = [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "bench" } },
        { apiVersion: "k8s.cni.cncf.io/v1beta1", kind: "MultiNetworkPolicy", metadata: { name: "isolate", namespace: "bench", annotations: { "k8s.v1.cni.cncf.io/policy-for": "sec1,sec2,sec3,sec4" } }, spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [] } },
      ];
      for (const i of [1, 2, 3, 4]) objects.push({ apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition", metadata: { name: `sec${i}`, namespace: "bench" }, spec: { config: JSON.stringify(secondaryConf(lab, i)) } });
      for (const n of secondaries) {
        for (let r = 0; r < reps; r++) {
          const networks = Array.from({ length: n }, (_, i) => `sec${i + 1}`).join(",");
          objects.push({ apiVersion: "v1", kind: "Pod", metadata: { name: `p${n}-${r}`, namespace: "bench", annotations: { "k8s.v1.cni.cncf.io/networks": networks } }, spec: { nodeName: "bench", containers: [{ name: "c", image: "i" }] }, status: { phase: "Running" } });
        }
      }
      const burst = ctx.full ? 50 : 12;
      for (let b = 0; b < burst; b++) {
        objects.push({ apiVersion: "v1", kind: "Pod", metadata: { name: `b-${b}`, namespace: "bench", annotations: { "k8s.v1.cni.cncf.io/networks": "sec1" } }, spec: { nodeName: "bench", containers: [{ name: "c", image: "i" }] }, status: { phase: "Running" } });
      }
      await writeFile(join(state, "bench.json"), JSON.stringify({ kind: "List", items: objects }));
      const daemonConfig = join(dir, "daemon.json");
      await writeFile(daemonConfig, JSON.stringify({ socketDir: dirname(lab.sock), cniConfigDir: lab.netd, binDir: join(dir, "bin"), cniDir: join(dir, "cni") }));
      const daemon = await startDaemon(ctx, lab, state, daemonConfig);
      const conf = JSON.parse(await readFile(join(lab.netd, "00-nadguard.conflist"), "utf8")) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
      const shimStdin = JSON.stringify({ ...conf.plugins[0], name: conf.name, cniVersion: conf.cniVersion });

      const rows: string[][] = [];
      const addMedians: { n: number; meta: number; direct: number }[] = [];
      for (const n of secondaries) {
        const meta: { add: number[]; del: number[] } = { add: [], del: [] };
        const direct: { add: number[]; del: number[] } = { add: [], del: [] };
        ctx.log(`cni: eth0 + ${n}: ${reps} repetitions`);
        for (let r = 0; r < reps; r++) {
          const pod = `p${n}-${r}`;
          const metaNs = `${ctx.cleanup.prefix}m${n}-${r}`;
          const directNs = `${ctx.cleanup.prefix}d${n}-${r}`;
          await must("ip", ["netns", "add", metaNs]);
          await must("ip", ["netns", "add", directNs]);
          // Through the shim and the daemon, as containerd runs it.
          meta.add.push(await timed(process.execPath, [SHIM], cniEnv("ADD", `m-${pod}`, `/run/netns/${metaNs}`, "eth0", pod), shimStdin));
          meta.del.push(await timed(process.execPath, [SHIM], cniEnv("DEL", `m-${pod}`, `/run/netns/${metaNs}`, "eth0", pod), shimStdin));
          // The same delegates, exec'ed one after another in the switch netns (nsenter is part of this floor).
          const delegates: [Record<string, unknown>, string][] = [[clusterConf(lab), "eth0"], ...Array.from({ length: n }, (_, i): [Record<string, unknown>, string] => [secondaryConf(lab, i + 1), `net${i + 1}`])];
          let add = 0;
          for (const [config, ifname] of delegates) add += await timed("nsenter", [`--net=/run/netns/${lab.sw}`, join(PLUGINS, "bridge")], cniEnv("ADD", `d-${pod}`, `/run/netns/${directNs}`, ifname, pod), JSON.stringify(config));
          let del = 0;
          for (const [config, ifname] of [...delegates].reverse()) del += await timed("nsenter", [`--net=/run/netns/${lab.sw}`, join(PLUGINS, "bridge")], cniEnv("DEL", `d-${pod}`, `/run/netns/${directNs}`, ifname, pod), JSON.stringify(config));
          direct.add.push(add);
          direct.del.push(del);
          await run("ip", ["netns", "del", metaNs]);
          await run("ip", ["netns", "del", directNs]);
        }
        addMedians.push({ n, meta: summarize(meta.add).median, direct: summarize(direct.add).median });
        rows.push([`eth0 + ${n}`, "ADD", msPair(summarize(meta.add)), msPair(summarize(direct.add)), ratioPair(pairedRatios(meta.add, direct.add))]);
        rows.push([`eth0 + ${n}`, "DEL", msPair(summarize(meta.del)), msPair(summarize(direct.del)), ratioPair(pairedRatios(meta.del, direct.del))]);
      }
      // A burst: `burst` pods (eth0 + 1) attached 4 at a time, then deleted 4 at a time.
      ctx.log(`cni: ${burst} pods, 4 at a time`);
      const burstNs = Array.from({ length: burst }, (_, b) => `${ctx.cleanup.prefix}b${b}`);
      for (const ns of burstNs) await must("ip", ["netns", "add", ns]);
      const inPool = async (fn: (b: number) => Promise<number>): Promise<{ times: number[]; errors: string[]; wall: number }> => {
        const times: number[] = [];
        const errors: string[] = [];
        let next = 0;
        const started = performance.now();
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (next < burst) {
              const b = next++;
              try {
                times.push(await fn(b));
              } catch (error) {
                errors.push((error as Error).message);
              }
            }
          }),
        );
        return { times, errors, wall: performance.now() - started };
      };
      const burstAdd = await inPool((b) => timed(process.execPath, [SHIM], cniEnv("ADD", `b-${b}`, `/run/netns/${burstNs[b]}`, "eth0", `b-${b}`), shimStdin));
      const rssAfterBurst = await rssOf(daemon.pid!);
      const burstDel = await inPool((b) => timed(process.execPath, [SHIM], cniEnv("DEL", `b-${b}`, `/run/netns/${burstNs[b]}`, "eth0", `b-${b}`), shimStdin));
      for (const ns of burstNs) await run("ip", ["netns", "del", ns]);
      const rss = await rssOf(daemon.pid!);
      await ctx.cleanup.stop(daemon);

      const startup: { shim: number[]; node: number[] } = { shim: [], node: [] };
      for (let r = 0; r < reps * 2; r++) {
        startup.shim.push(await timed(process.execPath, [SHIM], { PATH: process.env.PATH, CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.0.0"}'));
        startup.node.push(await timed(process.execPath, ["-e", ""], { PATH: process.env.PATH }, ""));
      }
      const tables: Table[] = [
        {
          title: "Pod ADD and DEL: through shim + daemon vs the same delegates exec'ed directly",
          columns: ["pod", "command", "shim + daemon", "delegates directly", "ratio"],
          rows,
          notes: [`${reps} pods per row; median [p99]; the ratio is taken pod by pod`],
        },
        {
          title: `A burst: ${burst} pods (eth0 + 1) attached through the shim 4 at a time, then deleted 4 at a time`,
          columns: ["command", "per pod", "whole burst", "errors", "daemon RSS after"],
          rows: [
            ["ADD", msPair(summarize(burstAdd.times)), ms(burstAdd.wall), String(burstAdd.errors.length), bytes(rssAfterBurst)],
            ["DEL", msPair(summarize(burstDel.times)), ms(burstDel.wall), String(burstDel.errors.length), bytes(rss)],
          ],
          notes: burstAdd.errors.concat(burstDel.errors).slice(0, 3),
        },
        {
          title: "Shim start-up: nadguard-cni answering VERSION vs node -e ''",
          columns: ["process", "wall time", "ratio"],
          rows: [
            ["nadguard-cni VERSION", msPair(summarize(startup.shim)), ratioPair(pairedRatios(startup.shim, startup.node))],
            ["node -e ''", msPair(summarize(startup.node)), ""],
          ],
        },
      ];
      return {
        status: "done",
        tables,
        method: [
          "The daemon (`nadguard node --state`, a policy isolating both secondary networks, so ADD also compiles and installs the pod's table) runs in the bench's switch netns; the shim is run as containerd runs it (`node bin/nadguard-cni`, CNI_* environment, the daemon's conf on stdin) on a fresh pod netns each time.",
          "The floor runs the same delegate configs (bridge + host-local for eth0 and each secondary) with `nsenter --net=<switch> /usr/lib/cni/bridge`, one after another, on another fresh netns of the same repetition.",
          "Shim start-up: the shim's VERSION (answered without the daemon) against `node -e ''`, alternated.",
        ],
        reading: [
          `Through the meta-plugin an ADD of eth0 + 1 costs ${rows[0]?.[4] ?? "–"} times the delegates alone; the extra is the shim's process start and its one request (a daemon that is not ready answers it 503 and the shim waits for /readyz only then), the daemon's decision and plan, the delegate cache's write, the pod's table install (started once the cluster network's plugin has started, awaited before the first secondary delegate), each delegate's result cache written beside the next delegate, and network-status (neither fsync'ed).`,
          ...addMedians.map(
            (m) =>
              `Against the target for eth0 + ${m.n} (ADD ≤ 1.25× the direct delegates plus the shim's start): median ADD ${ms(m.meta)} vs ${ms(m.direct + summarize(startup.shim).median)} = ${ratio(m.meta / (m.direct + summarize(startup.shim).median))}.`,
          ),
          `The shim starts in ${msPair(summarize(startup.shim))} against ${msPair(summarize(startup.node))} for an empty node process (ratio ${ratioPair(pairedRatios(startup.shim, startup.node))}; target: 1.5×).`,
          `${burst} pods attached 4 at a time: ${burstAdd.errors.length} errors, ${ms(burstAdd.wall)} in all; the daemon held ${bytes(rssAfterBurst)} RSS after the burst (target: 150 MB), ${bytes(rss)} after every DEL. The daemon runs from dist/ when it is built and newer than the sources, else through tsx, whose compiler adds to its memory.`,
        ],
      };
    } finally {
      await run("ip", ["netns", "del", lab.sw]);
      await rm(dir, { recursive: true, force: true });
    }
  },
};
