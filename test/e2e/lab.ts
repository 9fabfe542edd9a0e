// The end-to-end lab: "pods" are network namespaces of this run, attached to secondary networks by
// the REAL reference CNI plugins (/usr/lib/cni: bridge, macvlan, ipvlan with host-local IPAM),
// run through src/cni (the node's own CNI layer), and described in a state directory the
// enforcer reads, with the addresses the plugins returned in their network-status annotations.
//
// Topology: everything lives in namespaces named `ng-<pid>-<hex>-…` (PREFIX_PATTERN). A "switch"
// netns holds the bridges and the macvlan/ipvlan parents, so nothing is created in the host's
// netns and the host's firewall never sees the traffic; the plugins are run inside it with nsenter.
// Each pod also gets an eth0-equivalent (a veth into a separate bridge in the switch) that nadguard
// must never touch. Addresses: only 198.18.0.0/15 and fd00::/8; probes go only to pod addresses.
// In `cri` mode the pods are sandboxes that a private containerd (test/support/containerd-node.ts)
// creates through its CRI, with nadguard's meta-plugin as its CNI conf: the netns are containerd's,
// the switch netns is still the lab's (where `nadguard node` runs its delegates).
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { NAD_USER_CLUSTER_ROLE } from "../../src/authz/nad-access.js";
import { Pod } from "../../src/api/objects.js";
import { CniRunner, SpawnPluginExec, convertResult, formatCniError, parseNetworkConfig } from "../../src/cni/index.js";
import { Agent, type AgentPorts, type ProbeRequest, type ProbeResult } from "./agent-client.js";
import { ContainerdNode } from "../support/containerd-node.js";
import { MetaPlugin, type NetworkStatusEntry, SHIM_SOURCE } from "./meta-plugin.js";
import { cleanupStale, must, newPrefix, run } from "./sys.js";

export const CNI_DIR = "/usr/lib/cni";
export const NODE = "node-1";
const NETS_NAMESPACE = "nets";

export type CniType = "bridge" | "macvlan" | "ipvlan";

export interface NetworkSpec {
  /** NAD name, in namespace `nets`. */
  readonly name: string;
  readonly type: CniType;
  /** Interface name inside the pods. */
  readonly ifname: string;
  /** e.g. `198.18.0.0/24`. */
  readonly v4Subnet: string;
  /** e.g. `fd00:b::/64`. */
  readonly v6Subnet: string;
}

export interface Attachment {
  readonly network: string;
  readonly v4: string;
  readonly v6: string;
}

export interface PodSpec {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Record<string, string>;
  /** containerPorts of the pod's one container. */
  readonly ports?: readonly unknown[];
  readonly attachments: readonly Attachment[];
}

/** What the plugins returned for one attachment. */
export interface Attached {
  readonly network: string;
  readonly ifname: string;
  readonly ips: readonly string[];
  readonly mac?: string;
}

export interface LabPod {
  readonly key: string;
  readonly spec: PodSpec;
  readonly netns: string;
  readonly netnsPath: string;
  readonly uid: string;
  readonly eth0: { readonly v4: string; readonly v6: string };
  readonly attached: readonly Attached[];
  readonly agent: Agent;
  /** The sandbox's id (the CRI's in `cri` mode). */
  readonly containerId: string;
}

const IN_TEST_RANGES = (address: string): boolean => /^198\.1[89]\./.test(address) || /^fd[0-9a-f]{2}:/i.test(address);

function assertTestAddress(address: string): void {
  // Nothing is ever sent outside 198.18.0.0/15 (benchmarking, RFC 2544) and fd00::/8 (unique local, RFC 4193).
  if (!IN_TEST_RANGES(address)) throw new Error(`refusing to use ${address}: the lab uses only 198.18.0.0/15 and fd00::/8`);
}

