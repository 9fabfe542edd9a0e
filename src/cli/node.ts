// `nadguard node`: the node daemon of the CNI meta-plugin. One process per node that
// serves the shim's CNI calls on `<socketDir>/nadguard.sock` (src/cni/server.ts, daemon.ts), keeps
// `<cniConfigDir>/00-nadguard.conflist` in step with the cluster network's config, and runs the
// node enforcer (src/enforcer) in the same process, so that an ADD installs the pod's table itself
// before the first secondary delegate runs and the enforcer then keeps it. This module wires the seams of the
// daemon: the network resolver pod admission uses (`authorizeAttach`, the one call site), the
// policy compiler and nft (`installTable`), the state directory's network-status files, and the
// netns of each sandbox.
// `--uninstall` removes what nadguard put on the node (the conf file, then the shim) and exits.
// The cluster comes from a state directory (`--state`: network-status in its status files) or from
// Kubernetes (`--kube`: the informers and SubjectAccessReview reviewer of the webhook and the
// enforcer, network-status written through `pods/status` and an Event per attached interface).
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { Logger } from "pino";
import { Counter, Histogram } from "prom-client";
import { type Result, fail, formatProblem, ok } from "../api/errors.js";
import { ANNOTATION_DEFAULT_NETWORK, ANNOTATION_NETWORKS, type Pod } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { MAX_LISTED_PROBLEMS } from "../admission/denial.js";
import { describePod, networkDenial, oversizedAnnotations } from "../admission/pod.js";
import type { AccessReviewer } from "../authz/nad-access.js";
import { resolveNetworks } from "../authz/network-access.js";
import { serviceAccountUser } from "../authz/rbac.js";
import { type ClusterState, stateDirSource } from "../cluster/cluster-state.js";
import { Attachments, CNI_ERROR, CniRunner, DEFAULT_MULTUS_CNI_DIR, type PluginExec, SpawnPluginExec, findClusterNetworkConf, type NetworkStatus, type PodRef, removeNadguardConf, startCniServer, syncNadguardConf } from "../cni/index.js";
import { type DaemonConfig, SOCKET_NAME, loadDaemonConfig } from "../cni/daemon-config.js";
import { NodeDaemon, type NodeDaemonOptions } from "../cni/daemon.js";
import { removeFile, writeFileAtomic } from "../cni/files.js";
import { type Config, loadConfig } from "../config/config.js";
import { Enforcer } from "../enforcer/enforcer.js";
import { createEnforcerMetrics, serveMetrics, type MetricsServer } from "../enforcer/metrics.js";
import { type NetnsLookup, type NetnsResolver, netnsAt, podRefKey } from "../enforcer/netns.js";
import { type Known, planTransaction } from "../enforcer/plan.js";
import { procResolver } from "../enforcer/proc-netns.js";
import { networkStatusFile } from "../networks/network-status.js";
import type { NftExecutor } from "../nft/exec.js";
import { Nft } from "../nft/nft.js";
import { compilePod, desiredTable } from "../policy/compiler.js";
import { announcedNftExecutor, compilerSource, stopSignal } from "./enforce.js";
import { envFor, reportStateProblems } from "./env.js";
import { CommandError, EXIT, UsageError, checkStateDir, nftToolsProblem, parseListen } from "./io.js";
import type { KubeFlags, loadKubeConfig } from "./kube.js";
import { jsonLogger, parseLogLevel } from "./log.js";
import { importKube } from "./kube-import.js";

export interface NodeOptions {
  state?: string | undefined;
  kube?: KubeFlags | undefined;
  node?: string | undefined;
  daemonConfig?: string | undefined;
  config?: string | undefined;
  metricsListen?: string | undefined;
  uninstall?: boolean | undefined;
  logLevel?: string | undefined;
  /** Stops the daemon when aborted; default: SIGTERM and SIGINT. */
  signal?: AbortSignal | undefined;
}

type KubeConfig = ReturnType<typeof loadKubeConfig>;

/** A marker of nadguard's shim: --uninstall removes `<binDir>/nadguard-cni` only when it holds it. */
const SHIM_MARKER = "nadguard-cni: the shim";
/** How long SIGTERM waits for the calls being served. */
const DRAIN_MS = 30_000;
/** How often the cluster network's directory is re-read besides its watch, and the readiness indicator file looked for. */
const RESYNC_MS = 2000;

