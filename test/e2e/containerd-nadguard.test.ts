// nadguard's meta-plugin driven by containerd's CRI, as on a node (root): the node harness runs a
// private containerd 1.6 whose conf_dir is written by `nadguard node` (started as a child process
// inside the node's netns, stopped by its PID in the conf writer's cleanup), with the shim
// bin/nadguard-cni in its bin_dir beside the reference plugins. The state directory holds what the
// API server would: namespaces, NADs (bridge and macvlan with host-local, 198.18.0.0/15 and
// fd00::/8), pods admitted by `nadguard admit`, and a MultiNetworkPolicy. What is asserted is what
// a user of the node sees: the sandbox's interfaces and addresses (ip -n), its nft table read back,
// network-status, probes between sandboxes (the e2e agents), the CRI's error for a forbidden
// network and for a failing delegate, and nothing left (leases, veths, caches, status files) after
// containerd's DEL storm, after containerd kills the shim at its caller's deadline, when the
// daemon was stopped (ADD fails naming the socket) and restarted, and when it was killed with
// SIGKILL in the middle of an ADD and restarted.
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Pod } from "../../src/api/objects.js";
import { useContainerdNode } from "../support/containerd-node-fixture.js";
import { bridgeNetwork, type ConfCleanup, type ContainerdNode, LIBCNI_RESULTS_DIR, type NodePaths, writeBridgeConflist } from "../support/containerd-node.js";
import { type NadguardNodeStop, nadguardDirs, startNadguardNode } from "../support/nadguard-node.js";
import { Agent } from "./agent-client.js";
import { kernelLinkSupport } from "./lab.js";
import { SHIM_SOURCE } from "./meta-plugin.js";
import { must, nadguard, sleep } from "./sys.js";

const IS_ROOT = process.getuid?.() === 0;
const NODE = "node-1";
const NAMESPACE = "team-a";
const PORT = 8080;
/** ipvlan may be missing from the kernel (a module): the pod then has bridge and macvlan only. */
const IPVLAN = IS_ROOT ? await kernelLinkSupport("ipvlan") : { available: false, reason: "not root" };
if (IS_ROOT && !IPVLAN.available) console.warn(`\n!! containerd-nadguard: no ipvlan network (${IPVLAN.reason}) !!\n`);

/** The networks of one node: subnets from the run's prefix (apart from the cluster network's 198.19.x), links inside the node's netns. */
function networksOf(paths: NodePaths): { blue: { bridge: string; v4: string; v6: string }; green: { v4: string; v6: string }; red: { v4: string; v6: string }; slow: { bridge: string; v4: string } } {
  const hex = /^ng-\d+-([0-9a-f]{6})-$/.exec(paths.prefix)?.[1] ?? "000000";
  const third = parseInt(hex.slice(2, 4), 16) % 64;
  return {
    blue: { bridge: `ngbl-${hex}`, v4: `198.18.${third}.0/24`, v6: `fd00:b1:${hex.slice(0, 4)}::/64` },
    green: { v4: `198.18.${third + 64}.0/24`, v6: `fd00:9e:${hex.slice(0, 4)}::/64` },
    red: { v4: `198.18.${third + 128}.0/24`, v6: `fd00:ed:${hex.slice(0, 4)}::/64` },
    slow: { bridge: `ngsl-${hex}`, v4: `198.18.${third + 192}.0/24` },
  };
}

function pod(name: string, app: string, networks: string): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NAMESPACE, uid: randomUUID(), labels: { app }, annotations: { "k8s.v1.cni.cncf.io/networks": networks } },
    spec: { nodeName: NODE, serviceAccountName: "default", containers: [{ name: "app", image: "example.invalid/app:1" }] },
    // As kubelet reports it once the sandbox runs: the enforcer admits running peers only.
    status: { phase: "Running" },
  };
}

