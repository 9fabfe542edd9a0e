// The node daemon's CNI handler (`nadguard node`): what the socket
// (server.ts) runs for each call the shim forwards.
// - ADD: the pod from CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID) found in the cluster
//   state (waiting briefly for a lagging one), else built from the pod annotations containerd sends
//   under `io.kubernetes.cri.pod-annotations`; a UID that differs from the pod's is refused. Then
//   the same decision as admission (the `authorize` seam: the caller wires admission's code), the
//   delegate list as Multus builds it (plan.ts), the pod's nft table installed in CNI_NETNS beside the
//   cluster network's delegate and before the first secondary one runs (the `installTable` seam:
//   the policy compiler and nft), the delegates
//   (attach.ts), network-status recorded, and the cluster network's result answered.
// - DEL: every cached delegate in reverse (attach.ts), whatever is gone; never fails.
// - CHECK: each cached delegate's CHECK; STATUS: ready and the cluster network found; GC: DEL of
//   every cached attachment whose container is not in `cni.dev/valid-attachments`.
// - At start (sweep): DEL of every cached container whose netns is gone (a call cut short by the
//   daemon's death, whose runtime DEL found no daemon).
// One container's calls run one after another, the whole ADD included (a runtime that gives up on a
// slow ADD sends DEL while it runs). The handler knows no Kubernetes client, no admission and no nft:
// those come in through the seams, so that the import direction of README's Architecture section holds.
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { type Result, fail, formatProblem, ok } from "../api/errors.js";
import { ANNOTATION_DEFAULT_NETWORK, ANNOTATION_NETWORKS, ANNOTATION_NETWORK_STATUS, ANNOTATION_RESOURCE_NAME, type Pod, objectKey } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { parseDefaultNetwork } from "../networks/default-network.js";
import { type NetworkSelection, parseNetworkSelections } from "../networks/selection.js";
import { type AttachedDelegate, type Attachments, KeyedQueue, type PlannedDelegate, type PodRef } from "./attach.js";
import { deviceAssigner, podDevices, readDeviceCheckpoint } from "./checkpoint.js";
import { NADGUARD_CONF_FILE, findClusterNetworkConf } from "./conf-file.js";
import { type JsonObject, parseNetworkConfig } from "./config.js";
import type { DaemonConfig } from "./daemon-config.js";
import { CNI_ERROR, type CniCommand, type CniError, cniError } from "./errors.js";
import { type NetworkSource, gatewayFilters, planDelegates } from "./plan.js";
import { type CniCall, k8sArgs } from "./request.js";
import type { CniResult } from "./result.js";
import { applyGatewayFilter } from "./routes.js";
import { type RuntimeCapabilities, parseRuntimeCapabilities } from "./runtime-config.js";
import type { CniRunner } from "./runner.js";
import type { CniHandler } from "./server.js";
import { type NetworkStatus, networkStatuses } from "./status.js";

export type DaemonLogLevel = "error" | "warn" | "info" | "debug";
export type DaemonLog = (level: DaemonLogLevel, message: string, fields?: Readonly<Record<string, unknown>>) => void;

/** How a call ended, for the metrics: `ok`, `denied`, or `error`. */
export type CallOutcome = "ok" | "denied" | "error";