export interface LabOptions {
  readonly networks: readonly NetworkSpec[];
  /** Namespaces with their labels. */
  readonly namespaces: Record<string, Record<string, string>>;
  readonly agentPorts: AgentPorts;
  /**
   * How pods get their interfaces: `direct` (default) — the lab runs each NAD's plugin through
   * src/cni itself and makes eth0 by hand; `meta-plugin` — `nadguard node` runs as a child process
   * and each pod is attached by executing the shim `nadguard-cni` as containerd does (eth0 from the
   * cluster network, net1..N from the NADs the pod's annotation selects, with the addresses pinned by
   * the selection's `ips`), so the daemon installs each pod's table before its interfaces exist;
   * `cri` — as `meta-plugin`, but each pod is a sandbox made by RunPodSandbox through a private
   * containerd whose CNI conf is the daemon's (containerd executes the shim, the netns is
   * containerd's, the enforcer finds it with `--netns cri:<socket>`).
   */
  readonly attach?: "direct" | "meta-plugin" | "cri";
}

export class Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly stateDir: string;
  readonly networks: readonly NetworkSpec[];
  readonly attach: "direct" | "meta-plugin" | "cri";
  /** The running `nadguard node` in meta-plugin and cri modes. */
  #meta: MetaPlugin | undefined;
  /** The private containerd in cri mode. */
  containerd: ContainerdNode | undefined;
  /** The agents' ports; SCTP ones only when the kernel has SCTP (see `sctp`). */
  agentPorts: AgentPorts;
  /** Whether SCTP probes can run here, and why not. */
  sctp: { available: boolean; reason: string } = { available: false, reason: "not checked" };
  readonly pods = new Map<string, LabPod>();
  #namespaces: Record<string, Record<string, string>>;
  #eth0Index = 0;
  #generation = 0;
  #destroyed = false;
  /** Runs the plugins inside the switch netns, so that bridges and veth peers are made there. */
  readonly #runner: CniRunner;

  private constructor(prefix: string, dir: string, options: LabOptions) {
    this.prefix = prefix;
    this.dir = dir;
    this.stateDir = join(dir, "state");
    this.networks = options.networks;
    this.attach = options.attach ?? "direct";
    this.agentPorts = options.agentPorts;
    this.#namespaces = { ...options.namespaces };
    this.#runner = new CniRunner({ pluginDirs: [CNI_DIR], cacheDir: join(dir, "cni"), exec: new SpawnPluginExec({ netns: `/run/netns/${this.switchNetns}` }) });
  }

  get switchNetns(): string {
    return `${this.prefix}sw`;
  }

  /** The `--netns` of this lab's pods: a path template, or in cri mode the containerd's CRI socket. */
  get netnsTemplate(): string {
    return this.containerd ? `cri:${this.containerd.paths.socket}` : `/run/netns/${this.prefix}{namespace}_{name}`;
  }

  static async create(options: LabOptions): Promise<Lab> {
    await cleanupStale();
    const prefix = newPrefix();
    const dir = await mkdtemp(join(tmpdir(), `nadguard-e2e-${prefix}`));
    const lab = new Lab(prefix, dir, options);
    try {
      await lab.#init();
    } catch (error) {
      await lab.destroy();
      throw error;
    }
    return lab;
  }

  async #init(): Promise<void> {
    await mkdir(join(this.stateDir, "pods"), { recursive: true });
    await must("ip", ["netns", "add", this.switchNetns]);
    const sw = ["-n", this.switchNetns];
    await must("ip", [...sw, "link", "set", "lo", "up"]);
    await must("ip", [...sw, "link", "add", "ne-br", "type", "bridge"]);
    await must("ip", [...sw, "link", "set", "ne-br", "up"]);
    for (const net of this.networks) {
      if (net.type === "bridge") continue; // the bridge plugin creates its bridge
      // macvlan/ipvlan need a parent link: one end of a veth pair, both ends up.
      await must("ip", [...sw, "link", "add", parentOf(net), "type", "veth", "peer", "name", `${parentOf(net)}p`]);
      await must("ip", [...sw, "link", "set", parentOf(net), "up"]);
      await must("ip", [...sw, "link", "set", `${parentOf(net)}p`, "up"]);
    }
    this.sctp = await sctpSupport(`/run/netns/${this.switchNetns}`);
    if (!this.sctp.available) this.agentPorts = { tcp: this.agentPorts.tcp, udp: this.agentPorts.udp };
    await this.#writeState("namespaces.yaml", this.#namespaceDocs());
    const meta = this.attach !== "direct";
    const nads = this.networks.map((n) => nadObject(n, meta ? join(this.dir, "ipam") : undefined));
    await this.#writeState("nads.yaml", meta ? [...nads, ...nadUseGrants(Object.keys(this.#namespaces))] : nads);
    await this.#writeState("policies.yaml", []);
    const metaOptions = { dir: this.dir, stateDir: this.stateDir, switchNetns: this.switchNetns, cniPath: CNI_DIR, node: NODE, clusterNetwork: clusterNetworkConfig(join(this.dir, "ipam")) };
    if (this.attach === "meta-plugin") this.#meta = await MetaPlugin.start(metaOptions);
    if (this.attach === "cri") {
      // The daemon writes 00-nadguard.conflist into containerd's conf_dir before containerd starts; containerd's stop ends with the daemon's.
      this.containerd = await ContainerdNode.start({
        plugins: { "nadguard-cni": SHIM_SOURCE },
        writeConf: async (paths) => {
          const meta = await MetaPlugin.start({ ...metaOptions, runtimeDirs: { confDir: paths.confDir, binDir: paths.binDir } });
          this.#meta = meta;
          return () => meta.stop();
        },
      });
      await this.containerd.waitCondition("NetworkReady");
    }
  }

  #namespaceDocs(): unknown[] {
    return [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: NETS_NAMESPACE } },
      ...Object.entries(this.#namespaces).map(([name, labels]) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels } })),
    ];
  }

  /**
   * Writes a state file in place. Not atomically by rename: Node 20's recursive fs.watch on Linux
   * (which stateDirSource uses) reports a file replaced by rename only the first time, so a second
   * replacement of the same file would go unseen. The source's debounce (100 ms after the last
   * event) keeps it from reading a half-written file.
   */
  async #writeState(file: string, objects: readonly unknown[]): Promise<void> {
    await writeFile(join(this.stateDir, file), objects.map((o) => stringify(o)).join("---\n"));
  }

  async setPolicies(policies: readonly unknown[]): Promise<void> {
    await this.#writeState("policies.yaml", policies);
  }

  async setNamespaceLabels(name: string, labels: Record<string, string>): Promise<void> {
    this.#namespaces[name] = labels;
    await this.#writeState("namespaces.yaml", this.#namespaceDocs());
  }

  network(name: string): NetworkSpec {
    const net = this.networks.find((n) => `${NETS_NAMESPACE}/${n.name}` === name || n.name === name);
    if (!net) throw new Error(`no network ${name} in the lab`);
    return net;
  }

  /** Creates the pod's netns, its eth0-equivalent and attachments (CNI ADD), its agent, and its state file. */
  async addPod(spec: PodSpec): Promise<LabPod> {
    if (this.#destroyed) throw new Error("lab destroyed");
    const key = `${spec.namespace}/${spec.name}`;
    if (this.containerd && this.#meta) return this.#addSandbox(this.containerd, this.#meta, key, spec);
    const netns = `${this.prefix}${spec.namespace}_${spec.name}`;
    const netnsPath = `/run/netns/${netns}`;
    const containerId = `${netns}-${++this.#generation}`;
    await must("ip", ["netns", "add", netns]);
    // No duplicate address detection: addresses are usable at once (and unique by construction).
    await must("nsenter", [`--net=${netnsPath}`, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad"]);
    await must("ip", ["-n", netns, "link", "set", "lo", "up"]);
    const uid = randomUUID();
    const { eth0, attached } = this.#meta ? await this.#attachThroughShim(this.#meta, spec, { netnsPath, uid, containerId }) : await this.#attachDirectly(spec, netns, netnsPath, containerId);
    const agent = await Agent.start(key, netnsPath, this.agentPorts);
    const pod: LabPod = { key, spec, netns, netnsPath, uid, eth0, attached, agent, containerId };
    this.pods.set(key, pod);
    await this.writePod(pod);
    return pod;
  }

  /**
   * Cri mode: the pod's object into the state (the daemon looks the pod up at ADD), then
   * RunPodSandbox with the config kubelet would build for it; eth0 and the secondaries as the
   * daemon recorded them in network-status.
   */
  async #addSandbox(containerd: ContainerdNode, meta: MetaPlugin, key: string, spec: PodSpec): Promise<LabPod> {
    for (const a of spec.attachments) [a.v4, a.v6].forEach(assertTestAddress);
    const uid = randomUUID();
    const object = await this.#writePodObject(spec, uid, spec.labels, this.#selection(spec.attachments), undefined);
    const sandbox = await containerd.runPod(Pod.parse(object));
    // IPv6 addresses are usable once duplicate address detection is done.
    for (let i = 0; i < 100 && (await must("nsenter", [`--net=${sandbox.netnsPath}`, "ip", "-6", "addr", "show", "tentative"])).trim() !== ""; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const status = await meta.networkStatus(spec.namespace, spec.name);
    const ipsOf = (entries: readonly NetworkStatusEntry[]): string[] => entries.flatMap((s) => s.ips ?? []);
    const cluster = ipsOf(status.filter((s) => s.default === true));
    const attached = status.filter((s) => s.default !== true).map((s): Attached => ({ network: s.name, ifname: s.interface ?? "", ips: s.ips ?? [], ...(s.mac !== undefined && { mac: s.mac }) }));
    ipsOf(status).forEach(assertTestAddress);
    const family = (v6: boolean): string => {
      const ip = cluster.find((a) => a.includes(":") === v6);
      if (!ip) throw new Error(`${key}: the cluster network gave no IPv${v6 ? 6 : 4} address: ${JSON.stringify(status)}`);
      return ip;
    };
    const agent = await Agent.start(key, sandbox.netnsPath, this.agentPorts);
    const pod: LabPod = { key, spec, netns: "", netnsPath: sandbox.netnsPath, uid, eth0: { v4: family(false), v6: family(true) }, attached, agent, containerId: sandbox.id };
    this.pods.set(key, pod);
    return pod;
  }

  async #attachDirectly(spec: PodSpec, netns: string, netnsPath: string, containerId: string): Promise<{ eth0: LabPod["eth0"]; attached: Attached[] }> {
    const eth0 = await this.#addEth0(netns);
    const attached: Attached[] = [];
    for (const a of spec.attachments) attached.push(await this.#cni("ADD", this.network(a.network), netnsPath, containerId, a));
    return { eth0, attached };
  }

  /**
   * Meta-plugin mode: the pod's object goes into the state first (the daemon looks the pod up at
   * ADD), then the shim's ADD; eth0's addresses are the runtime's result, the secondaries' what
   * the daemon recorded in network-status.
   */
  async #attachThroughShim(meta: MetaPlugin, spec: PodSpec, sandbox: { netnsPath: string; uid: string; containerId: string }): Promise<{ eth0: LabPod["eth0"]; attached: Attached[] }> {
    for (const a of spec.attachments) [a.v4, a.v6].forEach(assertTestAddress);
    const ref = { namespace: spec.namespace, name: spec.name, ...sandbox };
    await this.#writePodObject(spec, sandbox.uid, spec.labels, this.#selection(spec.attachments), undefined);
    const added = await meta.shim("ADD", ref, {});
    if (added.code !== 0) throw new Error(`nadguard-cni ADD for ${spec.namespace}/${spec.name} exited ${added.code}: ${added.stdout}${added.stderr}\n${meta.log}`);
    const result = JSON.parse(added.stdout) as { ips?: { address: string }[] };
    const eth0Ips = (result.ips ?? []).map((ip) => ip.address.split("/")[0]!);
    eth0Ips.forEach(assertTestAddress);
    const status = await meta.networkStatus(spec.namespace, spec.name);
    const attached = status
      .filter((s) => s.default !== true)
      .map((s): Attached => ({ network: s.name, ifname: s.interface ?? "", ips: s.ips ?? [], ...(s.mac !== undefined && { mac: s.mac }) }));
    attached.flatMap((a) => a.ips).forEach(assertTestAddress);
    const family = (v6: boolean): string => {
      const ip = eth0Ips.find((a) => a.includes(":") === v6);
      if (!ip) throw new Error(`${spec.namespace}/${spec.name}: the cluster network gave no IPv${v6 ? 6 : 4} address: ${added.stdout}`);
      return ip;
    };
    return { eth0: { v4: family(false), v6: family(true) }, attached };
  }

  /** The pod's `k8s.v1.cni.cncf.io/networks` in meta-plugin mode: JSON elements pinning each attachment's addresses by `ips`. */
  #selection(attachments: readonly Attachment[]): string {
    return JSON.stringify(
      attachments.map((a) => {
        const net = this.network(a.network);
        return { name: net.name, namespace: NETS_NAMESPACE, interface: net.ifname, ips: [`${a.v4}/${prefixLength(net.v4Subnet)}`, `${a.v6}/${prefixLength(net.v6Subnet)}`] };
      }),
    );
  }

  async #addEth0(netns: string): Promise<{ v4: string; v6: string }> {
    const index = ++this.#eth0Index;
    const host = `ne-${index}`;
    const v4 = `198.19.0.${index}`;
    const v6 = `fd00:e::${index.toString(16)}`;
    await must("ip", ["-n", this.switchNetns, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    await must("ip", ["-n", this.switchNetns, "link", "set", host, "master", "ne-br", "up"]);
    await must("ip", ["-n", netns, "addr", "add", `${v4}/24`, "dev", "eth0"]);
    await must("ip", ["-n", netns, "addr", "add", `${v6}/64`, "dev", "eth0"]);
    await must("ip", ["-n", netns, "link", "set", "eth0", "up"]);
    return { v4, v6 };
  }

  /** CNI ADD or DEL of one attachment through src/cni, inside the switch netns. */
  async #cni(command: "ADD" | "DEL", net: NetworkSpec, netnsPath: string, containerId: string, a: Attachment): Promise<Attached> {
    assertTestAddress(a.v4);
    assertTestAddress(a.v6);
    const list = parseNetworkConfig(cniConfig(net, join(this.dir, "ipam"), a), `lab network ${net.name}`);
    if (!list.ok) throw new Error(list.error.map((p) => `${p.path}: ${p.message}`).join("; "));
    const runtime = { containerId, netns: netnsPath, ifname: net.ifname };
    const failed = (message: string): Error => new Error(`CNI ${command} ${net.type} for ${containerId}/${net.ifname} failed: ${message}`);
    const network = `${NETS_NAMESPACE}/${net.name}`;
    if (command === "DEL") {
      const deleted = await this.#runner.del(list.value, runtime);
      if (!deleted.ok) throw failed(formatCniError(deleted.error));
      return { network, ifname: net.ifname, ips: [] };
    }
    const added = await this.#runner.add(list.value, runtime);
    const result = added.ok ? convertResult(added.value, "1.0.0") : added;
    if (!result.ok) throw failed(formatCniError(result.error));
    const ips = (result.value.ips ?? []).map((ip) => ip.address.split("/")[0]!);
    ips.forEach(assertTestAddress);
    const mac = result.value.interfaces?.find((i) => i.sandbox !== undefined && i.name === net.ifname)?.mac;
    return { network, ifname: net.ifname, ips, ...(mac !== undefined && { mac }) };
  }

  /** Writes (or rewrites, e.g. after a relabel) the pod's object in the state directory. */
  async writePod(pod: LabPod, labels: Record<string, string> = pod.spec.labels): Promise<void> {
    if (this.#meta) {
      // The network-status is the daemon's, in the state directory's overlay.
      await this.#writePodObject(pod.spec, pod.uid, labels, this.#selection(pod.spec.attachments), undefined);
      return;
    }
    const status = [
      { name: "cluster", interface: "eth0", ips: [pod.eth0.v4, pod.eth0.v6], default: true },
      ...pod.attached.map((a) => ({ name: a.network, interface: a.ifname, ips: a.ips, ...(a.mac !== undefined && { mac: a.mac }) })),
    ];
    await this.#writePodObject(pod.spec, pod.uid, labels, pod.attached.map((a) => `${a.network}@${a.ifname}`).join(","), JSON.stringify(status));
  }

  /** Writes the pod's object in the state directory; returns it. */
  async #writePodObject(spec: PodSpec, uid: string, labels: Record<string, string>, networks: string, networkStatus: string | undefined): Promise<Record<string, unknown>> {
    const object = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: spec.name,
        namespace: spec.namespace,
        uid,
        labels,
        annotations: { "k8s.v1.cni.cncf.io/networks": networks, ...(networkStatus !== undefined && { "k8s.v1.cni.cncf.io/network-status": networkStatus }) },
      },
      spec: { nodeName: NODE, containers: [{ name: "app", image: "registry.example/app:1", ...(spec.ports && { ports: spec.ports }) }] },
      status: { phase: "Running" },
    };
    await this.#writeState(join("pods", `${spec.namespace}_${spec.name}.yaml`), [object]);
    return object;
  }

  async relabelPod(key: string, labels: Record<string, string>): Promise<void> {
    const pod = this.pod(key);
    const updated: LabPod = { ...pod, spec: { ...pod.spec, labels } };
    this.pods.set(key, updated);
    await this.writePod(updated);
  }

  pod(key: string): LabPod {
    const pod = this.pods.get(key);
    if (!pod) throw new Error(`no pod ${key} in the lab`);
    return pod;
  }

  /** Tears a pod down as the runtime would: agent stopped, CNI DEL per attachment, netns deleted; `keepState` leaves its object. */
  async removePod(key: string, options: { keepState?: boolean } = {}): Promise<void> {
    const pod = this.pod(key);
    this.pods.delete(key);
    await pod.agent.stop();
    if (this.containerd) {
      // As kubelet: StopPodSandbox, RemovePodSandbox (containerd's DELs go to the daemon; containerd removes the netns).
      await this.containerd.removePod(pod.containerId);
    } else if (this.#meta) {
      const deleted = await this.#meta.shim("DEL", { namespace: pod.spec.namespace, name: pod.spec.name, uid: pod.uid, containerId: pod.containerId, netnsPath: pod.netnsPath }, {});
      if (deleted.code !== 0) throw new Error(`nadguard-cni DEL for ${key} exited ${deleted.code}: ${deleted.stdout}${deleted.stderr}`);
    }
    for (const [i, a] of this.#meta ? [] : pod.spec.attachments.entries()) {
      await this.#cni("DEL", this.network(a.network), pod.netnsPath, pod.containerId, a).catch((error: Error) => {
        throw new Error(`${error.message} (attachment ${i})`);
      });
    }
    if (!this.containerd) await must("ip", ["netns", "delete", pod.netns]);
    if (!options.keepState) await rm(join(this.stateDir, "pods", `${pod.spec.namespace}_${pod.spec.name}.yaml`), { force: true });
  }

  /** A new sandbox for the pod: new netns, new addresses (`attachments`), new uid; its state object rewritten. */
  async restartPod(key: string, attachments: readonly Attachment[]): Promise<LabPod> {
    const pod = this.pod(key);
    await this.removePod(key, { keepState: true });
    return this.addPod({ ...pod.spec, attachments });
  }

  /** Probes from a pod's agent. */
  probe(from: string, request: ProbeRequest): Promise<ProbeResult> {
    assertTestAddress(request.host);
    return this.pod(from).agent.probe(request);
  }

  /** Removes everything of the run: agents, attachments (CNI DEL), namespaces, temp dir. Never throws; idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await Promise.all([...this.pods.values()].map((p) => p.agent.stop().catch(() => undefined)));
    const meta = this.#meta;
    // Cri mode: the node harness stops and removes the sandboxes through the CRI, then containerd, then the daemon.
    if (this.containerd) await this.containerd.stop();
    await Promise.all(
      [...(this.containerd ? [] : this.pods.values())].map(async (p) => {
        if (meta) await meta.shim("DEL", { namespace: p.spec.namespace, name: p.spec.name, uid: p.uid, containerId: p.containerId, netnsPath: p.netnsPath }, {}).catch(() => undefined);
        else for (const a of p.spec.attachments) await this.#cni("DEL", this.network(a.network), p.netnsPath, p.containerId, a).catch(() => undefined);
      }),
    );
    await meta?.stop();
    const names = (await run("ip", ["netns", "list"])).stdout
      .split("\n")
      .map((l) => l.split(" ")[0]!)
      .filter((n) => n.startsWith(this.prefix));
    for (const name of names) await run("ip", ["netns", "delete", name]);
    this.pods.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}

function parentOf(net: NetworkSpec): string {
  return `np-${net.name}`.slice(0, 13);
}

/**
 * The NAD. In meta-plugin mode (`dataDir` given) its host-local keeps leases in the lab's dir and
 * the plugin declares the `ips` capability, so that a selection's `ips` pin the pod's addresses.
 */
