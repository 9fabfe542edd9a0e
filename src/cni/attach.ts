// Attaching a sandbox's delegates, the meta-plugin's core: given the delegates an attach plan
// chose (cluster network first), ADD runs them in order and DEL undoes them, with the guarantees
// a runtime relies on (CNI spec, ADD and DEL; containerd 1.6 runs DEL at once after a failed ADD and
// again until it succeeds):
// - the delegate cache (delegate-cache.ts) is written before the first delegate runs, so a DEL
//   after any crash knows what to undo, with the configs as run (the NAD may have changed or gone);
// - a task runs beside the cluster network's delegate, started once that plugin's process is (its
//   CPU work then overlaps the plugin's instead of delaying its start), and must succeed before
//   the first secondary delegate runs (the node daemon installs the pod's nft table there: nft
//   matches interface names that do not exist yet); a hook runs after the cluster network and
//   before the first secondary delegate, another after each delegate (default routes, routes.ts);
// - a failing ADD DELs what it ran, the failing delegate included, in reverse, and its error names
//   the pod, the delegate, its element and the plugin;
// - DEL never fails: it undoes every delegate in reverse even if some fail, reports what went
//   wrong as warnings, keeps the cache file while something is left to retry (containerd sends
//   DEL two or three times), and with no cache of nadguard's falls back to Multus' delegate cache,
//   then to the result cache (which holds each attachment's config);
// - an ADD and a DEL of the same container never run at the same time: a runtime that gives up on a
//   slow ADD sends DEL while the ADD still runs; the DEL waits and then undoes all of it.
import { type Result, fail, formatProblem, ok } from "../api/errors.js";
import { parseNetworkConfig } from "./config.js";
import { type CachedDelegate, readDelegateCache, removeDelegateCache, writeDelegateCache } from "./delegate-cache.js";
import { CNI_ERROR, type CniError, cniError, formatCniError } from "./errors.js";
import type { CniArgs } from "./invoke.js";
import type { CniResult } from "./result.js";
import type { CniRunner, RuntimeConf } from "./runner.js";

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
}

export type PlannedDelegate = CachedDelegate;

export interface AttachOptions {
  readonly runner: CniRunner;
  /** Where nadguard keeps its delegate cache files (`cniDir`). */
  readonly cacheDir: string;
  /** Multus' delegate cache directory, read by DEL when nadguard has no file for a container; absent: not read. */
  readonly multusCacheDir?: string;
}

export interface AddRequest {
  readonly containerId: string;
  readonly netns: string;
  /** CNI_ARGS for every delegate. */
  readonly args: CniArgs;
  readonly pod: PodRef;
  /** Cluster network first. */
  readonly delegates: readonly PlannedDelegate[];
  /**
   * Starts once the cluster network's first plugin process is started (or as soon as something
   * waits for it, when that plugin could not run) and runs beside the cluster network's delegate:
   * its work (compiling, the nft transaction) overlaps the plugins' instead of delaying their
   * start. The first secondary delegate runs only after it succeeded, and ADD returns only after
   * it settled; a failed delegate cache write never starts it. Its error fails the ADD as it is
   * and undoes what ran.
   */
  readonly besideClusterNetwork?: () => Promise<Result<void, CniError>>;
  /** Runs after the cluster network, before the first secondary delegate; an error undoes the ADD. */
  readonly beforeSecondaries?: () => Promise<Result<void, string>>;
  /** Runs after each delegate's ADD (default routes, routes.ts); an error undoes the ADD. */
  readonly afterDelegate?: (delegate: PlannedDelegate, result: CniResult) => Promise<Result<void, string>>;
}

export interface AttachedDelegate {
  readonly delegate: PlannedDelegate;
  readonly result: CniResult;
}

export interface AddFailure {
  /** The delegate's error (its code kept) with a message naming pod, delegate, element and plugin. */
  readonly error: CniError;
  /** What the undo could not do (the cache file is then kept for the runtime's DEL). */
  readonly cleanup: readonly string[];
  /** What the undo stepped over: the failed delegate's own DEL failing, a missing prevResult. */
  readonly warnings: readonly string[];
}

export interface SandboxRequest {
  readonly containerId: string;
  /** Empty on a DEL after the sandbox's netns is gone. */
  readonly netns: string;
  /** The runtime's CNI_IFNAME: the cluster network's interface in a Multus cache file. */
  readonly ifname: string;
  readonly args: CniArgs;
}

export interface DetachReport {
  /** Where the delegates came from. */
  readonly source: "nadguard" | "multus" | "results" | "none";
  /** Delegates DEL ran for, `name@ifname`, in the order it ran them. */
  readonly deleted: readonly string[];
  /** What went wrong; the DEL still succeeds towards the runtime. */
  readonly warnings: readonly string[];
}

/** Runs tasks of the same key one after another, tasks of different keys side by side. */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(task, task);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
  }
}

const podText = (pod: PodRef): string => `${pod.namespace}/${pod.name}${pod.uid ? `/${pod.uid}` : ""}`;