export interface NodeDaemonOptions {
  /** spec.nodeName given to a pod built from the runtime's annotations. */
  readonly node: string;
  readonly config: DaemonConfig;
  /** The runner and attachments for a call's CNI_PATH (binDir is searched before it). */
  readonly engine: (pluginPath: readonly string[]) => { readonly runner: CniRunner; readonly attachments: Attachments };
  /** The newest cluster snapshot; undefined before the first load. */
  readonly snapshot: () => Snapshot | undefined;
  /** Whether the cluster state is loaded. */
  readonly stateReady: () => boolean;
  /** The admission decision for the pod as it attaches: nothing, or the denial message admission gives. */
  readonly authorize: (pod: Pod, snapshot: Snapshot) => Promise<Result<void, string>>;
  /**
   * Installs the table the pod's policies give it now in `netns`; `snapshot` holds the pod with the
   * network-status its delegates are about to get (interfaces, no addresses yet). Returns what it did.
   */
  readonly installTable: (podKey: string, snapshot: Snapshot, netns: string) => Promise<Result<string, string>>;
  /** Records the pod's network-status; undefined removes it. */
  readonly recordStatus: (pod: PodRef, statuses: readonly NetworkStatus[] | undefined) => Promise<Result<void, string>>;
  /** The pod's sandbox netns after a successful ADD; undefined after its DEL. */
  readonly onSandbox?: (pod: PodRef, netns: string | undefined) => void;
  readonly log: DaemonLog;
  /** How long ADD waits for a pod missing from the cluster state. Default 2000 ms. */
  readonly podWaitMs?: number;
  /** Each call's outcome and time; the error of a failed one. */
  readonly observe?: (command: CniCommand, outcome: CallOutcome, seconds: number, error?: CniError) => void;
}

export const DEFAULT_POD_WAIT_MS = 2000;

interface ClusterSource {
  readonly source: NetworkSource;
  /** The config file it came from, when it came from one. */
  readonly file?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A pod built from what the runtime says about it, when the cluster state does not have it. */
function podFromAnnotations(ref: PodRef, annotations: Readonly<Record<string, string>>, node: string): Pod {
  return { apiVersion: "v1", kind: "Pod", metadata: { namespace: ref.namespace, name: ref.name, ...(ref.uid && { uid: ref.uid }), annotations: { ...annotations } }, spec: { nodeName: node, containers: [] } } as Pod;
}

/** The snapshot with the pod holding the network-status its delegates will get: interfaces known, addresses not yet. */
export function withPlannedStatus(snapshot: Snapshot, pod: Pod, podKey: string, delegates: readonly PlannedDelegate[]): Snapshot {
  const status = delegates.map((d) => ({ name: d.name, interface: d.ifname, ips: [], default: d.clusterNetwork }));
  const annotations = { ...(pod.metadata.annotations ?? {}), [ANNOTATION_NETWORK_STATUS]: JSON.stringify(status) };
  const planned = { ...pod, metadata: { ...pod.metadata, annotations } } as Pod;
  return { ...snapshot, pods: new Map(snapshot.pods).set(podKey, planned) };
}

export class NodeDaemon implements CniHandler {
  readonly #o: NodeDaemonOptions;
  readonly #queue = new KeyedQueue();
  #terminating = false;
  #indicatorPresent = true;
  #inFlight = 0;
  #idle: (() => void)[] = [];

  constructor(options: NodeDaemonOptions) {
    this.#o = options;
  }

  /** Ready: the cluster state loaded, the readiness indicator file present when one is set, and no SIGTERM yet. */
  ready(): boolean {
    return !this.#terminating && this.#o.stateReady() && this.#indicatorPresent;
  }

  /** Re-reads whether the readiness indicator file exists (the caller polls it). */
  async refreshIndicator(): Promise<void> {
    const file = this.#o.config.readinessindicatorfile;
    this.#indicatorPresent = file === undefined || (await readFile(file).then(() => true, () => false));
  }

  /** After SIGTERM: /readyz answers 503, new calls that need readiness are refused by the shim. */
  terminate(): void {
    this.#terminating = true;
  }