/**
 * The one place the daemon asks whether the pod may have its networks: the resolver pod admission
 * uses (`resolveNetworks`), for the pod as created by its service account, the only identity known
 * at attach time, and admission's wording of a refusal (`networkDenial`), so the message is the
 * webhook's word for word. `access` is the webhook's reviewer in Kubernetes mode
 * (SubjectAccessReview); absent, the snapshot's RBAC objects answer, as for the webhook on a state
 * directory.
 */
export async function authorizeAttach(pod: Pod, snapshot: Snapshot, config: Config, access?: AccessReviewer): Promise<Result<void, string>> {
  const namespace = pod.metadata.namespace ?? "default";
  const networks = pod.metadata.annotations?.[ANNOTATION_NETWORKS];
  const defaultNetwork = pod.metadata.annotations?.[ANNOTATION_DEFAULT_NETWORK];
  if (networks === undefined && defaultNetwork === undefined) return ok(undefined);
  const who = describePod(namespace, pod.metadata.name, pod.metadata.generateName);
  const oversized = oversizedAnnotations(who, networks, defaultNetwork);
  if (oversized) return fail(oversized.message ?? "denied by nadguard");
  const serviceAccountName = pod.spec.serviceAccountName || pod.spec.serviceAccount;
  const account = serviceAccountUser(namespace, serviceAccountName || "default");
  const resolved = await resolveNetworks(
    { namespace, serviceAccountName, requester: { username: account.user, groups: account.groups }, networks, defaultNetwork },
    {
      snapshot,
      authorization: config.authorization,
      multusNamespace: config.multus.namespace,
      reviewer: access ?? envFor(snapshot, config).access,
      maxProblems: MAX_LISTED_PROBLEMS,
    },
  );
  return resolved.ok ? ok(undefined) : fail(networkDenial(who, resolved).message ?? "denied by nadguard");
}

/** The pod's current table, compiled from `snapshot` as the enforcer would, installed whole in `netns`. */
async function installTable(config: Config, executor: NftExecutor, podKey: string, snapshot: Snapshot, netns: string): Promise<Result<string, string>> {
  const options = { acceptIcmpEcho: config.enforcement.acceptIcmpEcho };
  const state = compilePod(snapshot, config, podKey, options);
  if (state === undefined) return ok("no managed interface: no table installed");
  const nft = new Nft({ netns, executor });
  // A new sandbox's netns holds no table: read that back (one list, no elements) and let the
  // enforcer's planner build it without a `delete table`; a repeated ADD finds its table and has it replaced whole.
  const listed = await nft.list();
  const known: Known = !listed.ok && listed.error.reason === "not-found" ? { kind: "absent" } : { kind: "unknown" };
  const applied = await nft.run(nft.transaction().append(planTransaction(known, desiredTable(state, options)).ops));
  return applied.ok ? ok(`table inet nadguard installed for ${state.interfaces.map((i) => `${i.name} (${i.network})`).join(", ")}`) : fail(applied.error.message);
}

/** network-status in the state directory (`.nadguard/network-status/<ns>/<pod>.json`), as the API server would keep it. */
async function recordStatus(stateDir: string, pod: PodRef, statuses: readonly NetworkStatus[] | undefined): Promise<Result<void, string>> {
  const file = networkStatusFile(stateDir, pod.namespace, pod.name);
  try {
    if (statuses === undefined) await removeFile(file);
    // 0644: every reader of the state directory reads it. Not fsync'ed: it describes interfaces
    // that a crash of the node takes with it.
    else await writeFileAtomic(file, `${JSON.stringify(statuses, null, 2)}\n`, 0o644, { durable: false });
    return ok(undefined);
  } catch (error) {
    return fail(`${file}: ${(error as Error).message}`);
  }
}

/** Sandboxes this daemon attached are found at the netns of their ADD; other pods by the fallback (a /proc scan). */
function sandboxResolver(known: ReadonlyMap<string, string>, fallback: NetnsResolver): NetnsResolver {
  return {
    description: `the netns of each ADD, else ${fallback.description}`,
    async resolve(pods) {
      const out = new Map<string, NetnsLookup>();
      const rest = pods.filter((pod) => !known.has(podRefKey(pod)));
      for (const pod of pods) {
        const path = known.get(podRefKey(pod));
        if (path !== undefined) out.set(podRefKey(pod), await netnsAt(path, pod));
      }
      if (rest.length > 0) for (const [key, lookup] of await fallback.resolve(rest)) out.set(key, lookup);
      return out;
    },
  };
}

