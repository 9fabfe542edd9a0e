// How containerd 1.6's CRI calls CNI plugins, observed through the node harness with a recording
// plugin (test/support/cni-recorder.mjs) chained after the reference bridge + host-local: the
// environment and runtimeConfig of ADD, the three DELs of Stop, Stop, Remove (only the first with
// the netns and prevResult), DEL at once after a failed ADD, the plugin killed and DEL sent when
// the caller's deadline passes during ADD, a sandbox kept while DEL fails, and a node without a
// conf (its first sandbox cannot even be removed) until one is renamed into conf_dir. These are
// the behaviours of containerd 1.6's CRI (observed on this project's machine) and that nadguard's meta-plugin must survive; each test checks
// the node is left as the pod found it.
import { randomUUID } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Pod } from "../../src/api/objects.js";
import { CriError } from "../../src/cri/runtime-client.js";
import { bridgeLeases, bridgeNetwork, type NodePaths, writeBridgeConflist } from "../support/containerd-node.js";
import { useContainerdNode } from "../support/containerd-node-fixture.js";
import { sleep } from "./sys.js";

const IS_ROOT = process.getuid?.() === 0;
const RECORDER = join(import.meta.dirname, "..", "support", "cni-recorder.mjs");

interface CallRecord {
  readonly phase: "start" | "end";
  readonly command: string;
  readonly at: number;
  readonly env: Record<string, string>;
  readonly envKeys: string[];
  readonly config: Record<string, unknown> & { prevResult?: unknown; runtimeConfig?: Record<string, unknown> };
}

function files(paths: NodePaths): { log: string; control: string } {
  return { log: join(paths.dataDir, "calls.log"), control: join(paths.dataDir, "control.json") };
}

/** The recorder, chained after the bridge, declaring every capability containerd fills. */
function recorder(paths: NodePaths): Record<string, unknown> {
  const f = files(paths);
  return { type: "recorder", logFile: f.log, controlFile: f.control, capabilities: { portMappings: true, dns: true, bandwidth: true, "io.kubernetes.cri.pod-annotations": true } };
}

async function writeConflist(paths: NodePaths): Promise<void> {
  await writeBridgeConflist(paths, [recorder(paths)]);
}

async function calls(paths: NodePaths, id?: string): Promise<CallRecord[]> {
  const text = await readFile(files(paths).log, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as CallRecord)
    .filter((r) => id === undefined || r.env["CNI_CONTAINERID"] === id);
}

/** CNI_ARGS as a map (containerd builds it from a Go map: the order changes from call to call). */
function cniArgs(record: CallRecord): Record<string, string> {
  return Object.fromEntries((record.env["CNI_ARGS"] ?? "").split(";").map((pair) => pair.split("=") as [string, string]));
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await sleep(100);
  }
}

function pod(name: string, extra: { annotations?: Record<string, string>; ports?: unknown[] } = {}): Pod {
  return Pod.parse({
    metadata: { name, namespace: "team-b", uid: randomUUID(), annotations: extra.annotations ?? {} },
    spec: { containers: [{ name: "app", ports: extra.ports ?? [] }] },
  });
}