const PODS = {
  web: pod("web", "web", IPVLAN.available ? "blue,green,red" : "blue,green"),
  client: pod("client", "client", "blue"),
  other: pod("other", "other", "blue"),
  thief: pod("thief", "thief", "team-b/private"),
  slow: pod("slowpoke", "slowpoke", "slow"),
  killed: pod("killed", "killed", "slow"),
  storm: pod("storm", "storm", "blue,green"),
  unlucky: pod("unlucky", "unlucky", "blue,broken"),
  keeper: pod("keeper", "keeper", "blue"),
  late: pod("late", "late", "blue"),
  ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`batch${i}`, pod(`batch-${i}`, "batch", "blue,green")])),
};

/** How long the shim waits for a daemon that is not ready: containerd passes its environment (this process's) on to the shim. */
const READY_TIMEOUT_MS = 3000;
process.env.NADGUARD_CNI_READY_TIMEOUT_MS = String(READY_TIMEOUT_MS);

/** The stops of every `nadguard node` started on the node (the first by the conf writer, then restarts); the harness's cleanup calls them all. */
const daemons: NadguardNodeStop[] = [];

/**
 * The conf writer: the state directory, the cluster network (reference bridge), a slow bridge
 * plugin, and `nadguard node` started in the node's netns; returns the daemon's stop (by PID).
 */
async function writeNadguard(paths: NodePaths): Promise<ConfCleanup> {
  const dirs = nadguardDirs(paths);
  const nets = networksOf(paths);
  const ipam = bridgeNetwork(paths).ipamDir;
  await mkdir(dirs.state, { recursive: true });
  // macvlan's parent: a veth pair inside the node's netns (never the machine's links).
  await must("ip", ["-n", paths.netns, "link", "add", "mvp", "type", "veth", "peer", "name", "mvq"]);
  await must("ip", ["-n", paths.netns, "link", "set", "mvp", "up"]);
  await must("ip", ["-n", paths.netns, "link", "add", "ivp", "type", "veth", "peer", "name", "ivq"]);
  await must("ip", ["-n", paths.netns, "link", "set", "ivp", "up"]);
  // A delegate whose ADD takes 4 s (a slow IPAM server, a busy node): bridge after a sleep.
  await writeFile(join(paths.binDir, "slowbridge"), `#!/bin/sh\n[ "$CNI_COMMAND" = ADD ] && sleep 4\nexec /usr/lib/cni/bridge "$@"\n`, { mode: 0o755 });
  const hostLocal = (...subnets: string[]): unknown => ({ type: "host-local", dataDir: ipam, ranges: subnets.map((subnet) => [{ subnet }]) });
  const nad = (name: string, namespace: string, config: Record<string, unknown>): unknown => ({
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name, namespace },
    spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: `${paths.prefix}${name}`, ...config }) },
  });
  const objects = [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "team-b" } },
    nad("blue", NAMESPACE, { type: "bridge", bridge: nets.blue.bridge, ipam: hostLocal(nets.blue.v4, nets.blue.v6) }),
    nad("green", NAMESPACE, { type: "macvlan", master: "mvp", mode: "bridge", ipam: hostLocal(nets.green.v4, nets.green.v6) }),
    nad("broken", NAMESPACE, { type: "no-such-plugin" }),
    nad("red", NAMESPACE, { type: "ipvlan", master: "ivp", mode: "l2", ipam: hostLocal(nets.red.v4, nets.red.v6) }),
    nad("slow", NAMESPACE, { type: "slowbridge", bridge: nets.slow.bridge, ipam: hostLocal(nets.slow.v4) }),
    nad("private", "team-b", { type: "bridge", bridge: `ngpr-${paths.prefix.slice(-7, -1)}`, ipam: hostLocal("198.19.254.0/24") }),
    {
      apiVersion: "k8s.cni.cncf.io/v1beta1",
      kind: "MultiNetworkPolicy",
      metadata: { name: "web-from-client", namespace: NAMESPACE, annotations: { "k8s.v1.cni.cncf.io/policy-for": "blue" } },
      spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }] },
    },
    ...Object.values(PODS),
  ];
  await writeFile(join(dirs.state, "cluster.json"), JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }, null, 2));
  await writeBridgeConflist(paths);
  daemons.push(await startNadguardNode(paths, NODE));
  return async () => {
    for (const stop of daemons) await stop();
  };
}

