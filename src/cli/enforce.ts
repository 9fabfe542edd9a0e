// `nadguard enforce --state DIR --node NAME [--netns TEMPLATE] [--config FILE] [--once]`: the node
// enforcer. With --once, one full reconcile of the pods whose spec.nodeName is NAME, then exit 0, or
// 1 when any netns failed (each named in the log). Without it, keep following the state directory
// until SIGTERM/SIGINT; the tables stay in place on exit unless --remove-on-exit (a restarting
// enforcer must not open pods). Without --netns, pod sandboxes are found by scanning /proc.
// With --cleanup (cleanup.ts), remove nadguard's table from every netns of the node's pods instead,
// then exit: the uninstall step.
// Everything it prints on stdout is a JSON log line (--log-level); stderr carries only what stops it
// before it starts (usage, a missing nft or nsenter).
import type { Logger } from "pino";
import type { Snapshot } from "../api/snapshot.js";
import { staticState, stateDirSource, type ClusterState } from "../cluster/cluster-state.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { type Config, loadConfig } from "../config/config.js";
import { Enforcer, type DesiredStateSource, type DesiredTable, type EnforcerLog, type SyncReport } from "../enforcer/enforcer.js";
import { createEnforcerMetrics, serveMetrics, type MetricsServer } from "../enforcer/metrics.js";
import { templateProblems, templateResolver, type NetnsResolver } from "../enforcer/netns.js";
import { procResolver } from "../enforcer/proc-netns.js";
import { AddonNftExecutor, defaultNftExecutor } from "../nft/addon.js";
import type { NftExecutor } from "../nft/exec.js";
import type { TableState } from "../nft/state.js";
import { type Compiled, compile, desiredTable, recompile } from "../policy/compiler.js";
import { runCleanup } from "./cleanup.js";
import { reportStateProblems } from "./env.js";
import type { KubeFlags } from "./kube.js";
import { EXIT, UsageError, nftToolsProblem, parseListen } from "./io.js";
import { jsonLogger, parseLogLevel } from "./log.js";
import { importKube } from "./kube-import.js";

export interface EnforceOptions {
  /** A state directory, or `kube` to follow the cluster (every pod: peers live on other nodes too). */
  state?: string | undefined;
  kube?: KubeFlags | undefined;
  node: string;
  /** A path template with {namespace}, {name}, {uid}; absent or `proc`: scan /proc for the pod sandbox. */
  netns?: string | undefined;
  config?: string | undefined;
  once?: boolean | undefined;
  /** `HOST:PORT` for GET /metrics; absent: no server. */
  metricsListen?: string | undefined;
  /** Netns worked on at once. Default 8. */
  parallelism?: number | undefined;
  /** Delete nadguard's table from every managed netns on exit. Default false. */
  removeOnExit?: boolean | undefined;
  /** Delete nadguard's table from every netns of the node's pods, then exit (uninstall); enforces nothing. Default false. */
  cleanup?: boolean | undefined;
  /** Least time between two syncs (ms). Default 100. */
  minIntervalMs?: number | undefined;
  /** Full resync period (ms). Default 60 000. */
  maxIntervalMs?: number | undefined;
  /** pino level of the JSON log lines on stdout (see log.ts). Default `info`: every apply, failure and warning. */
  logLevel?: string | undefined;
  /** Stops the enforcer when aborted; default: SIGTERM and SIGINT. */
  signal?: AbortSignal | undefined;
  /** For tests: another nft executor. */
  executor?: NftExecutor | undefined;
}

/**
 * The policy compiler as the enforcer's desired-state source: a full compile on the first call,
 * the incremental path (`recompile`) after, with each changed pod's transaction from its previous
 * desired state (the enforcer applies it when the netns holds that state); a pod's table is
 * rendered on first read only (a plan from the tables, a read-back compare), and reused while its
 * fingerprint stays the same.
 */
export function compilerSource(config: Config): DesiredStateSource {
  let compiled: Compiled | undefined;
  let tables = new Map<string, DesiredTable>();
  return {
    desired(snapshot: Snapshot, node: string) {
      const recompiled = compiled && compiled.options.node === node ? recompile(compiled, snapshot, config) : undefined;
      compiled = recompiled ? recompiled.compiled : compile(snapshot, config, { node });
      const options = compiled.options;
      const next = new Map<string, DesiredTable>();
      for (const [key, state] of compiled.states) {
        const previous = tables.get(key);
        if (previous?.fingerprint === state.fingerprint) {
          next.set(key, previous);
          continue;
        }
        const change = recompiled?.changes.get(key);
        let table: TableState | undefined;
        next.set(key, {
          get state(): TableState {
            return (table ??= desiredTable(state, options));
          },
          fingerprint: state.fingerprint,
          warnings: state.warnings,
          ...(change?.before && change.after === state && { transition: { from: change.before.fingerprint, ops: change.ops } }),
        });
      }
      tables = next;
      return next;
    },
  };
}