  /** Resolves once no call is being served, or after `timeoutMs`; true when none is left. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.#inFlight === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.#idle.push(() => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const drained = await Promise.race([idle, late]);
    clearTimeout(timer);
    return drained;
  }

  async handle(call: CniCall): Promise<Result<CniResult | undefined, CniError>> {
    const started = performance.now();
    const run = (): Promise<Result<CniResult | undefined, CniError>> => {
      switch (call.command) {
        case "ADD":
          return this.#add(call);
        case "DEL":
          return this.#del(call).then(() => ok(undefined));
        case "CHECK":
          return this.#o.engine(call.path).attachments.check({ containerId: call.containerId, netns: call.netns, ifname: call.ifname, args: call.args }).then((r) => (r.ok ? ok(undefined) : r));
        case "STATUS":
          return this.#status(call);
        case "GC":
          return this.#gc(call);
        default:
          return Promise.resolve(ok(undefined));
      }
    };
    const keyed = call.containerId !== "" && (call.command === "ADD" || call.command === "DEL" || call.command === "CHECK");
    this.#inFlight++;
    let result: Result<CniResult | undefined, CniError>;
    try {
      result = keyed ? await this.#queue.run(call.containerId, run) : await run();
    } finally {
      if (--this.#inFlight === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
    const outcome: CallOutcome = result.ok ? "ok" : result.error.code === CNI_ERROR.denied ? "denied" : "error";
    this.#o.observe?.(call.command, outcome, (performance.now() - started) / 1000, result.ok ? undefined : result.error);
    return result;
  }

  async #add(call: CniCall): Promise<Result<CniResult, CniError>> {
    const phases: Record<string, number> = {};
    let mark = performance.now();
    const phase = (name: string): void => {
      const now = performance.now();
      phases[name] = Math.round((now - mark) * 10) / 10;
      mark = now;
    };
    const { namespace, name, uid } = call.k8s;
    if (namespace === undefined || name === undefined) {
      return fail(cniError(CNI_ERROR.invalidEnvironment, "CNI_ARGS names no pod (K8S_POD_NAMESPACE and K8S_POD_NAME): nadguard attaches Kubernetes pods only"));
    }
    const ref: PodRef = { namespace, name, ...(uid !== undefined && { uid }) };
    const podKey = objectKey(namespace, name);
    const prefix = `[${podKey}${uid ? `/${uid}` : ""}]`;
    const runtime = parseRuntimeCapabilities(call.config.runtimeConfig, "runtimeConfig of the network config (stdin)");
    if (!runtime.ok) return fail(cniError(CNI_ERROR.invalidNetworkConfig, `${prefix} ${runtime.error.map(formatProblem).join("; ")}`));
    const found = await this.#findPod(ref, runtime.value.podAnnotations);
    if (!found.ok) return fail(cniError(CNI_ERROR.unknownContainer, `${prefix} ${found.error}`));
    const { pod, snapshot } = found.value;
    if (uid !== undefined && pod.metadata.uid !== undefined && pod.metadata.uid !== uid) {
      return fail(
        cniError(CNI_ERROR.invalidEnvironment, `${prefix} the runtime's sandbox is for pod UID ${uid}, but pod ${podKey} in the cluster state has UID ${pod.metadata.uid} (deleted and created again?); not attaching it`),
      );
    }
    phase("pod");
    const decision = await this.#o.authorize(pod, snapshot);
    phase("decision");
    if (!decision.ok) {
      this.#o.log("warn", `${prefix} denied: ${decision.error}`, { pod: podKey, containerId: call.containerId });
      return fail(cniError(CNI_ERROR.denied, decision.error));
    }
    const delegates = await this.#plan(call, pod, snapshot, runtime.value);
    if (!delegates.ok) return fail(cniError(CNI_ERROR.invalidNetworkConfig, `${prefix} ${delegates.error}`));

    phase("plan");
    // The pod's table is installed beside the cluster network's delegate, from the moment its plugin
    // process is started (eth0 needs no table: the rules match the secondary interfaces only), and
    // is in the netns before the first secondary delegate runs.
    const installTable = async (): Promise<Result<void, CniError>> => {
      const started = performance.now();
      const table = await this.#o.installTable(podKey, withPlannedStatus(snapshot, pod, podKey, delegates.value), call.netns).catch((error: Error): Result<string, string> => fail(error.message));
      phases.table = Math.round((performance.now() - started) * 10) / 10;
      if (!table.ok) return fail(cniError(CNI_ERROR.internal, `${prefix} cannot install table inet nadguard in ${call.netns} before attaching: ${table.error}`));
      this.#o.log("debug", `${prefix} ${table.value}`, { pod: podKey, netns: call.netns });
      return ok(undefined);
    };

    const filters = gatewayFilters(delegates.value);
    const byIfname = new Map((filters.ok ? filters.value : []).map((f) => [f.ifname, f]));
    const added = await this.#o.engine(call.path).attachments.add({
      containerId: call.containerId,
      netns: call.netns,
      args: call.args,
      pod: ref,
      delegates: delegates.value,
      besideClusterNetwork: installTable,
      afterDelegate: async (delegate) => {
        const filter = byIfname.get(delegate.ifname);
        if (filter === undefined || (!filter.filterV4 && !filter.filterV6 && filter.gateways.length === 0)) return ok(undefined);
        return applyGatewayFilter(call.netns, filter);
      },
    });
    if (!added.ok) {
      for (const line of [...added.error.cleanup, ...added.error.warnings]) this.#o.log("warn", `${prefix} undoing the ADD: ${line}`, { pod: podKey, containerId: call.containerId });
      this.#o.log("error", added.error.error.msg, { pod: podKey, containerId: call.containerId });
      return fail(added.error.error);
    }
    phase("delegates");
    await this.#recordStatus(ref, added.value, prefix);
    phase("status");
    this.#o.onSandbox?.(ref, call.netns);
    const attached = added.value.map((a) => `${a.delegate.name}@${a.delegate.ifname}`).join(", ");
    this.#o.log("info", `${prefix} attached ${attached}`, { pod: podKey, containerId: call.containerId, netns: call.netns, delegates: added.value.length, phasesMs: phases });
    return ok(added.value[0]!.result);
  }

  async #recordStatus(ref: PodRef, attached: readonly AttachedDelegate[], prefix: string): Promise<void> {
    const statuses = attached.flatMap((a) => networkStatuses(a.result, a.delegate.name, a.delegate.clusterNetwork, a.delegate.deviceId ? { type: "pci", version: "1.1.0", pci: { "pci-address": a.delegate.deviceId } } : undefined));
    const recorded = await this.#o.recordStatus(ref, statuses);
    // The pod is attached: a status that cannot be written is the enforcer's and the user's loss, not the pod's.
    if (!recorded.ok) this.#o.log("error", `${prefix} cannot record network-status: ${recorded.error}`, { pod: objectKey(ref.namespace, ref.name) });
  }

  /** The pod in the cluster state, waiting up to podWaitMs for it; else from the runtime's annotations. */
  async #findPod(ref: PodRef, annotations: Readonly<Record<string, string>> | undefined): Promise<Result<{ pod: Pod; snapshot: Snapshot }, string>> {
    const key = objectKey(ref.namespace, ref.name);
    const waitMs = this.#o.podWaitMs ?? DEFAULT_POD_WAIT_MS;
    const deadline = performance.now() + waitMs;
    for (;;) {
      const snapshot = this.#o.snapshot();
      const pod = snapshot?.pods.get(key);
      if (snapshot !== undefined && pod !== undefined && (ref.uid === undefined || pod.metadata.uid === undefined || pod.metadata.uid === ref.uid || performance.now() >= deadline)) {
        return ok({ pod, snapshot });
      }
      if (performance.now() >= deadline) break;
      await sleep(Math.min(100, waitMs));
    }
    const snapshot = this.#o.snapshot();
    if (snapshot === undefined) return fail("the cluster state is not loaded yet");
    if (annotations !== undefined) {
      this.#o.log("info", `pod ${key} is not in the cluster state after ${waitMs} ms; using the annotations the runtime sent`, { pod: key });
      return ok({ pod: podFromAnnotations(ref, annotations, this.#o.node), snapshot });
    }
    return fail(`pod ${key} is not in the cluster state (waited ${waitMs} ms), and the runtime sent no pod annotations (capability io.kubernetes.cri.pod-annotations)`);
  }

  /** The delegates of the pod, as Multus lists them; one message with every problem. */
  async #plan(call: CniCall, pod: Pod, snapshot: Snapshot, runtime: RuntimeCapabilities): Promise<Result<PlannedDelegate[], string>> {
    const cfg = this.#o.config;
    const namespace = pod.metadata.namespace ?? "default";
    const annotations = pod.metadata.annotations ?? {};
    const problems: string[] = [];

    const cluster = await this.#clusterNetwork(call, annotations, snapshot);
    if (!cluster.ok) return cluster;

    const defaultNetworks: NetworkSource[] = [];
    if (!cfg.systemNamespaces.includes(namespace)) {
      for (const name of cfg.defaultNetworks) {
        const key = name.includes("/") ? name : objectKey(cfg.multusNamespace, name);
        const source = nadSource(snapshot, key);
        if (source === undefined) problems.push(`defaultNetworks: NetworkAttachmentDefinition ${key} does not exist`);
        else defaultNetworks.push(source);
      }
    }

    const selections: { selection: NetworkSelection; network: NetworkSource }[] = [];
    const text = annotations[ANNOTATION_NETWORKS];
    if (text !== undefined) {
      const parsed = parseNetworkSelections(text, namespace);
      if (!parsed.ok) return fail(parsed.error.map(formatProblem).join("; "));
      for (const { selection, key } of parsed.value) {
        if (cfg.namespaceIsolation && selection.namespace !== namespace && !cfg.globalNamespaces.includes(selection.namespace)) {
          problems.push(`element "${selection.written}": namespace isolation (namespaceIsolation) lets a pod of ${namespace} use the NADs of its own namespace and of ${cfg.globalNamespaces.join(", ") || "no other"} only, not ${key}`);
          continue;
        }
        const source = nadSource(snapshot, key);
        if (source === undefined) problems.push(`element "${selection.written}": NetworkAttachmentDefinition ${key} does not exist`);
        else selections.push({ selection, network: source });
      }
    }
    if (problems.length > 0) return fail(problems.join("; "));

    const devices = defaultNetworks.some((s) => s.resourceName) || selections.some((s) => s.network.resourceName) ? await readDeviceCheckpoint(cfg.deviceCheckpoint) : ok([]);
    if (!devices.ok) return fail(devices.error.map(formatProblem).join("; "));
    const planned = planDelegates({
      ifname: call.ifname,
      clusterNetwork: cluster.value.source,
      defaultNetworks,
      selections,
      ...(isObject(call.config.runtimeConfig) && { runtimeConfig: call.config.runtimeConfig }),
      runtime,
      nextDevice: deviceAssigner(podDevices(devices.value, pod.metadata.uid ?? call.k8s.uid ?? "")),
    });
    return planned.ok ? planned : fail(planned.error.map(formatProblem).join("; "));
  }

  /**
   * The cluster network: the pod's `v1.multus-cni.io/default-network` NAD; else `clusterNetwork`
   * of the daemon config, else of the shim's config (00-nadguard.conflist), else the first conf
   * of multusAutoconfigDir. A `clusterNetwork` is a file path, a conf `name` in that directory,
   * or a NAD (`ns/name`, or a name in multusNamespace).
   */
  async #clusterNetwork(call: CniCall, annotations: Readonly<Record<string, string>>, snapshot: Snapshot): Promise<Result<ClusterSource, string>> {
    const cfg = this.#o.config;
    const override = annotations[ANNOTATION_DEFAULT_NETWORK];
    if (override !== undefined) {
      const parsed = parseDefaultNetwork(override, cfg.multusNamespace);
      if (!parsed.ok) return fail(parsed.error.map(formatProblem).join("; "));
      const key = objectKey(parsed.value.namespace, parsed.value.name);
      const source = nadSource(snapshot, key);
      return source === undefined ? fail(`${ANNOTATION_DEFAULT_NETWORK}: NetworkAttachmentDefinition ${key} does not exist`) : ok({ source });
    }
    const named = cfg.clusterNetwork ?? (typeof call.config.clusterNetwork === "string" && call.config.clusterNetwork !== "" ? call.config.clusterNetwork : undefined);
    if (named === undefined) {
      const { found, skipped } = await findClusterNetworkConf(cfg.multusAutoconfigDir);
      if (found === undefined) return fail(`no cluster network: ${cfg.multusAutoconfigDir} holds no CNI config besides ${NADGUARD_CONF_FILE}${skipped.length ? ` (skipped: ${skipped.join("; ")})` : ""}`);
      return ok({ source: { name: found.config.name, config: found.config.bytes, where: found.path }, file: found.path });
    }
    if (named.startsWith("/")) return confFile(named);
    const byName = await confNamed(cfg.multusAutoconfigDir, named);
    if (byName !== undefined) return byName;
    const key = named.includes("/") ? named : objectKey(cfg.multusNamespace, named);
    const source = nadSource(snapshot, key);
    return source === undefined ? fail(`clusterNetwork "${named}" is neither a config in ${cfg.multusAutoconfigDir} nor a NetworkAttachmentDefinition (${key})`) : ok({ source });
  }