function runtimeFor(delegate: CachedDelegate, sandbox: { containerId: string; netns: string; args: CniArgs }): RuntimeConf {
  return { containerId: sandbox.containerId, netns: sandbox.netns, ifname: delegate.ifname, args: sandbox.args, capabilityArgs: delegate.capabilityArgs };
}

function describeDelegate(delegate: PlannedDelegate): string {
  const what = delegate.clusterNetwork ? `cluster network "${delegate.name}"` : `network "${delegate.name}"`;
  return delegate.element !== undefined ? `${what} (element "${delegate.element}", interface ${delegate.ifname})` : `${what} (interface ${delegate.ifname})`;
}

/** The error with a message that says where it came from; the plugin's details are in the message. */
function named(error: CniError, where: string): CniError {
  const { details: _details, ...rest } = error;
  return { ...rest, msg: `${where}: ${formatCniError(error)}` };
}

export class Attachments {
  readonly #options: AttachOptions;
  readonly #queue = new KeyedQueue();

  constructor(options: AttachOptions) {
    this.#options = options;
  }

  /** ADD of every delegate; the results in delegate order. */
  add(request: AddRequest): Promise<Result<AttachedDelegate[], AddFailure>> {
    return this.#queue.run(request.containerId, () => this.#add(request));
  }

  /** DEL of whatever the container has; never fails. */
  del(request: SandboxRequest): Promise<DetachReport> {
    return this.#queue.run(request.containerId, () => this.#del(request));
  }

  /** CHECK of every cached delegate in order with its cached result. */
  check(request: SandboxRequest): Promise<Result<void, CniError>> {
    return this.#queue.run(request.containerId, () => this.#check(request));
  }