interface AddrInfo {
  readonly ifname: string;
  readonly address?: string;
  readonly addr_info: { family: string; local: string; prefixlen: number; scope: string }[];
}

/** The sandbox's interfaces with their global addresses, read back from the kernel. */
async function interfaces(netnsPath: string): Promise<Record<string, string[]>> {
  const links = JSON.parse(await must("nsenter", [`--net=${netnsPath}`, "ip", "-j", "addr", "show"])) as AddrInfo[];
  return Object.fromEntries(links.map((l) => [l.ifname, l.addr_info.filter((a) => a.scope === "global").map((a) => `${a.local}/${a.prefixlen}`)]));
}

/** Every host-local lease of the node (all networks), as `<network>/<address>`. */
async function leases(paths: NodePaths): Promise<string[]> {
  const ipam = bridgeNetwork(paths).ipamDir;
  const found: string[] = [];
  for (const net of await readdir(ipam).catch(() => [] as string[])) {
    for (const file of await readdir(join(ipam, net)).catch(() => [] as string[])) if (/^[0-9.]+$|:/.test(file)) found.push(`${net}/${file}`);
  }
  return found.sort();
}

/** The veths on the node's bridges (the host side of each pod's eth0 and bridge attachments). */
async function veths(paths: NodePaths): Promise<string[]> {
  return (JSON.parse(await must("ip", ["-n", paths.netns, "-j", "link", "show", "type", "veth"])) as { ifname: string }[]).map((l) => l.ifname).filter((n) => !["mvp", "mvq", "ivp", "ivq"].includes(n)).sort();
}

/** nadguard's delegate cache and result cache, and go-cni's cache entries of `id`. */
async function caches(paths: NodePaths, id?: string): Promise<string[]> {
  const cni = nadguardDirs(paths).cni;
  const own = (await readdir(cni).catch(() => [] as string[])).filter((f) => f !== "results");
  const results = (await readdir(join(cni, "results")).catch(() => [] as string[])).map((f) => `results/${f}`);
  const libcni = id ? (await readdir(LIBCNI_RESULTS_DIR).catch(() => [] as string[])).filter((f) => f.includes(id)).map((f) => `libcni/${f}`) : [];
  return [...own, ...results, ...libcni];
}

/** What pods leave on the node: host-local leases, veths, nadguard's and go-cni's caches. */
async function traces(paths: NodePaths, id?: string): Promise<{ leases: string[]; veths: string[]; caches: string[] }> {
  return { leases: await leases(paths), veths: await veths(paths), caches: await caches(paths, id) };
}

const statusFile = (paths: NodePaths, name: string): string => join(nadguardDirs(paths).state, ".nadguard", "network-status", NAMESPACE, `${name}.json`);

/** The pod from the state directory, as kubelet gets it from the API server. */
const podOf = (object: Record<string, unknown>): Pod => Pod.parse(object);

/** `nadguard admit` of the pod as its service account creates it: exit code and the response's message. */
async function admit(paths: NodePaths, object: Record<string, unknown>): Promise<{ code: number; message?: string }> {
  const file = join(paths.dataDir, `admit-${(object.metadata as { name: string }).name}.json`);
  await writeFile(file, JSON.stringify(object));
  const account = ["--as", `system:serviceaccount:${NAMESPACE}:default`, "--as-group", "system:serviceaccounts", "--as-group", `system:serviceaccounts:${NAMESPACE}`];
  const admitted = await nadguard(["admit", file, "--state", nadguardDirs(paths).state, ...account, "--output", "json"]);
  const response = JSON.parse(admitted.stdout) as { response: { status?: { message?: string } } };
  return { code: admitted.code, ...(response.response.status?.message !== undefined && { message: response.response.status.message }) };
}

/** RunPodSandbox of a pod expected to fail: the CRI's error (undefined when the sandbox was made). */
function runPodError(n: ContainerdNode, object: Record<string, unknown>, options: { timeoutMs?: number } = {}): Promise<Error | undefined> {
  return n.runPod(podOf(object), options).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
}