  /** The cluster network's config file, for STATUS. */
  async clusterNetworkFile(call: CniCall): Promise<Result<string, string>> {
    const snapshot = this.#o.snapshot();
    if (snapshot === undefined) return fail("the cluster state is not loaded yet");
    const found = await this.#clusterNetwork(call, {}, snapshot);
    return found.ok ? ok(found.value.file ?? found.value.source.where) : found;
  }

  async #del(call: CniCall): Promise<void> {
    const report = await this.#o.engine(call.path).attachments.del({ containerId: call.containerId, netns: call.netns, ifname: call.ifname, args: call.args });
    const { namespace, name, uid } = call.k8s;
    const pod = namespace !== undefined && name !== undefined ? objectKey(namespace, name) : undefined;
    const fields = { containerId: call.containerId, ...(pod && { pod }) };
    for (const warning of report.warnings) this.#o.log("warn", `DEL of ${call.containerId}: ${warning}`, fields);
    if (report.source === "none") return;
    this.#o.log("info", `DEL of ${call.containerId}${pod ? ` (${pod})` : ""}: deleted ${report.deleted.join(", ")} (from ${report.source === "nadguard" ? "nadguard's" : report.source === "multus" ? "Multus'" : "the result"} cache)`, fields);
    if (namespace === undefined || name === undefined) return;
    const ref: PodRef = { namespace, name, ...(uid !== undefined && { uid }) };
    const removed = await this.#o.recordStatus(ref, undefined);
    if (!removed.ok) this.#o.log("warn", `DEL of ${call.containerId}: cannot remove the network-status of ${pod}: ${removed.error}`, fields);
    this.#o.onSandbox?.(ref, undefined);
  }