/** The CRI client (gRPC and protobuf) is loaded only for `cri:SOCKET`. */
export async function resolverFor(netns: string | undefined): Promise<NetnsResolver> {
  if (netns === undefined || netns === "proc") return procResolver();
  // `cri:SOCKET`: ask the container runtime (ListPodSandbox + verbose PodSandboxStatus).
  if (netns.startsWith("cri:")) {
    const socket = netns.slice("cri:".length);
    if (!socket.startsWith("/")) throw new UsageError(`--netns ${netns}: the runtime's CRI socket must be an absolute path (e.g. cri:/run/containerd/containerd.sock)`);
    const { criResolver } = await import("../enforcer/cri-netns.js");
    return criResolver(socket);
  }
  const problems = templateProblems(netns);
  if (problems.length > 0) throw new UsageError(`--netns ${netns}: ${problems.map((p) => p.message).join("; ")}`);
  return templateResolver(netns);
}

function positive(value: number | undefined, flag: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1)) throw new UsageError(`${flag} ${value}: expected a positive integer`);
}

export async function runEnforce(options: EnforceOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  if (!options.node) throw new UsageError("--node is required");
  if (options.cleanup) cleanupConflicts(options);
  positive(options.parallelism, "--parallelism");
  positive(options.minIntervalMs, "--min-interval");
  positive(options.maxIntervalMs, "--max-interval");
  const level = parseLogLevel(options.logLevel ?? "info");
  const listen = options.metricsListen ? parseListen(options.metricsListen) : undefined;
  const resolver = await resolverFor(options.netns);
  const missing = options.executor ? undefined : await nftToolsProblem("enforce");
  if (missing) {
    err(missing);
    return EXIT.failure;
  }
  const logger = jsonLogger(level, out);
  const executor = options.executor ?? announcedNftExecutor(logger);
  if (options.cleanup) {
    const snapshot = await oneSnapshot(options, logger);
    reportStateProblems(snapshot, (line) => logger.warn(line));
    return runCleanup({ node: options.node, snapshot, resolver, parallelism: options.parallelism, executor }, logger);
  }
  const config = await loadConfig(options.config);
  const common = {
    node: options.node,
    source: compilerSource(config),
    resolver,
    log: enforcerLog(logger),
    ...(options.parallelism !== undefined && { parallelism: options.parallelism }),
    executor,
  };

  if (options.once) {
    const snapshot = await oneSnapshot(options, logger);
    reportStateProblems(snapshot, (line) => logger.warn(line));
    const enforcer = new Enforcer({ ...common, state: staticState(snapshot) });
    let report: SyncReport;
    try {
      report = await enforcer.sync("full");
    } finally {
      await enforcer.stop();
    }
    logSummary(report, logger);
    return report.failures.length > 0 ? EXIT.failure : EXIT.ok;
  }
  return follow(options, common, listen, logger);
}

/** --cleanup enforces nothing: the options of enforcing are a usage error beside it, not silently ignored. */
function cleanupConflicts(options: EnforceOptions): void {
  const given = [
    options.once && "--once",
    options.removeOnExit && "--remove-on-exit",
    options.config !== undefined && "--config",
    options.metricsListen !== undefined && "--metrics-listen",
    options.minIntervalMs !== undefined && "--min-interval",
    options.maxIntervalMs !== undefined && "--max-interval",
  ].filter((flag): flag is string => typeof flag === "string");
  if (given.length > 0) throw new UsageError(`--cleanup removes nadguard's tables and exits; it takes no ${given.join(", ")}`);
}

/** The executor a command applies through (the native addon, else `nft -f` processes), said once in its log. */
export function announcedNftExecutor(logger: Logger): NftExecutor {
  const choice = defaultNftExecutor();
  if (choice.kind === "addon") logger.info({ nftExecutor: choice.kind }, choice.message);
  else logger.warn({ nftExecutor: choice.kind, reason: choice.reason }, choice.message);
  if (choice.executor instanceof AddonNftExecutor) choice.executor.onFallback((message) => logger.error({ nftExecutor: "nft -f" }, message));
  return choice.executor;
}