/** `--uninstall`: the conf file first (the runtime stops calling nadguard), then the shim if it is nadguard's. */
async function uninstall(config: DaemonConfig, out: (line: string) => void): Promise<number> {
  const removed = await removeNadguardConf(config.cniConfigDir);
  if (!removed.ok) throw new CommandError(removed.error.map(formatProblem).join("; "), EXIT.failure);
  out(removed.value ? `removed ${join(config.cniConfigDir, "00-nadguard.conflist")}` : `${join(config.cniConfigDir, "00-nadguard.conflist")}: not there`);
  const shim = join(config.binDir, "nadguard-cni");
  const text = await readFile(shim, "utf8").catch(() => undefined);
  if (text === undefined) out(`${shim}: not there`);
  else if (!text.includes(SHIM_MARKER)) out(`${shim}: not nadguard's shim; left in place`);
  else {
    try {
      await removeFile(shim);
    } catch (error) {
      throw new CommandError(`cannot remove ${shim}: ${(error as Error).message}`, EXIT.failure);
    }
    out(`removed ${shim}`);
  }
  return EXIT.ok;
}

export async function runNode(options: NodeOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const daemonConfig = await loadDaemonConfig(options.daemonConfig);
  if (options.uninstall) return uninstall(daemonConfig, out);
  if (!options.node) throw new UsageError("--node is required");
  if (options.state && options.kube) throw new UsageError("--state and --kube exclude each other");
  if (!options.state && !options.kube) throw new UsageError("--state DIR or --kube is required");
  const level = parseLogLevel(options.logLevel ?? "info");
  const listen = options.metricsListen ? parseListen(options.metricsListen) : undefined;
  // Loaded only with --kube: importing the Kubernetes client costs about a second of CPU.
  const kube = options.kube ? await importKube() : undefined;
  const kubeConfig = kube && options.kube ? kube.loadKubeConfig(options.kube) : undefined;
  if (options.state) await checkStateDir(options.state);
  const missing = await nftToolsProblem("node");
  if (missing) {
    err(missing);
    return EXIT.failure;
  }
  const loaded = await loadConfig(options.config);
  // Bare names in the default-network annotation resolve in multusNamespace, at admission as here.
  const config: Config = { ...loaded, multus: { ...loaded.multus, namespace: daemonConfig.multusNamespace } };
  const logger = jsonLogger(level, out);
  return serve({ ...options, node: options.node, kubeConfig }, daemonConfig, config, listen, logger);
}

/** Where the daemon reads the cluster from and writes network-status to. */
interface NodeSource {
  readonly state: ClusterState;
  /** SubjectAccessReview in Kubernetes mode; absent: the snapshot's RBAC objects. */
  readonly access?: AccessReviewer;
  readonly recordStatus: NodeDaemonOptions["recordStatus"];
  /** For the log: `state DIR` or `Kubernetes`. */
  readonly description: string;
}

type ServeOptions = NodeOptions & { node: string; kubeConfig: KubeConfig | undefined };

async function nodeSource(options: ServeOptions, registry: ReturnType<typeof createEnforcerMetrics>["registry"], logger: Logger): Promise<NodeSource> {
  const { kubeConfig } = options;
  if (kubeConfig === undefined) {
    const dir = options.state!;
    return {
      state: stateDirSource(dir, { onError: (error) => logger.error(`state: ${error.message}`), log: (line) => logger.info(`state: ${line}`) }),
      recordStatus: (pod, statuses) => recordStatus(dir, pod, statuses),
      description: `state ${dir}`,
    };
  }
  const { kubeStateFor, sarReviewerFor } = await importKube();
  const { addedInterfaceEvents, writeNetworkStatus } = await import("../cluster/kube-pod-status.js");
  const log = (line: string): void => void logger.error(line);
  return {
    // Every pod, as for `nadguard enforce --kube`: the tables take peer addresses from pods on all nodes.
    state: kubeStateFor(kubeConfig, { allPods: true, registry, log }),
    access: sarReviewerFor(kubeConfig, { registry, log }),
    async recordStatus(pod, statuses) {
      const written = await writeNetworkStatus(kubeConfig, pod, statuses);
      if (!written.ok) return written;
      if (statuses === undefined || written.value !== "written") return ok(undefined);
      const events = await addedInterfaceEvents(kubeConfig, pod, options.node, statuses);
      if (!events.ok) logger.warn({ pod: `${pod.namespace}/${pod.name}` }, events.error);
      return ok(undefined);
    },
    description: "Kubernetes",
  };
}

