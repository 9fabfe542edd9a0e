// The node daemon's handler over fake plugins (fake.ts) and real files: which delegates a pod gets
// and in which order, that the pod's table goes in before the first secondary delegate, what a denial, a
// UID mismatch, a missing pod and namespace isolation answer, that a DEL waits for the ADD of its
// container, GC, the sweep at start and STATUS. The real plugins, the shim and the process are in test/cni/node.test.ts.
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Result, fail, ok } from "../api/errors.js";
import type { Pod } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { SnapshotBuilder } from "../cluster/snapshot-builder.js";
import { addStateText } from "../cluster/state-dir.js";
import { Attachments } from "./attach.js";
import { parseDaemonConfig } from "./daemon-config.js";
import { NodeDaemon, type NodeDaemonOptions } from "./daemon.js";
import { type FakeCall, FakePluginExec } from "./fake.js";
import { parseCniCall } from "./request.js";
import { CniRunner } from "./runner.js";
import type { NetworkStatus } from "./status.js";

const BIN = "/fake/cni/bin";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-daemon-"));
  await mkdir(join(dir, "net.d"));
  await writeFile(join(dir, "net.d", "10-cluster.conf"), JSON.stringify({ cniVersion: "1.0.0", name: "cluster", type: "bridge" }));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const nad = (ns: string, name: string): string => `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: ${name}, namespace: ${ns} }
spec: { config: '{"cniVersion":"1.0.0","name":"${name}","type":"macvlan"}' }
---
`;
const pod = (ns: string, name: string, annotations: Record<string, string>): string => `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${ns}, uid: uid-${name}, annotations: ${JSON.stringify(annotations)} }
spec: { nodeName: n1, containers: [{ name: c, image: i }] }
---
`;

function snapshotOf(text: string): Snapshot {
  const builder = new SnapshotBuilder(1);
  addStateText(builder, "state.yaml", text);
  return builder.build();
}

const STATE = snapshotOf(
  nad("tenant-a", "blue") +
    nad("kube-system", "monitoring") +
    nad("kube-system", "alt") +
    nad("shared", "lan") +
    nad("default", "common") +
    pod("tenant-a", "web", { "k8s.v1.cni.cncf.io/networks": "blue" }) +
    pod("kube-system", "dns", { "k8s.v1.cni.cncf.io/networks": "monitoring" }) +
    pod("tenant-a", "alt", { "v1.multus-cni.io/default-network": "alt" }) +
    pod("tenant-a", "far", { "k8s.v1.cni.cncf.io/networks": "shared/lan" }) +
    pod("tenant-a", "near", { "k8s.v1.cni.cncf.io/networks": "default/common" }),
);

/** A plugin that makes one interface named CNI_IFNAME with an address per call. */
function plugins(events: string[], hold?: Promise<void>): FakePluginExec {
  let n = 1;
  const plugin = async (call: FakeCall) => {
    events.push(`${call.type} ${call.command} ${call.env.CNI_IFNAME}`);
    if (call.command !== "ADD") return { ok: true } as const;
    if (hold && call.env.CNI_IFNAME === "eth0") await hold;
    n++;
    return { result: { cniVersion: "1.0.0", interfaces: [{ name: call.env.CNI_IFNAME, mac: `02:00:00:00:00:0${n}`, sandbox: call.env.CNI_NETNS }], ips: [{ address: `198.18.0.${n}/24`, interface: 0 }] } };
  };
  return new FakePluginExec({ bridge: plugin, macvlan: plugin }, BIN);
}

interface Harness {
  readonly daemon: NodeDaemon;
  readonly exec: FakePluginExec;
  readonly events: string[];
  readonly statuses: Map<string, readonly NetworkStatus[]>;
}

