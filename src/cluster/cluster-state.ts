// ClusterState: where snapshots come from. One interface, two sources: the state directory
// (here) and Kubernetes informers (src/cluster/kube-state.ts, Kubernetes mode).
import { watch, type FSWatcher } from "node:fs";
import type { Snapshot } from "../api/snapshot.js";
import { loadStateDir } from "./state-dir.js";

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
  onError?: (error: Error) => void;
}

/** A ClusterState read from a directory of YAML/JSON files, reloaded when they change. */
export function stateDirSource(dir: string, options: StateDirOptions = {}): ClusterState {
  let snapshot: Snapshot | undefined;
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let loading: Promise<void> = Promise.resolve();
  let version = 0;
  const listeners = new Set<(snapshot: Snapshot) => void>();
  const debounceMs = options.debounceMs ?? 100;

  const reload = (): Promise<void> => {
    // Loads run one after another so that a slow load never overwrites a newer one.
    loading = loading.then(async () => {
      const next = await loadStateDir(dir, ++version);
      snapshot = next;
      for (const listener of listeners) listener(next);
    });
    return loading;
  };

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
        timer = setTimeout(() => void reload().catch((error: Error) => options.onError?.(error)), debounceMs);
      });
      watcher.on("error", (error) => options.onError?.(error));
    },
    async stop() {
      clearTimeout(timer);
      watcher?.close();
      await loading;
    },
  };
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