describe.skipIf(!IS_ROOT)("containerd's CNI calls", () => {
  const node = useContainerdNode({ plugins: { recorder: RECORDER }, writeConf: writeConflist }, (n) => n.waitCondition("NetworkReady"));
  beforeEach(async () => {
    await writeFile(files(node().paths).control, "{}");
    await writeFile(files(node().paths).log, "");
  });
  afterEach(async () => {
    // A failed test leaves no pod for the next one to trip over.
    await writeFile(files(node().paths).control, "{}");
    for (const sandbox of await node().cri.listPodSandbox()) await node().removePod(sandbox.id);
  }, 60_000);

  it("ADD: the CNI_* environment, containerd's whole environment, runtimeConfig with Go field names", async () => {
    const p = pod("add", { annotations: { "example.com/team": "b", "kubernetes.io/ingress-bandwidth": "1M" }, ports: [{ containerPort: 80, hostPort: 18080 }, { containerPort: 81 }] });
    const sandbox = await node().runPod(p);
    const [add] = (await calls(node().paths, sandbox.id)).filter((r) => r.command === "ADD" && r.phase === "start");
    expect(add).toBeDefined();
    expect(add!.env).toMatchObject({ CNI_COMMAND: "ADD", CNI_CONTAINERID: sandbox.id, CNI_NETNS: sandbox.netnsPath, CNI_IFNAME: "eth0", CNI_PATH: node().paths.binDir });
    expect(cniArgs(add!)).toEqual({ IgnoreUnknown: "1", K8S_POD_NAMESPACE: "team-b", K8S_POD_NAME: "add", K8S_POD_INFRA_CONTAINER_ID: sandbox.id, K8S_POD_UID: p.metadata.uid });
    // containerd passes its own environment on (it was started with this process's).
    expect(add!.envKeys).toEqual(expect.arrayContaining(["PATH", "HOME"]));
    expect(add!.config).toMatchObject({ cniVersion: "1.0.0", name: bridgeNetwork(node().paths).name, type: "recorder" });
    expect(add!.config.runtimeConfig).toEqual({
      // Only mappings with a host port; Go field names, lower-case protocol.
      portMappings: [{ HostPort: 18080, ContainerPort: 80, Protocol: "tcp", HostIP: "" }],
      dns: { Servers: ["198.18.255.10"], Searches: ["team-b.svc.cluster.local", "svc.cluster.local", "cluster.local"], Options: ["ndots:5"] },
      bandwidth: { IngressRate: 1_000_000, IngressBurst: 4294967295, EgressRate: 0, EgressBurst: 0 },
      "io.kubernetes.cri.pod-annotations": { "example.com/team": "b", "kubernetes.io/ingress-bandwidth": "1M" },
    });
    expect(add!.config.prevResult).toMatchObject({ ips: [{ address: `${sandbox.status.network!.ip}/24` }, { address: `${sandbox.status.network!.additionalIps[0]!.ip}/64` }] });
    await node().removePod(sandbox.id);
    expect(await bridgeLeases(node().paths)).toEqual([]);
  }, 60_000);

  it("Stop, Stop, Remove: three DELs, only the first with the netns and prevResult", async () => {
    const sandbox = await node().runPod(pod("dels"));
    await node().cri.stopPodSandbox(sandbox.id);
    await node().cri.stopPodSandbox(sandbox.id);
    await node().cri.removePodSandbox(sandbox.id);
    const dels = (await calls(node().paths, sandbox.id)).filter((r) => r.command === "DEL" && r.phase === "start");
    expect(dels.map((d) => ({ netns: d.env["CNI_NETNS"], prevResult: d.config.prevResult !== undefined, runtimeConfig: d.config.runtimeConfig !== undefined }))).toEqual([
      { netns: sandbox.netnsPath, prevResult: true, runtimeConfig: true },
      { netns: "", prevResult: false, runtimeConfig: true },
      { netns: "", prevResult: false, runtimeConfig: true },
    ]);
    expect(await bridgeLeases(node().paths)).toEqual([]);
    expect(await node().cri.listPodSandbox()).toEqual([]);
  }, 60_000);

  it("a failed ADD: the CRI error names the plugin and its message; DEL at once; no sandbox, no lease", async () => {
    await writeFile(files(node().paths).control, JSON.stringify({ failAdd: "recorder refuses this pod" }));
    const error = (await node().runPod(pod("refused")).catch((e: unknown) => e)) as CriError;
    expect(error).toBeInstanceOf(CriError);
    const match = /^failed to setup network for sandbox "([0-9a-f]{64})": plugin type="recorder" failed \(add\): recorder refuses this pod/.exec(error.details);
    expect(match, error.details).not.toBeNull();
    const id = match![1]!;
    const records = await calls(node().paths, id);
    expect(records.filter((r) => r.phase === "start").map((r) => r.command)).toEqual(["ADD", "DEL"]);
    expect(records.find((r) => r.command === "DEL")!.env["CNI_NETNS"]).not.toBe("");
    expect(await node().cri.listPodSandbox()).toEqual([]);
    expect(await bridgeLeases(node().paths)).toEqual([]);
  }, 60_000);

  it("a caller deadline shorter than ADD: the plugin is killed, DEL follows, nothing is left", async () => {
    await writeFile(files(node().paths).control, JSON.stringify({ sleepAddMs: 4_000 }));
    const error = (await node().runPod(pod("slow"), { timeoutMs: 1_500 }).catch((e: unknown) => e)) as CriError;
    expect(error).toBeInstanceOf(CriError);
    expect(error.message).toMatch(/^CRI RunPodSandbox failed \(DEADLINE_EXCEEDED\): /);
    const records = await until("the recorder's calls", () => calls(node().paths), (r) => r.some((c) => c.command === "DEL"));
    const add = records.find((r) => r.command === "ADD")!;
    const id = add.env["CNI_CONTAINERID"]!;
    expect(records.filter((r) => r.env["CNI_CONTAINERID"] === id && r.command === "ADD").map((r) => r.phase)).toEqual(["start"]);
    const del = records.find((r) => r.command === "DEL" && r.env["CNI_CONTAINERID"] === id)!;
    expect(del.at - add.at).toBeLessThan(4_000);
    await until("sandboxes", () => node().cri.listPodSandbox(), (s) => s.length === 0);
    expect(await until("leases", () => bridgeLeases(node().paths), (l) => l.length === 0)).toEqual([]);
  }, 60_000);

  it("a DEL that fails: Stop fails and the sandbox stays NOTREADY, Remove fails; once DEL works both succeed", async () => {
    const sandbox = await node().runPod(pod("stuck"));
    await writeFile(files(node().paths).control, JSON.stringify({ failDel: "recorder cannot delete" }));
    await expect(node().cri.stopPodSandbox(sandbox.id)).rejects.toThrow(/plugin type="recorder" failed \(delete\): recorder cannot delete/);
    expect(await node().cri.listPodSandbox()).toEqual([expect.objectContaining({ id: sandbox.id, state: "SANDBOX_NOTREADY" })]);
    await expect(node().cri.removePodSandbox(sandbox.id)).rejects.toThrow(/recorder cannot delete/);
    expect(await node().cri.listPodSandbox()).toHaveLength(1);
    await writeFile(files(node().paths).control, "{}");
    await node().removePod(sandbox.id);
    expect(await node().cri.listPodSandbox()).toEqual([]);
    expect(await bridgeLeases(node().paths)).toEqual([]);
  }, 60_000);
});