/** The enforcer's log events as JSON lines: the message, and its fields beside pino's own. */
function enforcerLog(logger: Logger): EnforcerLog {
  return (level, message, fields) => logger[level](fields ?? {}, message);
}

async function follow(
  options: EnforceOptions,
  common: Omit<ConstructorParameters<typeof Enforcer>[0], "state">,
  listen: { host: string; port: number } | undefined,
  logger: Logger,
): Promise<number> {
  const metrics = createEnforcerMetrics();
  const state = await clusterState(options, logger);
  state.subscribe((snapshot) => reportStateProblems(snapshot, (line) => logger.warn(line)));
  let server: MetricsServer | undefined;
  const enforcer = new Enforcer({
    ...common,
    state,
    metrics,
    runner: { ...(options.minIntervalMs !== undefined && { minIntervalMs: options.minIntervalMs }), ...(options.maxIntervalMs !== undefined && { maxIntervalMs: options.maxIntervalMs }) },
  });
  const stopped = stopSignal(options.signal);
  try {
    await state.start();
    if (listen) {
      server = await serveMetrics(metrics.registry, listen.host, listen.port);
      logger.info({ metrics: `${server.url}/metrics` }, `metrics on ${server.url}/metrics`);
    }
    const source = options.kube ? "Kubernetes" : `state ${options.state}`;
    logger.info({ node: options.node, source, netnsBy: common.resolver.description }, `nadguard enforce: node ${options.node}, ${source}, netns by ${common.resolver.description}`);
    enforcer.start();
    const signal = await stopped.promise;
    const removeTables = options.removeOnExit === true;
    logger.info({ signal, removeTables }, `nadguard enforce: ${signal}: stopping${removeTables ? " and removing nadguard's tables" : " (tables stay in place)"}`);
  } finally {
    stopped.dispose();
    await enforcer.stop({ removeTables: options.removeOnExit === true });
    await state.stop();
    await server?.close();
  }
  return EXIT.ok;
}

export function stopSignal(signal: AbortSignal | undefined): { promise: Promise<string>; dispose: () => void } {
  if (signal) {
    return {
      promise: signal.aborted ? Promise.resolve("aborted") : new Promise((resolve) => signal.addEventListener("abort", () => resolve("aborted"), { once: true })),
      dispose: () => undefined,
    };
  }
  let onSignal: ((name: NodeJS.Signals) => void) | undefined;
  const promise = new Promise<string>((resolve) => {
    onSignal = (name) => resolve(name);
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  return {
    promise,
    dispose: () => {
      process.off("SIGTERM", onSignal!);
      process.off("SIGINT", onSignal!);
    },
  };
}

/** The last line of `--once`: what the reconcile did (each apply and each failure has its own line before it). */
function logSummary(report: SyncReport, logger: Logger): void {
  const changed = report.outcomes.filter((o) => o.mode !== "none").length;
  const failed = report.failures.map((f) => f.pod);
  const durationMs = Math.round(report.durationMs);
  const fields = { reconciled: report.outcomes.length, changed, failed: failed.length, durationMs };
  const message = `${report.outcomes.length} netns reconciled (${changed} changed), ${failed.length} failed${failed.length > 0 ? ` (${failed.join(", ")})` : ""}, in ${durationMs} ms`;
  if (failed.length > 0) logger.error({ ...fields, failedPods: failed }, message);
  else logger.info(fields, message);
}

/**
 * The cluster to follow. In Kubernetes every pod is watched, not only this node's: the policy
 * model takes peer addresses from pods on all nodes (stripped pods are small).
 */
async function clusterState(options: EnforceOptions, logger: Logger): Promise<ClusterState> {
  if (options.kube) {
    // The Kubernetes client is loaded only here: a `--state` enforcer never pays for it.
    const { kubeStateFor, loadKubeConfig } = await importKube();
    return kubeStateFor(loadKubeConfig(options.kube), { allPods: true, log: (line) => logger.error(line) });
  }
  if (!options.state) throw new UsageError("--state DIR is required (or --kube)");
  return stateDirSource(options.state, { onError: (error) => logger.error(`state: ${error.message}`) });
}

/** For --once: the state directory as it is, or the cluster after its first lists. */
async function oneSnapshot(options: EnforceOptions, logger: Logger): Promise<Snapshot> {
  if (!options.kube) {
    if (!options.state) throw new UsageError("--state DIR is required (or --kube)");
    return loadStateDir(options.state);
  }
  const state = await clusterState(options, logger);
  try {
    await state.start();
    return state.current()!;
  } finally {
    await state.stop();
  }
}