function nadObject(net: NetworkSpec, dataDir?: string): unknown {
  const ranges = [[{ subnet: net.v4Subnet }], [{ subnet: net.v6Subnet }]];
  const config = dataDir === undefined ? { ...pluginFields(net), ipam: { type: "host-local", ranges } } : { ...pluginFields(net), capabilities: { ips: true }, ipam: { type: "host-local", dataDir, ranges } };
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name: net.name, namespace: NETS_NAMESPACE },
    spec: { config: JSON.stringify(config) },
  };
}

function pluginFields(net: NetworkSpec): Record<string, unknown> {
  const common = { cniVersion: "1.0.0", name: net.name, type: net.type };
  if (net.type === "bridge") return { ...common, bridge: `nb-${net.name}`.slice(0, 15) };
  if (net.type === "macvlan") return { ...common, master: parentOf(net), mode: "bridge" };
  return { ...common, master: parentOf(net), mode: "l2" };
}

/**
 * Meta-plugin mode's RBAC: the lab's NADs live in namespace `nets`, so each pod namespace's
 * `default` service account is granted verb `use` there (README, "Authorization"), as a cluster admin would.
 */
function nadUseGrants(namespaces: readonly string[]): unknown[] {
  return [
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: NAD_USER_CLUSTER_ROLE },
      rules: [{ apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"], verbs: ["use"] }],
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "lab-pods-use-nets", namespace: NETS_NAMESPACE },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: NAD_USER_CLUSTER_ROLE },
      subjects: namespaces.map((ns) => ({ kind: "ServiceAccount", name: "default", namespace: ns })),
    },
  ];
}