/** The error codes a failed call is counted by (`nadguard_cni_errors_total{reason}`). */
const REASONS = new Map<number, string>([
  [CNI_ERROR.denied, "denied"],
  [CNI_ERROR.unknownContainer, "pod-not-found"],
  [CNI_ERROR.invalidEnvironment, "invalid-environment"],
  [CNI_ERROR.invalidNetworkConfig, "invalid-network"],
  [CNI_ERROR.tryAgainLater, "try-again"],
  [CNI_ERROR.pluginNotAvailable, "not-ready"],
]);

interface DaemonMetrics {
  readonly observe: NonNullable<NodeDaemonOptions["observe"]>;
  /** Plugin runs timed by type and command. */
  readonly exec: (inner: PluginExec) => PluginExec;
}

function daemonMetrics(registry: ReturnType<typeof createEnforcerMetrics>["registry"]): DaemonMetrics {
  const errors = new Counter({ name: "nadguard_cni_errors_total", help: "Failed CNI calls by reason: denied, pod-not-found, invalid-environment, invalid-network, try-again, not-ready, or delegate (a plugin or nadguard's own failure).", labelNames: ["reason"] as const, registers: [registry] });
  const delegates = new Histogram({
    name: "nadguard_cni_delegate_duration_seconds",
    help: "Time of one delegate plugin run, by plugin type and command.",
    labelNames: ["plugin", "command"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const requests = new Counter({ name: "nadguard_cni_requests_total", help: "CNI calls served, by command and outcome (ok, denied, error).", labelNames: ["command", "outcome"] as const, registers: [registry] });
  const durations = new Histogram({
    name: "nadguard_cni_request_duration_seconds",
    help: "Time to serve a CNI call, delegates included, by command.",
    labelNames: ["command"] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  return {
    observe: (command, outcome, seconds, error) => {
      requests.inc({ command, outcome });
      durations.observe({ command }, seconds);
      if (error !== undefined) errors.inc({ reason: REASONS.get(error.code) ?? "delegate" });
    },
    exec: (inner) => ({
      find: (type, dirs) => inner.find(type, dirs),
      async run(request) {
        const started = performance.now();
        const outcome = await inner.run(request);
        delegates.observe({ plugin: basename(request.path), command: request.env.CNI_COMMAND ?? "" }, (performance.now() - started) / 1000);
        return outcome;
      },
    }),
  };
}

async function serve(options: ServeOptions, daemonConfig: DaemonConfig, config: Config, listen: { host: string; port: number } | undefined, logger: Logger): Promise<number> {
  const log = (lvl: "error" | "warn" | "info" | "debug", message: string, fields?: Readonly<Record<string, unknown>>): void => void logger[lvl](fields ?? {}, message);
  // One executor for the enforcer and the tables ADD installs (the native addon: an apply costs no process start).
  const executor = announcedNftExecutor(logger);
  const metrics = createEnforcerMetrics();
  const cniMetrics = daemonMetrics(metrics.registry);
  const exec = cniMetrics.exec(new SpawnPluginExec());
  const source = await nodeSource(options, metrics.registry, logger);
  const { state } = source;
  state.subscribe((snapshot) => reportStateProblems(snapshot, (line) => logger.warn(line)));
  const sandboxes = new Map<string, string>();
  const engines = new Map<string, { runner: CniRunner; attachments: Attachments }>();
  const engine = (path: readonly string[]): { runner: CniRunner; attachments: Attachments } => {
    const dirs = [daemonConfig.binDir, ...path.filter((dir) => dir !== daemonConfig.binDir)];
    const key = dirs.join(":");
    let found = engines.get(key);
    if (!found) {
      const runner = new CniRunner({ pluginDirs: dirs, cacheDir: daemonConfig.cniDir, exec });
      found = { runner, attachments: new Attachments({ runner, cacheDir: daemonConfig.cniDir, multusCacheDir: DEFAULT_MULTUS_CNI_DIR }) };
      engines.set(key, found);
    }
    return found;
  };
  const daemon = new NodeDaemon({
    node: options.node,
    config: daemonConfig,
    engine,
    snapshot: () => state.current(),
    stateReady: () => state.ready(),
    authorize: (pod, snapshot) => authorizeAttach(pod, snapshot, config, source.access),
    installTable: (podKey, snapshot, netns) => installTable(config, executor, podKey, snapshot, netns),
    recordStatus: source.recordStatus,
    onSandbox: (pod, netns) => (netns === undefined ? sandboxes.delete(podRefKey(pod)) : sandboxes.set(podRefKey(pod), netns)),
    log,
    observe: cniMetrics.observe,
  });
  const enforcer = new Enforcer({
    node: options.node,
    state,
    source: compilerSource(config),
    resolver: sandboxResolver(sandboxes, procResolver()),
    log,
    metrics,
    executor,
  });

  // The conf file is written at start and when the cluster network's conf changes, never merely
  // because it is missing: `--uninstall` on a node whose daemon still runs must stick.
  let clusterSeen: string | undefined;
  const syncConf = async (): Promise<void> => {
    const { found } = await findClusterNetworkConf(daemonConfig.multusAutoconfigDir);
    const seen = found === undefined ? "" : `${found.path}\n${found.config.bytes}`;
    if (seen === clusterSeen) return;
    clusterSeen = seen;
    const synced = await syncNadguardConf(daemonConfig.cniConfigDir, daemonConfig.socketDir, daemonConfig.multusAutoconfigDir);
    if (!synced.ok) logger.error(`cannot write the runtime's CNI config: ${synced.error.map(formatProblem).join("; ")}`);
    else if (synced.value.outcome === "written") logger.info({ path: synced.value.path, clusterNetwork: synced.value.clusterNetwork }, `wrote ${synced.value.path} (cluster network ${synced.value.clusterNetwork})`);
    else if (synced.value.outcome === "kept") logger.warn({ path: synced.value.path }, `no cluster network config in ${daemonConfig.multusAutoconfigDir} yet; ${synced.value.path} left as it is`);
  };
  const stopped = stopSignal(options.signal);
  let server: Awaited<ReturnType<typeof startCniServer>> | undefined;
  let metricsServer: MetricsServer | undefined;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    // Before the cluster state: /healthz answers (the liveness probe) while the first lists load,
    // and /readyz says 503 until the daemon serves ADD.
    if (listen) {
      metricsServer = await serveMetrics(metrics.registry, listen.host, listen.port, () => daemon.ready());
      logger.info({ metrics: `${metricsServer.url}/metrics` }, `metrics on ${metricsServer.url}/metrics`);
    }
    await state.start();
    await daemon.refreshIndicator();
    // What a daemon killed in the middle of a call left behind (the runtime's DEL found no daemon).
    await daemon.sweep();
    // The conf first: a shim the runtime starts before the socket exists waits for /readyz.
    await syncConf();
    const socketPath = join(daemonConfig.socketDir, SOCKET_NAME);
    server = await startCniServer({ socketPath, handler: daemon }).catch((error: Error) => {
      throw new CommandError(`cannot serve ${socketPath}: ${error.message}`, EXIT.failure);
    });
    try {
      watcher = watch(daemonConfig.multusAutoconfigDir, (_event, name) => {
        if (name !== "00-nadguard.conflist" && !String(name).startsWith(".")) void syncConf();
      });
    } catch (error) {
      logger.warn(`cannot watch ${daemonConfig.multusAutoconfigDir}: ${(error as Error).message}; re-read every ${RESYNC_MS} ms`);
    }
    timer = setInterval(() => {
      void syncConf();
      void daemon.refreshIndicator();
    }, RESYNC_MS);
    enforcer.start();
    logger.info({ node: options.node, socket: server.socketPath, source: source.description }, `nadguard node: node ${options.node}, ${source.description}, serving CNI on ${server.socketPath}`);
    const signal = await stopped.promise;
    daemon.terminate();
    logger.info({ signal }, `nadguard node: ${signal}: stopping (the conf file and the tables stay in place)`);
    // A call being served finishes (an ADD cut short leaves its DEL to the runtime, from the cache).
    if (!(await daemon.drain(DRAIN_MS))) logger.warn(`nadguard node: calls still running after ${DRAIN_MS} ms; stopping anyway`);
  } finally {
    stopped.dispose();
    clearInterval(timer);
    watcher?.close();
    await server?.close();
    await enforcer.stop();
    await state.stop();
    await metricsServer?.close();
  }
  return EXIT.ok;
}