  async #add(request: AddRequest): Promise<Result<AttachedDelegate[], AddFailure>> {
    const prefix = `[${podText(request.pod)}]`;
    let beside: Promise<CniError | undefined> | undefined;
    // Called from the plugin's start: the task itself runs a microtask later, outside the exec code.
    const start = (): void => {
      beside ??= Promise.resolve()
        .then(() => request.besideClusterNetwork?.() ?? ok(undefined))
        .then((r) => (r.ok ? undefined : r.error));
    };
    const settled = (): Promise<CniError | undefined> => {
      start();
      return beside!;
    };
    const written = await writeDelegateCache(this.#options.cacheDir, request.containerId, request.delegates);
    if (!written.ok) {
      return fail({ error: cniError(CNI_ERROR.ioFailure, `${prefix} cannot record the delegates before running them: ${written.error.map(formatProblem).join("; ")}`), cleanup: [], warnings: [] });
    }
    const attached: AttachedDelegate[] = [];
    // Each delegate's result cache write runs beside the next delegate; all are awaited before ADD
    // returns or undoes anything (a write landing after the undo's DEL would leave its file behind).
    const cacheWrites: { delegate: PlannedDelegate; written: Promise<Result<void, CniError>> }[] = [];
    const cacheError = async (): Promise<CniError | undefined> => {
      for (const { delegate, written } of cacheWrites) {
        const w = await written;
        if (!w.ok) return named(w.error, `${prefix} ${describeDelegate(delegate)}`);
      }
      return undefined;
    };
    // Nothing is undone while the task beside the cluster network still runs (one never started stays so).
    const undo = async (error: CniError, failed?: PlannedDelegate): Promise<Result<AttachedDelegate[], AddFailure>> => {
      await beside;
      await cacheError();
      return this.#undo(request, attached.map((a) => a.delegate), error, failed);
    };
    let secondariesReady: Promise<CniError | undefined> | undefined;
    for (const delegate of request.delegates) {
      if (!delegate.clusterNetwork) {
        const error = await (secondariesReady ??= this.#beforeSecondaries(request, prefix, settled));
        if (error !== undefined) return undo(error);
      }
      const added = await this.#options.runner.add(delegate.config, runtimeFor(delegate, request), {
        ...(delegate.clusterNetwork && { onStart: start }),
        cacheWrite: (written) => cacheWrites.push({ delegate, written }),
      });
      if (!added.ok) return undo(named(added.error, `${prefix} ${describeDelegate(delegate)}`), delegate);
      attached.push({ delegate, result: added.value });
      const after = request.afterDelegate === undefined ? ok(undefined) : await request.afterDelegate(delegate, added.value);
      if (!after.ok) return undo(cniError(CNI_ERROR.internal, `${prefix} ${describeDelegate(delegate)}: ${after.error}`));
    }
    const error = (await settled()) ?? (await cacheError());
    if (error !== undefined) return undo(error);
    return ok(attached);
  }

  /** What must hold before the first secondary delegate: the task beside the cluster network succeeded, then the hook. */
  async #beforeSecondaries(request: AddRequest, prefix: string, settled: () => Promise<CniError | undefined>): Promise<CniError | undefined> {
    const error = await settled();
    if (error !== undefined || request.beforeSecondaries === undefined) return error;
    const hook = await request.beforeSecondaries();
    return hook.ok ? undefined : cniError(CNI_ERROR.internal, `${prefix} before attaching the secondary networks: ${hook.error}`);
  }

  /**
   * DEL of `ran` in reverse after a failed ADD; the cache file goes only when all of it went. The
   * delegate that failed may have made nothing: its own DEL failing (macvlan cannot load a config
   * whose master is missing, a missing binary cannot run at all) keeps nothing back.
   */
  async #undo(request: AddRequest, ran: readonly PlannedDelegate[], error: CniError, failed?: PlannedDelegate): Promise<Result<AttachedDelegate[], AddFailure>> {
    const own = failed === undefined ? { failures: [], warnings: [] } : await this.#delAll([failed], request);
    const rest = await this.#delAll([...ran].reverse(), request);
    const cleanup = rest.failures;
    if (cleanup.length === 0) {
      const removed = await removeDelegateCache(this.#options.cacheDir, request.containerId);
      if (!removed.ok) cleanup.push(...removed.error.map(formatProblem));
    }
    return fail({ error, cleanup, warnings: [...own.failures, ...own.warnings, ...rest.warnings] });
  }

  /** DEL of each delegate in the order given, every one tried; what failed and what was only odd. */
  async #delAll(delegates: readonly CachedDelegate[], sandbox: { containerId: string; netns: string; args: CniArgs }): Promise<{ failures: string[]; warnings: string[] }> {
    const failures: string[] = [];
    const warnings: string[] = [];
    for (const delegate of delegates) {
      const deleted = await this.#options.runner.del(delegate.config, runtimeFor(delegate, sandbox));
      if (!deleted.ok) failures.push(`${describeDelegate(delegate)}: ${formatCniError(deleted.error)}`);
      else warnings.push(...deleted.value.warnings.map((w) => `${describeDelegate(delegate)}: ${w}`));
    }
    return { failures, warnings };
  }

  async #del(request: SandboxRequest): Promise<DetachReport> {
    const warnings: string[] = [];
    const found = await this.#cachedDelegates(request, warnings);
    if (found.source === "none") return { source: "none", deleted: [], warnings };
    const reversed = [...found.delegates].reverse();
    const done = await this.#delAll(reversed, request);
    warnings.push(...done.failures, ...done.warnings);
    if (done.failures.length === 0 && found.source !== "results") {
      const dir = found.source === "nadguard" ? this.#options.cacheDir : this.#options.multusCacheDir!;
      const removed = await removeDelegateCache(dir, request.containerId);
      if (!removed.ok) warnings.push(...removed.error.map(formatProblem));
    }
    return { source: found.source, deleted: reversed.map((d) => `${d.name}@${d.ifname}`), warnings };
  }

  /** The container's delegates: nadguard's cache, else Multus', else the result cache's attachments. */
  async #cachedDelegates(request: SandboxRequest, warnings: string[]): Promise<{ source: DetachReport["source"]; delegates: readonly CachedDelegate[] }> {
    const own = await readDelegateCache(this.#options.cacheDir, request.containerId, request.ifname);
    if (own.ok && own.value !== undefined) return { source: "nadguard", delegates: own.value };
    if (!own.ok) warnings.push(...own.error.map(formatProblem));
    if (this.#options.multusCacheDir !== undefined) {
      const multus = await readDelegateCache(this.#options.multusCacheDir, request.containerId, request.ifname);
      if (multus.ok && multus.value !== undefined) return { source: "multus", delegates: multus.value };
      if (!multus.ok) warnings.push(...multus.error.map(formatProblem));
    }
    const { attachments, problems } = await this.#options.runner.cache.list(request.containerId);
    warnings.push(...problems);
    const delegates: CachedDelegate[] = [];
    for (const attachment of attachments) {
      const config = parseNetworkConfig(attachment.config, `the result cache of ${attachment.network} ${attachment.ifname}`);
      if (!config.ok) warnings.push(...config.error.map(formatProblem));
      else delegates.push({ name: attachment.network, ifname: attachment.ifname, clusterNetwork: false, config: config.value, capabilityArgs: attachment.capabilityArgs ?? {} });
    }
    if (delegates.length > 0) return { source: "results", delegates };
    warnings.push(`no delegate cache for container ${request.containerId}: nothing to delete`);
    return { source: "none", delegates: [] };
  }

  async #check(request: SandboxRequest): Promise<Result<void, CniError>> {
    const cached = await readDelegateCache(this.#options.cacheDir, request.containerId, request.ifname);
    if (!cached.ok) return fail(cniError(CNI_ERROR.internal, cached.error.map(formatProblem).join("; ")));
    if (cached.value === undefined) return fail(cniError(CNI_ERROR.unknownContainer, `no delegate cache for container ${request.containerId}`));
    for (const delegate of cached.value) {
      const checked = await this.#options.runner.check(delegate.config, runtimeFor(delegate, request));
      if (!checked.ok) return fail(named(checked.error, describeDelegate(delegate)));
    }
    return ok(undefined);
  }
}