/** The cluster network of meta-plugin mode: the bridge plugin on the lab's eth0 bridge, host-local in 198.19.0.0/24 and fd00:e::/64. */
function clusterNetworkConfig(dataDir: string): unknown {
  return {
    cniVersion: "1.0.0",
    name: "cluster",
    plugins: [{ type: "bridge", bridge: "ne-br", ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "198.19.0.0/24" }], [{ subnet: "fd00:e::/64" }]] } }],
  };
}

function prefixLength(subnet: string): string {
  return subnet.split("/")[1]!;
}

/** The NAD's config as the runtime hands it to the plugin, with host-local pinned to the pod's addresses. */
function cniConfig(net: NetworkSpec, dataDir: string, a: Attachment): unknown {
  return {
    ...pluginFields(net),
    ipam: {
      type: "host-local",
      dataDir,
      ranges: [[{ subnet: net.v4Subnet, rangeStart: a.v4, rangeEnd: a.v4 }], [{ subnet: net.v6Subnet, rangeStart: a.v6, rangeEnd: a.v6 }]],
    },
  };
}

/** Whether the kernel can make a link of this type (ipvlan and others may be missing as modules); the reason when not. */
export async function kernelLinkSupport(type: "ipvlan" | "macvlan"): Promise<{ available: boolean; reason: string }> {
  const netns = `${newPrefix()}probe`;
  await must("ip", ["netns", "add", netns]);
  try {
    await must("ip", ["-n", netns, "link", "add", "parent", "type", "veth", "peer", "name", "peer"]);
    const made = await run("ip", ["-n", netns, "link", "add", "link", "parent", "name", "child", "type", type]);
    return { available: made.code === 0, reason: made.stderr.trim() };
  } finally {
    await run("ip", ["netns", "delete", netns]);
  }
}

/** Whether SCTP sockets can be made here (kernel module) by the python3 helper; the reason when not. */
export async function sctpSupport(netnsPath: string): Promise<{ available: boolean; reason: string }> {
  const r = await run("nsenter", [`--net=${netnsPath}`, "python3", "-c", "import socket; socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_SCTP)"]);
  if (r.code === 0) return { available: true, reason: "" };
  const reason = r.code === -1 || /No such file|not found/.test(r.stderr) ? "python3 is not installed" : (r.stderr.trim().split("\n").at(-1) ?? "unknown");
  return { available: false, reason };
}
