// Benchmark 12 — a pod's sandbox through containerd's CRI on the node harness
// (test/support/containerd-node.ts): RunPodSandbox, and StopPodSandbox + RemovePodSandbox, when
// conf_dir's first conf is nadguard's (the shim, `nadguard node`, eth0 from the cluster network +
// 2 secondary bridges, the namespace isolated by a policy) against the same containerd with the
// cluster network's conflist alone (the same bridge + host-local, eth0 only). The two confs take
// turns in blocks: the bridge conflist is written as `0-bridge.conflist` (sorted before
// `00-nadguard.conflist`; containerd loads the first) and removed again, and each block starts
// with an untimed pod whose interfaces show which conf containerd used.
import { randomUUID } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pod } from "../src/api/objects.js";
import { podSandboxConfig } from "../src/cri/pod-sandbox-config.js";
import { ContainerdNode, type NodePaths, writeBridgeConflist } from "../test/support/containerd-node.js";
import { nadguardDirs, startNadguardNode } from "../test/support/nadguard-node.js";
import type { BenchContext, Section } from "./report.js";
import { skipped } from "./report.js";
import { msPair, pairedRatios, ratioPair, summarize } from "./stats.js";
import { available, must, sleep } from "./system.js";

const SHIM = join(dirname(fileURLToPath(import.meta.url)), "..", "bin", "nadguard-cni");
const NAMESPACE = "bench";
const BRIDGE_ONLY = "0-bridge.conflist";

type Mode = "nadguard" | "bridge";

function benchPod(name: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NAMESPACE, uid: randomUUID(), annotations: { "k8s.v1.cni.cncf.io/networks": "sec1,sec2" } },
    spec: { nodeName: "bench", containers: [{ name: "c", image: "example.invalid/c:1" }] },
    status: { phase: "Running" },
  };
}

/** The state directory: 2 secondary bridges, a policy isolating both, and `pods`; then nadguard node. */
async function writeConf(paths: NodePaths, pods: readonly Record<string, unknown>[]): Promise<() => Promise<void>> {
  const state = nadguardDirs(paths).state;
  await mkdir(state, { recursive: true });
  const hex = paths.prefix.slice(-7, -1);
  const nad = (i: number): unknown => ({
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name: `sec${i}`, namespace: NAMESPACE },
    spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: `sec${i}`, type: "bridge", bridge: `ngs${i}-${hex}`, ipam: { type: "host-local", dataDir: join(paths.dataDir, "ipam"), ranges: [[{ subnet: `198.18.${80 + i * 4}.0/22` }]] } }) },
  });
  const policy = { apiVersion: "k8s.cni.cncf.io/v1beta1", kind: "MultiNetworkPolicy", metadata: { name: "isolate", namespace: NAMESPACE, annotations: { "k8s.v1.cni.cncf.io/policy-for": "sec1,sec2" } }, spec: { podSelector: {}, policyTypes: ["Ingress"], ingress: [] } };
  const items = [{ apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } }, nad(1), nad(2), policy, ...pods];
  await writeFile(join(state, "bench.json"), JSON.stringify({ kind: "List", items }));
  await writeBridgeConflist(paths);
  return startNadguardNode(paths, "bench", { clusterNetwork: join(paths.confDir, "10-cluster.conflist") });
}

/** One sandbox: RunPodSandbox's time, its interfaces, then Stop + Remove's time. */
async function sandbox(node: ContainerdNode, object: Record<string, unknown>): Promise<{ run: number; stopRemove: number; links: string[] }> {
  const config = podSandboxConfig(Pod.parse(object), node.kubelet, 0);
  const started = performance.now();
  const id = await node.cri.runPodSandbox(config);
  const run = performance.now() - started;
  const { netnsPath } = await node.cri.sandboxDetails(id);
  const links = (await must("nsenter", [`--net=${netnsPath}`, "ip", "-o", "link", "show"])).stdout
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(": ")[1]!.split("@")[0]!)
    .sort();
  const stopping = performance.now();
  await node.cri.stopPodSandbox(id);
  await node.cri.removePodSandbox(id);
  return { run, stopRemove: performance.now() - stopping, links };
}