/** After a refused RunPodSandbox: no sandbox of the pod, the node's traces as `before`, no network-status. */
async function expectNothingOf(n: ContainerdNode, name: string, before: Awaited<ReturnType<typeof traces>>): Promise<void> {
  expect((await n.cri.listPodSandbox()).filter((s) => s.metadata?.name === name)).toEqual([]);
  expect(await traces(n.paths)).toEqual(before);
  expect(existsSync(statusFile(n.paths, name))).toBe(false);
}

describe.skipIf(!IS_ROOT)("nadguard's meta-plugin under containerd's CRI", () => {
  const node = useContainerdNode({ writeConf: writeNadguard, plugins: { "nadguard-cni": SHIM_SOURCE } }, (n) => n.waitCondition("NetworkReady"));

  it("containerd calls nadguard: 00-nadguard.conflist is the conf it loaded and the shim is in its bin_dir", async () => {
    const n = node();
    const conflist = JSON.parse(await readFile(join(n.paths.confDir, "00-nadguard.conflist"), "utf8")) as { name: string; plugins: { type: string; clusterNetwork: string }[] };
    expect(conflist.plugins.map((p) => [p.type, p.clusterNetwork])).toEqual([["nadguard-cni", join(n.paths.confDir, "10-cluster.conflist")]]);
    expect(existsSync(join(n.paths.binDir, "nadguard-cni"))).toBe(true);
  });

  it("an admitted pod's sandbox gets eth0, net1 (bridge), net2 (macvlan) and net3 (ipvlan, when the kernel has it), dual stack, its table and network-status; the policy lets client reach web on net1 and not other", async () => {
    const n = node();
    expect(await admit(n.paths, PODS.web)).toEqual({ code: 0 });
    const nets = networksOf(n.paths);
    const web = await n.runPod(podOf(PODS.web));
    const client = await n.runPod(podOf(PODS.client));
    const other = await n.runPod(podOf(PODS.other));
    const agents: Agent[] = [];
    try {
      expect(web.status.state).toBe("SANDBOX_READY");
      const links = await interfaces(web.netnsPath);
      expect(Object.keys(links).sort()).toEqual(IPVLAN.available ? ["eth0", "lo", "net1", "net2", "net3"] : ["eth0", "lo", "net1", "net2"]);
      const prefixOf = (cidr: string): string => cidr.replace(/\.0\/24$|::\/64$/, "");
      const cluster = bridgeNetwork(n.paths);
      expect(links["eth0"]!.map((a) => a.startsWith(prefixOf(cluster.subnet)) || a.startsWith(prefixOf(cluster.subnet6)))).toEqual([true, true]);
      expect(links["net1"]!.map((a) => a.startsWith(`${prefixOf(nets.blue.v4)}.`) || a.startsWith(`${prefixOf(nets.blue.v6)}::`))).toEqual([true, true]);
      expect(links["net2"]!.map((a) => a.startsWith(`${prefixOf(nets.green.v4)}.`) || a.startsWith(`${prefixOf(nets.green.v6)}::`))).toEqual([true, true]);
      if (IPVLAN.available) expect(links["net3"]!.map((a) => a.startsWith(`${prefixOf(nets.red.v4)}.`) || a.startsWith(`${prefixOf(nets.red.v6)}::`))).toEqual([true, true]);
      // The CRI reports eth0's addresses (the cluster network's result), nothing of net1/net2.
      expect(web.status.network?.ip).toBe(links["eth0"]![0]!.split("/")[0]);

      const table = await must("nsenter", [`--net=${web.netnsPath}`, "nft", "list", "table", "inet", "nadguard"]);
      expect(table).toMatch(/set ingress_isolated \{[^}]*elements = \{ "net1" \}/);

      const status = JSON.parse(await readFile(statusFile(n.paths, "web"), "utf8")) as { name: string; interface: string; ips: string[] }[];
      expect(status.map((s) => [s.name, s.interface, s.ips])).toEqual([
        [cluster.name, "eth0", links["eth0"]!.map((a) => a.split("/")[0])],
        [`${NAMESPACE}/blue`, "net1", links["net1"]!.map((a) => a.split("/")[0])],
        [`${NAMESPACE}/green`, "net2", links["net2"]!.map((a) => a.split("/")[0])],
        ...(IPVLAN.available ? [[`${NAMESPACE}/red`, "net3", links["net3"]!.map((a) => a.split("/")[0])]] : []),
      ]);

      const ports = { tcp: [PORT], udp: [] };
      const webAgent = await Agent.start("web", web.netnsPath, ports);
      agents.push(webAgent);
      const clientAgent = await Agent.start("client", client.netnsPath, ports);
      agents.push(clientAgent);
      const otherAgent = await Agent.start("other", other.netnsPath, ports);
      agents.push(otherAgent);
      const [webNet1] = links["net1"]!.map((a) => a.split("/")[0]!);
      // The node enforcer adds client's net1 address to web's table once client is attached.
      let allowed = await clientAgent.probe({ proto: "tcp", host: webNet1!, port: PORT });
      for (let i = 0; i < 50 && allowed.result !== "open"; i++) {
        await sleep(200);
        allowed = await clientAgent.probe({ proto: "tcp", host: webNet1!, port: PORT });
      }
      const tableNow = await must("nsenter", [`--net=${web.netnsPath}`, "nft", "list", "table", "inet", "nadguard"]);
      expect(allowed, `${tableNow}\n${JSON.stringify(await interfaces(client.netnsPath))}\n${await readFile(nadguardDirs(n.paths).log, "utf8")}`).toMatchObject({ result: "open", reply: "web" });
      expect(await otherAgent.probe({ proto: "tcp", host: webNet1!, port: PORT, timeoutMs: 1000 })).toMatchObject({ result: "closed" });
      // The control: other reaches web on the network no policy isolates (net2 is macvlan: other is not on it; eth0 is).
      expect(await otherAgent.probe({ proto: "tcp", host: web.status.network!.ip, port: PORT })).toMatchObject({ result: "open", reply: "web" });
    } finally {
      for (const agent of agents) await agent.stop();
      // As kubelet and containerd do: StopPodSandbox, StopPodSandbox again (no netns by then), RemovePodSandbox.
      for (const sandbox of [web, client, other]) await n.cri.stopPodSandbox(sandbox.id);
      for (const sandbox of [web, client, other]) await n.removePod(sandbox.id);
    }
    expect(await leases(n.paths)).toEqual([]);
    expect(await veths(n.paths)).toEqual([]);
    expect(await caches(n.paths, web.id)).toEqual([]);
    expect(existsSync(statusFile(n.paths, "web"))).toBe(false);
  }, 120_000);

  it("a pod whose network is forbidden: RunPodSandbox fails with nadguard's denial (the message admission gives) and nothing is left", async () => {
    const n = node();
    const admitted = await admit(n.paths, PODS.thief);
    expect(admitted.code).toBe(3);
    expect(admitted.message).toContain("team-b/private");
    const before = await traces(n.paths);
    const error = await runPodError(n, PODS.thief);
    expect(error?.message).toMatch(/failed to setup network for sandbox "[0-9a-f]{64}": plugin type="nadguard-cni" (name="nadguard" )?failed \(add\): /);
    expect(error?.message).toContain(admitted.message!);
    await expectNothingOf(n, "thief", before);
  }, 120_000);

  it("a delegate that fails: the CRI error names the pod, the NAD and the plugin, and containerd's DEL leaves nothing", async () => {
    const n = node();
    const before = await traces(n.paths);
    const uid = (PODS.unlucky.metadata as { uid: string }).uid;
    const error = await runPodError(n, PODS.unlucky);
    expect(error?.message).toMatch(/failed to setup network for sandbox "[0-9a-f]{64}": plugin type="nadguard-cni" (name="nadguard" )?failed \(add\): /);
    expect(error?.message).toContain(`[${NAMESPACE}/unlucky/${uid}] network "${NAMESPACE}/broken" (element "broken", interface net2): plugin type="no-such-plugin" name="${n.paths.prefix}broken" failed (add): no plugin binary "no-such-plugin" in the plugin path`);
    await expectNothingOf(n, "unlucky", before);
  }, 120_000);

  it("containerd's DEL storm (Stop with the netns, Stop again and Remove without) exits clean and leaves no lease, veth, cache or status", async () => {
    const n = node();
    const sandbox = await n.runPod(podOf(PODS.storm));
    expect(Object.keys(await interfaces(sandbox.netnsPath)).sort()).toEqual(["eth0", "lo", "net1", "net2"]);
    expect(await leases(n.paths)).toHaveLength(6);
    expect(await veths(n.paths)).toHaveLength(2);
    expect(await caches(n.paths, sandbox.id)).not.toEqual([]);
    await n.cri.stopPodSandbox(sandbox.id);
    expect(await leases(n.paths)).toEqual([]);
    expect(await veths(n.paths)).toEqual([]);
    await n.cri.stopPodSandbox(sandbox.id);
    await n.removePod(sandbox.id);
    expect(await n.cri.listPodSandbox()).toEqual([]);
    expect(await caches(n.paths, sandbox.id)).toEqual([]);
    expect(existsSync(statusFile(n.paths, "storm"))).toBe(false);
    expect(existsSync(sandbox.netnsPath)).toBe(false);
  }, 120_000);

  it("the daemon stopped: ADD fails naming the socket, the sandbox is removed; restarted: a pod attached before keeps its table and is deleted clean", async () => {
    const n = node();
    const keeper = await n.runPod(podOf(PODS.keeper));
    const table = await must("nsenter", [`--net=${keeper.netnsPath}`, "nft", "list", "table", "inet", "nadguard"]);
    await daemons[daemons.length - 1]!();
    const socket = join(nadguardDirs(n.paths).sock, "nadguard.sock");
    const error = await runPodError(n, PODS.late);
    expect(error?.message).toContain(`failed (add): nadguard-cni: the nadguard daemon at ${socket} is not ready after ${READY_TIMEOUT_MS} ms (NADGUARD_CNI_READY_TIMEOUT_MS)`);
    // containerd's DEL after the failed ADD: the shim exits 0 without the daemon, so the sandbox goes.
    expect((await n.cri.listPodSandbox()).filter((s) => s.metadata?.name === "late")).toEqual([]);

    daemons.push(await startNadguardNode(n.paths, NODE));
    expect(await must("nsenter", [`--net=${keeper.netnsPath}`, "nft", "list", "table", "inet", "nadguard"])).toBe(table);
    await n.removePod(keeper.id);
    expect(await traces(n.paths, keeper.id)).toEqual({ leases: [], veths: [], caches: [] });
    expect(existsSync(statusFile(n.paths, "keeper"))).toBe(false);
  }, 120_000);

  it("20 pods (eth0 + 2) created and removed through the CRI, 4 at a time, leave nothing behind", async () => {
    const n = node();
    const batch = Array.from({ length: 20 }, (_, i) => PODS[`batch${i}` as keyof typeof PODS]);
    for (let i = 0; i < batch.length; i += 4) {
      const sandboxes = await Promise.all(batch.slice(i, i + 4).map((object) => n.runPod(podOf(object))));
      for (const sandbox of sandboxes) expect(Object.keys(await interfaces(sandbox.netnsPath)).sort()).toEqual(["eth0", "lo", "net1", "net2"]);
      // eth0, net1 and net2 dual stack: 6 leases a pod.
      expect(await leases(n.paths)).toHaveLength(24);
      await Promise.all(sandboxes.map((sandbox) => n.removePod(sandbox.id)));
    }
    expect(await n.cri.listPodSandbox()).toEqual([]);
    expect(await traces(n.paths)).toEqual({ leases: [], veths: [], caches: [] });
    expect(await readdir(join(nadguardDirs(n.paths).state, ".nadguard", "network-status", NAMESPACE)).catch(() => [])).toEqual([]);
  }, 300_000);

  it("containerd kills the shim at its caller's deadline during a slow ADD: once the daemon's ADD ends, no lease, veth or cache is left", async () => {
    const n = node();
    const nets = networksOf(n.paths);
    const error = await runPodError(n, PODS.slow, { timeoutMs: 1500 });
    expect(error?.message).toMatch(/DEADLINE_EXCEEDED|deadline/i);
    // The delegate's ADD sleeps 4 s; then the daemon must undo what it made for the gone sandbox.
    let left: unknown = undefined;
    for (let i = 0; i < 60; i++) {
      await sleep(250);
      left = await traces(n.paths);
      if (i > 24 && JSON.stringify(left) === JSON.stringify({ leases: [], veths: [], caches: [] })) break;
    }
    expect(left).toEqual({ leases: [], veths: [], caches: [] });
    // The daemon's ADD did run to its end after the shim was killed, and the DEL that followed undid it.
    const messages = (await readFile(nadguardDirs(n.paths).log, "utf8"))
      .split("\n")
      .filter((line) => line.includes("team-a/slowpoke"))
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toEqual([expect.stringMatching(/\] attached \S+-cluster@eth0, team-a\/slow@net1$/), expect.stringMatching(/: deleted team-a\/slow@net1, \S+-cluster@eth0 \(from nadguard's cache\)$/)]);
    // containerd may keep the failed sandbox NOTREADY until kubelet removes it: what kubelet does then leaves nothing either.
    for (const sandbox of (await n.cri.listPodSandbox()).filter((s) => s.metadata?.name === "slowpoke")) await n.removePod(sandbox.id);
    expect(await leases(n.paths)).toEqual([]);
    expect(JSON.parse(await must("ip", ["-n", n.paths.netns, "-j", "link", "show", "master", nets.slow.bridge]).catch(() => "[]"))).toEqual([]);
  }, 120_000);

  it("the daemon killed with SIGKILL in the middle of an ADD: the CRI error names the socket, the sandbox goes; restarted, it leaves no lease, veth, cache or status of the pod", async () => {
    const n = node();
    const before = await traces(n.paths);
    const socket = join(nadguardDirs(n.paths).sock, "nadguard.sock");
    const killed = daemons[daemons.length - 1]!;
    const cluster = bridgeNetwork(n.paths).name;
    const pending = runPodError(n, PODS.killed);
    // eth0 is attached (the cluster network's leases exist), the slow delegate's ADD sleeps 4 s: kill the daemon then.
    for (let i = 0; i < 200 && !(await leases(n.paths)).some((l) => l.startsWith(`${cluster}/`)); i++) await sleep(50);
    expect((await leases(n.paths)).filter((l) => l.startsWith(`${cluster}/`))).toHaveLength(2);
    await sleep(500);
    process.kill(killed.pid, "SIGKILL");
    const error = await pending;
    expect(error?.message).toMatch(/failed to setup network for sandbox "[0-9a-f]{64}": plugin type="nadguard-cni" (name="nadguard" )?failed \(add\): /);
    expect(error?.message).toContain(`failed (add): nadguard-cni: cannot reach the nadguard daemon at ${socket}`);
    // containerd's DEL after the failed ADD reached no daemon: the shim reported success, so the sandbox is gone.
    expect((await n.cri.listPodSandbox()).filter((s) => s.metadata?.name === "killed")).toEqual([]);

    // The node's supervisor restarts the daemon (a DaemonSet's pod, a systemd unit).
    daemons.push(await startNadguardNode(n.paths, NODE));
    // The killed daemon's delegate (sleeping when it was killed) ends by itself within 4 s: wait it out, then nothing may be left.
    let left: unknown = undefined;
    for (let i = 0; i < 60; i++) {
      await sleep(250);
      left = await traces(n.paths);
      if (i > 24 && JSON.stringify(left) === JSON.stringify(before)) break;
    }
    const log = await readFile(nadguardDirs(n.paths).log, "utf8");
    expect(left, log).toEqual(before);
    expect(existsSync(statusFile(n.paths, "killed"))).toBe(false);
    // The restarted daemon undid it at its start, from its caches (the killed ADD's netns is gone).
    const swept = log.split("\n").filter((line) => line.includes("whose netns is gone")).map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(swept).toEqual([expect.stringMatching(/^deleted the attachments of 1 container\(s\) whose netns is gone \(a call cut short before this start\): [0-9a-f]{64}$/)]);
    expect(JSON.parse(await must("ip", ["-n", n.paths.netns, "-j", "link", "show", "master", networksOf(n.paths).slow.bridge]).catch(() => "[]"))).toEqual([]);
  }, 120_000);
});