describe.skipIf(!IS_ROOT)("a node whose conf_dir is empty", () => {
  const node = useContainerdNode({ plugins: { recorder: RECORDER }, writeConf: async () => undefined });

  it("is not NetworkReady; RunPodSandbox fails and leaves a NOTREADY sandbox that only a conf lets go", async () => {
    const conditions = await node().cri.status();
    expect(conditions.find((c) => c.type === "NetworkReady")).toMatchObject({ status: false, reason: "NetworkPluginNotReady" });
    await expect(node().runPod(pod("early"))).rejects.toThrow(/cni plugin not initialized/);
    const [left] = await node().cri.listPodSandbox();
    expect(left).toMatchObject({ state: "SANDBOX_NOTREADY", metadata: { name: "early" } });
    // Removing it needs a DEL, and there is no network to DEL from.
    await expect(node().cri.removePodSandbox(left!.id)).rejects.toThrow(/failed to destroy network for sandbox .*cni plugin not initialized/);

    // As an installer should: a temporary file inside conf_dir, renamed into place.
    await writeBridgeConflist(node().paths, [recorder(node().paths)], ".10-cluster.conflist.tmp");
    await rename(join(node().paths.confDir, ".10-cluster.conflist.tmp"), join(node().paths.confDir, "10-cluster.conflist"));
    await node().waitCondition("NetworkReady", 15_000);
    await node().removePod(left!.id);
    const sandbox = await node().runPod(pod("late"));
    expect(`${sandbox.status.network?.ip}/24`).toMatch(new RegExp(`^${bridgeNetwork(node().paths).subnet.split(".").slice(0, 3).join("\\.")}\\.\\d+/24$`));
    await node().removePod(sandbox.id);
    expect(await node().cri.listPodSandbox()).toEqual([]);
    expect(await bridgeLeases(node().paths)).toEqual([]);
  }, 60_000);
});