export const crinode: Section = {
  id: "crinode",
  title: "12. A pod sandbox through containerd's CRI: nadguard (eth0 + 2) vs the cluster network's conflist alone",
  async run(ctx: BenchContext) {
    if (process.getuid?.() !== 0) return skipped("needs root (containerd, network namespaces)");
    if (!(await available("containerd", ["--version"]))) return skipped("no containerd (Debian's containerd and runc)");
    const rounds = ctx.full ? 5 : 2;
    const block = ctx.full ? 5 : 3;
    // nadguard's pods (each block's, warm-up first, and spares for a reload that takes longer) are in the state directory.
    const pods = Array.from({ length: rounds * (block + 1) + 20 }, (_, i) => benchPod(`p-${i}`));
    const node = await ContainerdNode.start({ writeConf: (paths) => writeConf(paths, pods), plugins: { "nadguard-cni": SHIM }, criTimeoutMs: 60_000 });
    const times: Record<Mode, { run: number[]; stopRemove: number[] }> = { nadguard: { run: [], stopRemove: [] }, bridge: { run: [], stopRemove: [] } };
    try {
      await node.waitCondition("NetworkReady");
      const expected: Record<Mode, string> = { nadguard: "eth0,lo,net1,net2", bridge: "eth0,lo" };
      let next = 0;
      let other = 0;
      for (let round = 0; round < rounds; round++) {
        for (const mode of ["nadguard", "bridge"] as const) {
          const conf = join(node.paths.confDir, BRIDGE_ONLY);
          if (mode === "bridge") await writeBridgeConflist(node.paths, [], BRIDGE_ONLY);
          else await rm(conf, { force: true });
          // Until containerd has reloaded conf_dir: an untimed pod shows which conf it used.
          const podFor = (): Record<string, unknown> => (mode === "nadguard" ? pods[next++]! : benchPod(`q-${other++}`));
          for (let tries = 0; ; tries++) {
            const warm = await sandbox(node, podFor());
            if (warm.links.join(",") === expected[mode]) break;
            if (tries >= 20) throw new Error(`containerd still uses the other conf after ${tries} pods: ${warm.links.join(",")} for ${mode}`);
            await sleep(250);
          }
          ctx.log(`crinode: round ${round + 1}/${rounds}, ${mode}: ${block} sandboxes`);
          for (let i = 0; i < block; i++) {
            const measured = await sandbox(node, podFor());
            if (measured.links.join(",") !== expected[mode]) throw new Error(`a ${mode} sandbox has ${measured.links.join(",")}`);
            times[mode].run.push(measured.run);
            times[mode].stopRemove.push(measured.stopRemove);
          }
        }
      }
    } finally {
      const left = await node.stop();
      if (left.length > 0) ctx.log(`crinode: the node left ${left.join("; ")}`);
    }
    const n = times.nadguard.run.length;
    const row = (label: string, key: "run" | "stopRemove"): string[] => [label, msPair(summarize(times.nadguard[key])), msPair(summarize(times.bridge[key])), ratioPair(pairedRatios(times.nadguard[key], times.bridge[key]))];
    const rows = [row("RunPodSandbox", "run"), row("StopPodSandbox + RemovePodSandbox", "stopRemove")];
    return {
      status: "done",
      tables: [
        {
          title: "A pod sandbox through containerd 1.6's CRI: nadguard (eth0 + 2 secondaries) vs the cluster network's conflist (eth0)",
          columns: ["CRI calls", "nadguard", "bridge conflist alone", "ratio"],
          rows,
          notes: [`${n} sandboxes per column, in ${rounds} rounds of ${block} per conf taking turns; median [p99]; the ratio pairs the i-th sandbox of each column`],
        },
      ],
      method: [
        "One private containerd 1.6 (the node harness: its own socket, root, state, runc root, netns; the offline pause image) with the CRI's conf_dir holding the cluster network's conflist (bridge + host-local, dual stack) and `nadguard node`'s 00-nadguard.conflist; the daemon runs in the node's netns, the shim bin/nadguard-cni is in bin_dir.",
        "nadguard's pods have eth0 plus 2 secondary bridges (host-local), their namespace isolated by a policy, so each ADD also compiles and installs the pod's table; the comparison's pods get eth0 only from the same bridge plugin, when `0-bridge.conflist` (sorted first) is in conf_dir. Each block starts with an untimed pod showing which conf containerd loaded.",
        "RunPodSandbox is timed from the gRPC call to its answer (pause container, netns, CNI ADD); Stop + Remove from StopPodSandbox (CNI DEL) to RemovePodSandbox's answer (containerd's later DELs included).",
      ],
      reading: [
        `RunPodSandbox through nadguard (eth0 + 2) costs ${rows[0]![3]} the sandbox with eth0 alone: ${rows[0]![1]} against ${rows[0]![2]}.`,
        `Stop + Remove costs ${rows[1]![3]}: ${rows[1]![1]} against ${rows[1]![2]}.`,
      ],
    };
  },
};
