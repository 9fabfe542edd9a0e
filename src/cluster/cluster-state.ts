// ClusterState: where snapshots come from. One interface, two sources: the state directory
// (here) and Kubernetes informers (src/cluster/kube-state.ts, Kubernetes mode).
import { Counter, Gauge, type Registry } from "prom-client";
import { InputError } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import { NADGUARD_STATE_DIR } from "../networks/network-status.js";
import { DirectoryWatch } from "./dir-watch.js";
import { StateStore, timeSlice } from "./state-dir.js";
import { STATE_FILE } from "./state-file.js";

export interface ClusterState {
  /** The newest snapshot, or undefined before the first load completed. */
  current(): Snapshot | undefined;
  /** True once the first snapshot is loaded (what /readyz reports). */
  ready(): boolean;
  /** Called with every new snapshot; returns an unsubscribe function. */
  subscribe(listener: (snapshot: Snapshot) => void): () => void;
  /** Loads the first snapshot (resolves when ready) and starts following changes. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface StateDirOptions {
  /** Follow changes to the directory and publish new snapshots. Default true. */
  watch?: boolean;
  /** A reload starts this long after the last file event of a burst. Default 100 ms. */
  debounceMs?: number;
  /** … or at the latest this long after the burst's first event, however long it lasts. Default 1000 ms. */
  maxDelayMs?: number;
  /**
   * How often the directory is walked and every file's stamp (device, inode, size, mtime, ctime)
   * compared, so that changes no watch reports are still seen (a chmod, a file replaced by rename
   * in a way inotify misses, a directory swapped). 0 turns polling off. Default 2000 ms.
   */
  pollIntervalMs?: number;
  /** How long a reload reads and parses before it lets waiting reviews run. Default 10 ms. */
  sliceMs?: number;
  /** State metrics (nadguard_state_*) are registered here when given. */
  registry?: Registry;
  /** One line when readiness changes, saying why. */
  log?: (line: string) => void;
  onError?: (error: Error) => void;
}

export interface StateDirMetrics {
  /** Each new version of a file (or directory) that could not be used, by reason. */
  readonly errors: Counter<"reason">;
  /** Files and directories whose newest version is not in use now. */
  readonly failing: Gauge;
  /** Snapshots published. */
  readonly reloads: Counter;
}

/** Registers (or finds) the state directory's metrics in `registry`. */
export function stateDirMetrics(registry: Registry): StateDirMetrics {
  const reuse = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
  return {
    errors: reuse("nadguard_state_file_errors_total", () =>
      new Counter({
        name: "nadguard_state_file_errors_total",
        help: "New versions of state files or directories that could not be used (the last good version stays in use), by reason: unreadable, invalid-yaml, invalid-object, directory.",
        labelNames: ["reason"] as const,
        registers: [registry],
      }),
    ),
    failing: reuse("nadguard_state_files_failing", () =>
      new Gauge({ name: "nadguard_state_files_failing", help: "State files and directories whose newest version is not in use now.", registers: [registry] }),
    ),
    reloads: reuse("nadguard_state_reloads_total", () =>
      new Counter({ name: "nadguard_state_reloads_total", help: "Snapshots published from the state directory.", registers: [registry] }),
    ),
  };
}

/**
 * A ClusterState read from a directory of YAML/JSON files and reloaded when they change: file
 * events and the poll only mark the state dirty; reloads run one at a time, coalescing every event
 * that arrived meanwhile, re-read only changed files, and publish one snapshot when something
 * changed. A file whose new version cannot be read or parsed keeps its last good version; the
 * directory missing or no file loading makes the source not ready, with the last snapshot kept.
 */
export function stateDirSource(dir: string, options: StateDirOptions = {}): ClusterState {
  const store = new StateStore(dir);
  const listeners = new Set<(snapshot: Snapshot) => void>();
  const metrics = options.registry ? stateDirMetrics(options.registry) : undefined;
  const debounceMs = options.debounceMs ?? 100;
  const maxDelayMs = options.maxDelayMs ?? 1000;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;
  const sliceMs = options.sliceMs ?? 10;
  const onError = (error: Error): void => options.onError?.(error);
  let snapshot: Snapshot | undefined;
  let version = 0;
  let ready = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let firstEventAt = 0;
  let running: Promise<void> | undefined;
  let dirty = false;
  let poller: NodeJS.Timeout | undefined;
  const watcher = new DirectoryWatch((name) => {
    if (mayMatter(name)) schedule();
  }, onError);

  /** One reload; the first one throws, publishing nothing, when the directory cannot be read at all. */
  const reload = async (first = false): Promise<void> => {
    const slice = timeSlice(sliceMs);
    const result = await store.refresh(slice);
    const missing = store.rootProblem;
    if (first && missing) throw new InputError([missing]);
    if (result.changed || !snapshot) {
      const next = await store.snapshot(++version, slice);
      snapshot = next;
      metrics?.reloads.inc();
      for (const listener of listeners) listener(next);
    }
    // Counted once the snapshot that holds them is published.
    for (const reason of result.newFaults) metrics?.errors.inc({ reason });
    metrics?.failing.set(store.failing);
    if (store.ready !== ready || first) {
      ready = store.ready;
      if (!ready || !first) options.log?.(ready ? `ready: ${dir} loads again` : `not ready: ${store.notReadyReason}`);
    }
    if (options.watch !== false && !stopped) await watcher.follow(store.directories);
  };
  const run = (): void => {
    timer = undefined;
    running = reload()
      .catch(onError)
      .finally(() => {
        running = undefined;
        if (dirty && !stopped) {
          dirty = false;
          schedule();
        }
      });
  };
  /** Marks the state dirty: a reload follows the burst, never more than one at a time. */
  function schedule(): void {
    if (stopped) return;
    if (running) {
      dirty = true;
      return;
    }
    const now = performance.now();
    if (!timer) firstEventAt = now;
    clearTimeout(timer);
    timer = setTimeout(run, Math.max(0, Math.min(debounceMs, firstEventAt + maxDelayMs - now)));
  }

  return {
    current: () => snapshot,
    ready: () => ready,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async start() {
      // A directory missing at start is a wrong --state rather than a fault: say so, do not wait.
      await reload(true);
      if (options.watch === false) return;
      if (pollIntervalMs > 0) {
        // The poll never postpones a reload that events asked for, and runs none during a burst.
        poller = setInterval(() => {
          if (!timer && !running && !stopped) run();
        }, pollIntervalMs);
        poller.unref();
      }
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(poller);
      watcher.close();
      await running;
    },
  };
}

/**
 * Whether an event for `name` may change the state: a state file, a directory (no extension),
 * kubelet's `..data` link, the node daemon's `.nadguard` directory, or an unnamed event. An editor's swap file or a `.tmp` being written
 * before its rename neither starts nor postpones a reload.
 */
function mayMatter(name: string | null): boolean {
  return name === null || STATE_FILE.test(name) || name.startsWith("..") || name === NADGUARD_STATE_DIR || !/\.[^./]+$/.test(name);
}

/** A fixed snapshot as a ClusterState, for tests and one-shot commands. */
export function staticState(snapshot: Snapshot): ClusterState {
  return {
    current: () => snapshot,
    ready: () => true,
    subscribe: () => () => undefined,
    start: async () => undefined,
    stop: async () => undefined,
  };
}
