// ClusterState: where snapshots come from. One interface, two sources: the state directory
// (here) and Kubernetes informers (src/cluster/kube-state.ts, Kubernetes mode).
import { watch, type FSWatcher } from "node:fs";
import { stat } from "node:fs/promises";
import type { Snapshot } from "../api/snapshot.js";
import { listStateFiles, loadStateDir } from "./state-dir.js";

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
  /** Coalesces bursts of file events (an editor's save, `kubectl get -o yaml >` ...). */
  debounceMs?: number;
  /**
   * How often the files' names, sizes and modification times are compared with the last load, so
   * that changes the file watcher misses are still seen (Node 20's recursive fs.watch on Linux
   * stops reporting a file after it was replaced by rename, which is how editors and kubectl
   * save). 0 turns polling off. Default 2000 ms.
   */
  pollIntervalMs?: number;
  onError?: (error: Error) => void;
}

/** A ClusterState read from a directory of YAML/JSON files, reloaded when they change. */
export function stateDirSource(dir: string, options: StateDirOptions = {}): ClusterState {
  let snapshot: Snapshot | undefined;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let poller: NodeJS.Timeout | undefined;
  let loading: Promise<void> = Promise.resolve();
  let version = 0;
  let loadedPrint = "";
  const listeners = new Set<(snapshot: Snapshot) => void>();
  const debounceMs = options.debounceMs ?? 100;
  const pollIntervalMs = options.pollIntervalMs ?? 2000;

  const reload = (onlyIfChanged = false): Promise<void> => {
    // Loads run one after another so that a slow load never overwrites a newer one.
    loading = loading.then(async () => {
      const print = await fingerprint(dir);
      if (onlyIfChanged && print === loadedPrint) return;
      const next = await loadStateDir(dir, ++version);
      loadedPrint = print;
      snapshot = next;
      for (const listener of listeners) listener(next);
    });
    return loading;
  };
  const reportErrors = (promise: Promise<void>): void => void promise.catch((error: Error) => options.onError?.(error));

  return {
    current: () => snapshot,
    ready: () => snapshot !== undefined,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async start() {
      await reload();
      if (options.watch === false) return;
      watcher = watch(dir, { recursive: true }, () => {
        clearTimeout(timer);
        timer = setTimeout(() => reportErrors(reload()), debounceMs);
      });
      watcher.on("error", (error) => options.onError?.(error));
      if (pollIntervalMs > 0) {
        poller = setInterval(() => reportErrors(reload(true)), pollIntervalMs);
        poller.unref();
      }
    },
    async stop() {
      clearTimeout(timer);
      clearInterval(poller);
      watcher?.close();
      await loading;
    },
  };
}

/** Names, sizes and modification times of the state files: what a poll compares. */
async function fingerprint(dir: string): Promise<string> {
  try {
    const files = await listStateFiles(dir);
    const stats = await Promise.all(files.map((file) => stat(file).then((s) => `${file}\0${s.size}\0${s.mtimeMs}`, () => file)));
    return stats.join("\n");
  } catch {
    return "";
  }
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