  async #status(call: CniCall): Promise<Result<undefined, CniError>> {
    if (!this.ready()) return fail(cniError(CNI_ERROR.pluginNotAvailable, this.#terminating ? "the nadguard daemon is stopping" : "the nadguard daemon is not ready: the cluster state is not loaded or the readiness indicator file is missing"));
    const snapshot = this.#o.snapshot()!;
    const cluster = await this.#clusterNetwork(call, {}, snapshot);
    if (!cluster.ok) return fail(cniError(CNI_ERROR.pluginNotAvailable, cluster.error));
    const list = parseNetworkConfig(cluster.value.source.config, cluster.value.source.where);
    if (!list.ok) return fail(cniError(CNI_ERROR.pluginNotAvailable, list.error.map(formatProblem).join("; ")));
    const status = await this.#o.engine(call.path).runner.status(list.value);
    return status.ok ? ok(undefined) : fail(status.error);
  }

  /** GC: DEL of every container nadguard has a delegate cache for that is not in `cni.dev/valid-attachments`. */
  async #gc(call: CniCall): Promise<Result<undefined, CniError>> {
    const valid = call.config["cni.dev/valid-attachments"];
    if (!Array.isArray(valid)) return fail(cniError(CNI_ERROR.invalidNetworkConfig, 'GC needs "cni.dev/valid-attachments", a list of {"containerID", "ifname"}'));
    const keep = new Set(valid.flatMap((a) => (isObject(a) && typeof a.containerID === "string" ? [a.containerID] : [])));
    const stale = (await this.#cachedContainers()).filter((id) => !keep.has(id));
    await this.#delCached(stale, call.path, call.ifname || "eth0");
    if (stale.length > 0) this.#o.log("info", `GC: deleted the attachments of ${stale.length} container(s) the runtime no longer has: ${stale.join(", ")}`, { containers: stale.length });
    return ok(undefined);
  }

  /**
   * At start, before serving: DEL of every container with a delegate cache whose sandbox's netns is
   * gone or was never recorded. An ADD cut short by the daemon's death (SIGKILL, OOM) leaves leases
   * and caches, and the runtime's DEL that follows finds no daemon (the shim reports success), so
   * nothing else would ever undo them. The delegates are looked up in `binDir`. Returns the containers.
   */
  async sweep(): Promise<string[]> {
    const { runner } = this.#o.engine([]);
    const orphans: string[] = [];
    for (const containerId of await this.#cachedContainers()) {
      const netns = (await runner.cache.list(containerId)).attachments.find((a) => a.netns !== undefined)?.netns;
      if (netns === undefined || !existsSync(netns)) orphans.push(containerId);
    }
    await this.#delCached(orphans, [], "eth0");
    if (orphans.length > 0) this.#o.log("info", `deleted the attachments of ${orphans.length} container(s) whose netns is gone (a call cut short before this start): ${orphans.join(", ")}`, { containers: orphans.length });
    return orphans;
  }

  /** The containers nadguard has a delegate cache for. */
  async #cachedContainers(): Promise<string[]> {
    const files = await readdir(this.#o.config.cniDir, { withFileTypes: true }).catch(() => []);
    return files.filter((f) => f.isFile() && !f.name.startsWith(".")).map((f) => f.name);
  }

  /** DEL without a netns of each container, from the caches; the pod from the CNI_ARGS its ADD cached, so that its network-status goes with it. */
  async #delCached(containerIds: readonly string[], path: readonly string[], ifname: string): Promise<void> {
    const { runner } = this.#o.engine(path);
    for (const containerId of containerIds) {
      const args = (await runner.cache.list(containerId)).attachments.find((a) => a.cniArgs !== undefined)?.cniArgs ?? [];
      await this.#queue.run(containerId, () => this.#del({ command: "DEL", containerId, netns: "", ifname, path, args, k8s: k8sArgs(args), config: {}, cniVersion: "1.0.0", env: {} }));
    }
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A NAD of the snapshot as a delegate's source; undefined when it does not exist. */
function nadSource(snapshot: Snapshot, key: string): NetworkSource | undefined {
  const nad = snapshot.nads.get(key);
  if (nad === undefined) return undefined;
  const resourceName = nad.metadata.annotations?.[ANNOTATION_RESOURCE_NAME];
  return { name: key, config: nad.spec?.config ?? "", where: `NetworkAttachmentDefinition ${key} spec.config`, ...(resourceName && { resourceName }) };
}

async function confFile(path: string): Promise<Result<ClusterSource, string>> {
  const text = await readFile(path, "utf8").catch((error: Error) => error);
  if (text instanceof Error) return fail(`clusterNetwork ${path} cannot be read: ${text.message}`);
  const config = parseNetworkConfig(text, path);
  if (!config.ok) return fail(config.error.map(formatProblem).join("; "));
  return ok({ source: { name: config.value.name, config: text, where: path }, file: path });
}

/** The config of `dir` whose network name is `name`. */
async function confNamed(dir: string, name: string): Promise<Result<ClusterSource, string> | undefined> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => !f.startsWith(".") && f !== NADGUARD_CONF_FILE && /\.(conf|conflist|json)$/.test(f)).sort();
  for (const file of files) {
    const found = await confFile(join(dir, file));
    if (found.ok && found.value.source.name === name) return found;
  }
  return undefined;
}