function harness(options: { config?: Record<string, unknown>; snapshot?: Snapshot; authorize?: NodeDaemonOptions["authorize"]; hold?: Promise<void>; ready?: boolean; tableError?: string; tableDelayMs?: number } = {}): Harness {
  const events: string[] = [];
  const statuses = new Map<string, readonly NetworkStatus[]>();
  const config = parseDaemonConfig({ cniDir: join(dir, "cni"), cniConfigDir: join(dir, "net.d"), socketDir: join(dir, "sock"), ...options.config });
  const exec = plugins(events, options.hold);
  const runner = new CniRunner({ pluginDirs: [BIN], cacheDir: config.cniDir, exec });
  const attachments = new Attachments({ runner, cacheDir: config.cniDir });
  const daemon = new NodeDaemon({
    node: "n1",
    config,
    engine: () => ({ runner, attachments }),
    snapshot: () => options.snapshot ?? STATE,
    stateReady: () => options.ready ?? true,
    authorize: options.authorize ?? (async () => ok(undefined)),
    installTable: async (podKey: string, snapshot: Snapshot, netns: string): Promise<Result<string, string>> => {
      const status = snapshot.pods.get(podKey)?.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"];
      events.push(`table ${podKey} ${netns} ${status}`);
      if (options.tableDelayMs !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, options.tableDelayMs));
        events.push(`table ${podKey} in place`);
      }
      return options.tableError === undefined ? ok("installed") : fail(options.tableError);
    },
    recordStatus: async (ref, list) => {
      events.push(`status ${ref.namespace}/${ref.name} ${list === undefined ? "removed" : list.map((s) => `${s.name}@${s.interface}`).join(",")}`);
      if (list === undefined) statuses.delete(`${ref.namespace}/${ref.name}`);
      else statuses.set(`${ref.namespace}/${ref.name}`, list);
      return ok(undefined);
    },
    log: () => undefined,
    podWaitMs: 50,
  });
  return { daemon, exec, events, statuses };
}

function call(command: string, podRef: string, options: { containerId?: string; netns?: string; config?: Record<string, unknown> } = {}) {
  const [ns, name] = podRef.split("/");
  const parsed = parseCniCall({
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: options.containerId ?? `sandbox-${name}`,
      CNI_NETNS: options.netns ?? `/run/netns/${name}`,
      CNI_IFNAME: "eth0",
      CNI_PATH: "/opt/cni/bin",
      CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name};K8S_POD_UID=uid-${name}`,
    },
    config: Buffer.from(JSON.stringify({ cniVersion: "0.4.0", name: "nadguard", type: "nadguard-cni", ...options.config })).toString("base64"),
  });
  if (!parsed.ok) throw new Error(parsed.error.msg);
  return parsed.value;
}

describe("the node daemon's ADD", () => {
  it("installs the pod's table with its planned interfaces beside the cluster network and before the first secondary delegate, runs the cluster network then defaultNetworks then the selection, and records network-status", async () => {
    const { daemon, events, statuses } = harness({ config: { defaultNetworks: ["shared/lan"] }, tableDelayMs: 300 });
    const added = await daemon.handle(call("ADD", "tenant-a/web"));
    expect(added).toMatchObject({ ok: true, value: { interfaces: [{ name: "eth0" }], ips: [{ address: "198.18.0.2/24" }] } });
    // The table starts once the cluster network's plugin has (its work overlaps the plugin's, not the plugin's start).
    expect(events).toEqual([
      "bridge ADD eth0",
      'table tenant-a/web /run/netns/web [{"name":"cluster","interface":"eth0","ips":[],"default":true},{"name":"shared/lan","interface":"net1","ips":[],"default":false},{"name":"tenant-a/blue","interface":"net2","ips":[],"default":false}]',
      "table tenant-a/web in place",
      "macvlan ADD net1",
      "macvlan ADD net2",
      "status tenant-a/web cluster@eth0,shared/lan@net1,tenant-a/blue@net2",
    ]);
    expect(statuses.get("tenant-a/web")?.map((s) => [s.name, s.interface, s.ips, s.default])).toEqual([
      ["cluster", "eth0", ["198.18.0.2"], true],
      ["shared/lan", "net1", ["198.18.0.3"], false],
      ["tenant-a/blue", "net2", ["198.18.0.4"], false],
    ]);
  });

  it("fails the ADD naming the netns when the pod's table cannot be installed, runs no secondary delegate, undoes the cluster network and leaves no delegate cache", async () => {
    const { daemon, events } = harness({ tableError: "Error: Could not process rule: No such file or directory", tableDelayMs: 300 });
    const added = await daemon.handle(call("ADD", "tenant-a/web"));
    expect(added).toEqual({
      ok: false,
      error: { code: 999, msg: "[tenant-a/web/uid-web] cannot install table inet nadguard in /run/netns/web before attaching: Error: Could not process rule: No such file or directory" },
    });
    expect(events.filter((e) => !e.startsWith("table "))).toEqual(["bridge ADD eth0", "bridge DEL eth0"]);
    // No delegate cache, and no result cached for the cluster network it undid.
    expect(await readdir(join(dir, "cni"), { recursive: true }).catch(() => [])).toEqual(["results"]);
  });

  it("gives pods of systemNamespaces no defaultNetworks", async () => {
    const { daemon, events } = harness({ config: { defaultNetworks: ["shared/lan"] } });
    expect((await daemon.handle(call("ADD", "kube-system/dns"))).ok).toBe(true);
    expect(events.filter((e) => e.includes(" ADD "))).toEqual(["bridge ADD eth0", "macvlan ADD net1"]);
  });

  it("replaces the cluster network with the pod's v1.multus-cni.io/default-network, a bare name read in multusNamespace", async () => {
    const { daemon, events, statuses } = harness();
    expect((await daemon.handle(call("ADD", "tenant-a/alt"))).ok).toBe(true);
    expect(events.filter((e) => e.includes(" ADD "))).toEqual(["macvlan ADD eth0"]);
    expect(statuses.get("tenant-a/alt")?.map((s) => [s.name, s.default])).toEqual([["kube-system/alt", true]]);
  });

  it("refuses with code 100 and admission's message, before any table or delegate", async () => {
    const { daemon, events } = harness({ authorize: async (p: Pod) => fail(`pod ${p.metadata.namespace}/${p.metadata.name}: element 1 ("blue"): may not use it`) });
    expect(await daemon.handle(call("ADD", "tenant-a/web"))).toEqual({ ok: false, error: { code: 100, msg: 'pod tenant-a/web: element 1 ("blue"): may not use it' } });
    expect(events).toEqual([]);
  });

  it("refuses a sandbox whose pod UID is not the pod's", async () => {
    const { daemon, events } = harness({ snapshot: snapshotOf(pod("tenant-a", "web", {}).replace("uid-web", "uid-new")) });
    const added = await daemon.handle(call("ADD", "tenant-a/web"));
    expect(added).toEqual({
      ok: false,
      error: { code: 4, msg: "[tenant-a/web/uid-web] the runtime's sandbox is for pod UID uid-web, but pod tenant-a/web in the cluster state has UID uid-new (deleted and created again?); not attaching it" },
    });
    expect(events).toEqual([]);
  });

  it("takes a pod missing from the cluster state from the annotations the runtime sends, and without them says so", async () => {
    const empty = snapshotOf(nad("tenant-a", "blue"));
    const seen: Pod[] = [];
    const { daemon, events } = harness({ snapshot: empty, authorize: async (p) => (seen.push(p), ok(undefined)) });
    const annotations = { "k8s.v1.cni.cncf.io/networks": "blue" };
    expect((await daemon.handle(call("ADD", "tenant-a/web", { config: { runtimeConfig: { "io.kubernetes.cri.pod-annotations": annotations } } }))).ok).toBe(true);
    expect(seen.map((p) => [p.metadata.namespace, p.metadata.name, p.metadata.uid, p.metadata.annotations, p.spec.nodeName])).toEqual([["tenant-a", "web", "uid-web", annotations, "n1"]]);
    expect(events.filter((e) => e.includes(" ADD "))).toEqual(["bridge ADD eth0", "macvlan ADD net1"]);

    expect(await daemon.handle(call("ADD", "tenant-a/ghost"))).toEqual({
      ok: false,
      error: { code: 3, msg: "[tenant-a/ghost/uid-ghost] pod tenant-a/ghost is not in the cluster state (waited 50 ms), and the runtime sent no pod annotations (capability io.kubernetes.cri.pod-annotations)" },
    });
  });

  it("with namespaceIsolation, refuses a NAD of another namespace unless it is in globalNamespaces", async () => {
    const { daemon } = harness({ config: { namespaceIsolation: true } });
    expect(await daemon.handle(call("ADD", "tenant-a/far"))).toEqual({
      ok: false,
      error: { code: 7, msg: '[tenant-a/far/uid-far] element "shared/lan": namespace isolation (namespaceIsolation) lets a pod of tenant-a use the NADs of its own namespace and of default only, not shared/lan' },
    });
    expect((await daemon.handle(call("ADD", "tenant-a/near"))).ok).toBe(true);
  });
});

describe("the node daemon's devices", () => {
  it("gives a NAD with a resourceName the pod's device from the kubelet checkpoint, as deviceID and pciBusID in its config and as its deviceID capability", async () => {
    const checkpoint = join(dir, "kubelet_internal_checkpoint");
    await writeFile(checkpoint, JSON.stringify({ Data: { PodDeviceEntries: [{ PodUID: "uid-sriov", ContainerName: "c", ResourceName: "example.com/vf", DeviceIDs: { "0": ["0000:03:00.2", "0000:03:00.1"] } }] } }));
    const snapshot = snapshotOf(
      `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: vf, namespace: tenant-a, annotations: { k8s.v1.cni.cncf.io/resourceName: example.com/vf } }
spec: { config: '{"cniVersion":"1.0.0","name":"vf","type":"macvlan","capabilities":{"deviceID":true}}' }
---
` + pod("tenant-a", "sriov", { "k8s.v1.cni.cncf.io/networks": "vf,vf" }),
    );
    const { daemon, exec } = harness({ snapshot, config: { deviceCheckpoint: checkpoint } });
    expect((await daemon.handle(call("ADD", "tenant-a/sriov"))).ok).toBe(true);
    // The pod's IDs sorted; the n-th delegate of the resource gets the n-th.
    expect(exec.calls.filter((c) => c.type === "macvlan").map((c) => [c.env.CNI_IFNAME, c.config.deviceID, c.config.pciBusID, (c.config.runtimeConfig as { deviceID?: string } | undefined)?.deviceID])).toEqual([
      ["net1", "0000:03:00.1", "0000:03:00.1", "0000:03:00.1"],
      ["net2", "0000:03:00.2", "0000:03:00.2", "0000:03:00.2"],
    ]);
  });
});

describe("the node daemon's DEL, GC and STATUS", () => {
  it("runs a DEL of a container after its ADD still running, and undoes all of it", async () => {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const { daemon, events, statuses } = harness({ hold });
    const adding = daemon.handle(call("ADD", "tenant-a/web"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const deleting = daemon.handle(call("DEL", "tenant-a/web"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(events.filter((e) => e.includes(" DEL "))).toEqual([]);
    release();
    expect((await adding).ok).toBe(true);
    expect(await deleting).toEqual({ ok: true, value: undefined });
    expect(events.filter((e) => !e.startsWith("table"))).toEqual(["bridge ADD eth0", "macvlan ADD net1", "status tenant-a/web cluster@eth0,tenant-a/blue@net1", "macvlan DEL net1", "bridge DEL eth0", "status tenant-a/web removed"]);
    expect(statuses.size).toBe(0);
    // Again, with the netns gone: nothing left to do, still success.
    expect(await daemon.handle(call("DEL", "tenant-a/web", { netns: "" }))).toEqual({ ok: true, value: undefined });
  });

  it("GC deletes the attachments of every container not in cni.dev/valid-attachments, and their pods' network-status", async () => {
    const { daemon, events, statuses } = harness();
    await daemon.handle(call("ADD", "tenant-a/web"));
    await daemon.handle(call("ADD", "kube-system/dns"));
    events.length = 0;
    const gc = await daemon.handle(call("GC", "x/y", { config: { "cni.dev/valid-attachments": [{ containerID: "sandbox-dns", ifname: "eth0" }] } }));
    expect(gc).toEqual({ ok: true, value: undefined });
    expect(events).toEqual(["macvlan DEL net1", "bridge DEL eth0", "status tenant-a/web removed"]);
    expect([...statuses.keys()]).toEqual(["kube-system/dns"]);
    expect((await readdir(join(dir, "cni"))).filter((f) => f !== "results")).toEqual(["sandbox-dns"]);
  });

  it("sweep() at start deletes the attachments of every cached container whose netns is gone, and their pods' network-status, and keeps the others", async () => {
    const { daemon, events, statuses } = harness();
    const alive = join(dir, "netns-web");
    await writeFile(alive, "");
    await daemon.handle(call("ADD", "tenant-a/web", { netns: alive }));
    await daemon.handle(call("ADD", "kube-system/dns", { netns: join(dir, "netns-dns-removed") }));
    events.length = 0;
    expect(await daemon.sweep()).toEqual(["sandbox-dns"]);
    expect(events).toEqual(["macvlan DEL net1", "bridge DEL eth0", "status kube-system/dns removed"]);
    expect([...statuses.keys()]).toEqual(["tenant-a/web"]);
    expect((await readdir(join(dir, "cni"))).filter((f) => f !== "results")).toEqual(["sandbox-web"]);
    // Nothing left to sweep: a second start finds nothing.
    expect(await daemon.sweep()).toEqual([]);
  });

  it("is not ready until readinessindicatorfile exists, nor after terminate()", async () => {
    const indicator = join(dir, "ready");
    const { daemon } = harness({ config: { readinessindicatorfile: indicator } });
    await daemon.refreshIndicator();
    expect(daemon.ready()).toBe(false);
    await writeFile(indicator, "");
    await daemon.refreshIndicator();
    expect(daemon.ready()).toBe(true);
    daemon.terminate();
    expect(daemon.ready()).toBe(false);
  });

  it("STATUS fails with code 50 while the cluster state is not loaded, and succeeds once it is", async () => {
    expect(await harness({ ready: false }).daemon.handle(call("STATUS", "x/y"))).toMatchObject({ ok: false, error: { code: 50 } });
    expect(await harness().daemon.handle(call("STATUS", "x/y"))).toEqual({ ok: true, value: undefined });
  });
});
