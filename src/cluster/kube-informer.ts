// One resource, listed and watched with client-node's ListWatch, made safe to run for months.
// What ListWatch (client-node 2.0.1, dist/cache.js and dist/watch.js) does and does not do, and
// what this file adds (see also kubernetes-client/javascript#3020):
//
// - 410 Gone (an ERROR event with code 410, or HTTP 410 on the watch request): ListWatch clears
//   its resourceVersion and relists by itself. Counted here as a restart "expired".
// - Any other failure (list error, HTTP 5xx/403 on the watch, a stream cut mid-chunk) makes it
//   emit `error` and STOP for good. Here: restart with exponential backoff and jitter; the
//   backoff resets on the next successful list or watch event.
// - Watch.watch in 2.0.1 arms a 30 s timer that is reset on every chunk received (2.0.0 aborted
//   every watch after 30 s whatever happened). When it fires ListWatch re-watches from the last
//   resourceVersion without error. No bookmarks are requested, so a quiet resource cut every
//   30 s keeps an old resourceVersion until the server answers 410 and a full relist follows.
//   Here every watch asks for bookmarks and a server-side timeoutSeconds below 30 s (jittered
//   20–28 s): kube-apiserver sends a bookmark 2 s before that deadline, then ends the stream,
//   so a quiet resource reconnects from a fresh resourceVersion and is never relisted.
// - Half-open TCP: a watch that stays silent longer than watchdogMs (no event, no bookmark) is
//   aborted and re-watched from its resourceVersion. 2.0.1's own 30 s timer does the same; the
//   watchdog does not depend on it (it is private and was wrong in 2.0.0).
// - The list: ListWatch calls a function of ours. It pages (limit/continue) so that 10,000 pods
//   never sit in memory as one response, and strips every object before ListWatch caches it;
//   watch events are stripped before ListWatch sees them too, so its cache is the only copy.
// - After a watch that ended cleanly without any event or bookmark, ListWatch waits 1, 2, 4… up
//   to 30 s before the next one (its guard against a server that closes at once). A quiet resource
//   on a server that sends no bookmarks would then see changes up to 30 s late: the wait is capped
//   at 1 s here (RECONNECT_DELAY_CAP_MS), which still bounds a close-at-once server to 1 request/s.
// - Stopping: ListWatch.stop() reports the abort it causes as an `error`, and a watch it starts
//   after a list that was in flight during stop() would run forever. Both are absorbed here.
// - A throw inside a watch callback is swallowed by Watch (it sits in its JSON.parse try): the
//   event would be lost silently. ingest() never throws.
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeConfig, KubernetesListObject } from "@kubernetes/client-node";
import { ListWatch } from "@kubernetes/client-node/dist/cache.js";
import { Watch } from "@kubernetes/client-node/dist/watch.js";
import { kubeRequest } from "../authz/kube-http.js";
import { type KubeResource, ingest } from "./kube-resources.js";
import type { KubeObject } from "./kube-strip.js";

export type RestartReason = "error" | "watchdog" | "expired";

export interface Backoff {
  /** First delay after a failure; default 1 s (client-go's reflector starts at 800 ms). */
  readonly initialMs: number;
  /** Ceiling; default 30 s. */
  readonly maxMs: number;
}

export interface InformerTuning {
  /** Objects per list page; default 500 (client-go's default page size). */
  readonly pageSize?: number;
  /** A watch silent this long (no event, no bookmark) is restarted; default 60 s. */
  readonly watchdogMs?: number;
  /** Server-side watch timeout, drawn in [min, max] seconds per watch; default [20, 28] (see above). */
  readonly watchTimeoutSeconds?: readonly [number, number];
  readonly backoff?: Backoff;
  /** Limit of one list page request; default 60 s. */
  readonly listTimeoutMs?: number;
}

export interface InformerOptions extends InformerTuning {
  readonly kubeConfig: KubeConfig;
  readonly resource: KubeResource;
  /** e.g. `spec.nodeName=node-1`. */
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /** Something in the cache changed (object added, updated, deleted), or the first list completed. */
  readonly onChange: () => void;
  /** A failure, phrased with the resource; the informer retries by itself. */
  readonly onError: (error: Error) => void;
  /** Every restart, for metrics. */
  readonly onRestart?: (reason: RestartReason) => void;
}

export interface InformerStatus {
  /** `plural.group`. */
  readonly resource: string;
  readonly synced: boolean;
  readonly objects: number;
  readonly lists: number;
  readonly watches: number;
  readonly events: number;
  readonly restarts: Readonly<Record<RestartReason, number>>;
  readonly lastError?: string;
}

/** See the header: the longest pause ListWatch may take between two watches that ended cleanly. */
export const RECONNECT_DELAY_CAP_MS = 1_000;

export const DEFAULT_TUNING = {
  pageSize: 500,
  watchdogMs: 60_000,
  watchTimeoutSeconds: [20, 28] as const,
  backoff: { initialMs: 1_000, maxMs: 30_000 },
  listTimeoutMs: 60_000,
} satisfies Required<InformerTuning>;

interface WatchHooks {
  closed(): boolean;
  watchdogMs(): number;
  timeoutSeconds(): number;
  track(controller: AbortController): void;
  untrack(controller: AbortController): void;
  opened(): void;
  event(phase: string, object: unknown): unknown;
  ended(error: unknown): void;
  watchdog(): void;
}

const abortedController = (): AbortController => {
  const controller = new AbortController();
  controller.abort();
  return controller;
};

const timeoutError = (message: string): Error => new DOMException(message, "TimeoutError");

/**
 * client-node's Watch with the additions ListWatch cannot make itself: bookmarks and a server-side
 * timeout on every request, a watchdog, objects stripped before ListWatch caches them, and errors
 * that happen before the request (credentials) reported through `done` instead of rejecting an
 * un-awaited promise.
 */
class GuardedWatch extends Watch {
  readonly #hooks: WatchHooks;

  constructor(kubeConfig: KubeConfig, hooks: WatchHooks) {
    super(kubeConfig);
    this.#hooks = hooks;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const hooks = this.#hooks;
    if (hooks.closed()) {
      queueMicrotask(() => done(null));
      return abortedController();
    }
    let controller: AbortController | undefined;
    let fired = false;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        fired = true;
        hooks.watchdog();
        controller?.abort();
      }, hooks.watchdogMs());
      timer.unref();
    };
    const finish = (error: unknown): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (controller) hooks.untrack(controller);
      if (hooks.closed()) return done(null);
      if (!fired) hooks.ended(error);
      // ListWatch re-watches from its resourceVersion, at once and without error, after a TimeoutError.
      done(fired ? timeoutError(`watchdog: no event or bookmark for ${hooks.watchdogMs()} ms`) : error);
    };
    const query = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: hooks.timeoutSeconds() };
    arm();
    hooks.opened();
    try {
      controller = await super.watch(
        path,
        query,
        (phase, object) => {
          arm();
          callback(phase, hooks.event(phase, object));
        },
        finish,
      );
    } catch (error) {
      queueMicrotask(() => finish(error));
      return abortedController();
    }
    if (finished) return controller;
    hooks.track(controller);
    if (fired || hooks.closed()) controller.abort();
    return controller;
  }
}

interface RawList {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: unknown[] | null;
}

/** A resource's objects, kept current by list and watch, restarted on every kind of failure. */
export class KubeInformer {
  readonly resource: KubeResource;
  readonly #options: InformerOptions;
  readonly #tuning: Required<InformerTuning>;
  readonly #listWatch: ListWatch<KubeObject>;
  readonly #inflight = new Set<AbortController>();
  readonly #syncWaiters: (() => void)[] = [];
  #running = false;
  #closed = false;
  #synced = false;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;
  readonly #stats = { lists: 0, watches: 0, events: 0, restarts: { error: 0, watchdog: 0, expired: 0 } };

  constructor(options: InformerOptions) {
    this.resource = options.resource;
    this.#options = options;
    this.#tuning = { ...DEFAULT_TUNING, ...definedOf(options) };
    const watch = new GuardedWatch(options.kubeConfig, this.#watchHooks());
    this.#listWatch = new ListWatch<KubeObject>(
      options.resource.path,
      watch,
      () => this.#list(),
      false,
      options.labelSelector,
      options.fieldSelector,
      { delayFn: (ms) => sleep(Math.min(ms, RECONNECT_DELAY_CAP_MS)) },
    );
    const changed = (): void => options.onChange();
    this.#listWatch.on("add", changed);
    this.#listWatch.on("update", changed);
    this.#listWatch.on("delete", changed);
    this.#listWatch.on("error", (error: unknown) => this.#failed(error));
  }

  /** Starts listing and watching; failures are retried until stop(). */
  start(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    this.#run();
  }

  /** True once the first list has been applied to the cache; stays true across restarts. */
  synced(): boolean {
    return this.#synced;
  }

  /** Resolves when synced() becomes true. */
  whenSynced(): Promise<void> {
    return this.#synced ? Promise.resolve() : new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  /** The cached objects (stripped and validated by ingest). */
  objects(): readonly KubeObject[] {
    return this.#listWatch.list();
  }

  status(): InformerStatus {
    return {
      resource: this.resource.name,
      synced: this.#synced,
      objects: this.#listWatch.list().length,
      lists: this.#stats.lists,
      watches: this.#stats.watches,
      events: this.#stats.events,
      restarts: { ...this.#stats.restarts },
      ...(this.#lastError !== undefined && { lastError: this.#lastError }),
    };
  }

  /** Stops for good: aborts the list or watch in flight; no callback follows. */
  async stop(): Promise<void> {
    this.#closed = true;
    this.#running = false;
    clearTimeout(this.#restartTimer);
    await this.#listWatch.stop();
    for (const controller of this.#inflight) controller.abort();
    this.#inflight.clear();
  }

  #run(): void {
    this.#listWatch.start().catch((error: unknown) => this.#failed(error));
  }

  #failed(error: unknown): void {
    if (!this.#running) return; // the abort of stop(), reported by ListWatch as an error
    this.#failures += 1;
    this.#stats.restarts.error += 1;
    this.#options.onRestart?.("error");
    const { initialMs, maxMs } = this.#tuning.backoff;
    const delay = Math.round(Math.min(maxMs, initialMs * 2 ** (this.#failures - 1)) * (0.8 + Math.random() * 0.4));
    this.#lastError = messageOf(error);
    this.#options.onError(new Error(`${this.resource.name}: ${this.#lastError}; retrying in ${delay} ms`));
    clearTimeout(this.#restartTimer);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#running) this.#run();
    }, delay);
  }

  #healthy(): void {
    this.#failures = 0;
  }

  async #list(): Promise<KubernetesListObject<KubeObject>> {
    const controller = new AbortController();
    this.#inflight.add(controller);
    try {
      const items: KubeObject[] = [];
      let resourceVersion = "";
      let next: string | undefined;
      do {
        const page: RawList = await kubeRequest<RawList>(this.#options.kubeConfig, {
          path: this.resource.path,
          query: {
            limit: this.#tuning.pageSize,
            continue: next,
            fieldSelector: this.#options.fieldSelector,
            labelSelector: this.#options.labelSelector,
          },
          signal: controller.signal,
          timeoutMs: this.#tuning.listTimeoutMs,
        });
        // Every page of a paginated list is served at the resourceVersion of the first.
        if (resourceVersion === "") resourceVersion = page.metadata?.resourceVersion ?? "";
        for (const raw of page.items ?? []) items.push(ingest(this.resource, raw));
        next = page.metadata?.continue || undefined;
      } while (next !== undefined);
      this.#stats.lists += 1;
      this.#healthy();
      // ListWatch applies the items after this promise resolves; a macrotask later they are in.
      setImmediate(() => this.#listed());
      return { apiVersion: "v1", kind: "List", metadata: { resourceVersion }, items };
    } finally {
      this.#inflight.delete(controller);
    }
  }

  #listed(): void {
    if (this.#closed) return;
    if (!this.#synced) {
      this.#synced = true;
      for (const resolve of this.#syncWaiters.splice(0)) resolve();
    }
    this.#options.onChange();
  }

  #watchHooks(): WatchHooks {
    const [min, max] = this.#tuning.watchTimeoutSeconds;
    return {
      closed: () => this.#closed,
      watchdogMs: () => this.#tuning.watchdogMs,
      timeoutSeconds: () => min + Math.floor(Math.random() * (max - min + 1)),
      track: (controller) => this.#inflight.add(controller),
      untrack: (controller) => this.#inflight.delete(controller),
      opened: () => {
        this.#stats.watches += 1;
      },
      event: (phase, object) => this.#event(phase, object),
      ended: (error) => {
        const e = error as { statusCode?: number; name?: string } | null;
        if (e?.statusCode === 410) this.#expired();
        // client-node's own inactivity timer (30 s in 2.0.1): with watches shorter than that, only a silent stream gets there.
        else if (e?.name === "TimeoutError") this.#silent("client-node's watch inactivity timeout");
      },
      watchdog: () => this.#silent(`silent for ${this.#tuning.watchdogMs} ms`),
    };
  }

  #silent(why: string): void {
    this.#stats.restarts.watchdog += 1;
    this.#options.onRestart?.("watchdog");
    this.#options.onError(new Error(`${this.resource.name}: watch ${why}; re-watching from its resourceVersion`));
  }

  #expired(): void {
    this.#stats.restarts.expired += 1;
    this.#options.onRestart?.("expired");
  }

  #event(phase: string, object: unknown): unknown {
    this.#stats.events += 1;
    switch (phase) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED":
        this.#healthy();
        return ingest(this.resource, object);
      case "BOOKMARK":
        // ListWatch reads only metadata.resourceVersion of a bookmark.
        return { metadata: { resourceVersion: (object as KubeObject | null)?.metadata?.resourceVersion } };
      case "ERROR":
        if ((object as { code?: number } | null)?.code === 410) this.#expired();
        else this.#options.onError(new Error(`${this.resource.name}: watch ERROR event: ${messageOf(object)}`));
        return object;
      default:
        return object;
    }
  }
}

const TUNING_KEYS = ["pageSize", "watchdogMs", "watchTimeoutSeconds", "backoff", "listTimeoutMs"] as const;

/** The tuning keys that are set, so that an explicit `undefined` keeps the default. */
function definedOf(tuning: InformerTuning): Partial<Required<InformerTuning>> {
  const out: Record<string, unknown> = {};
  for (const key of TUNING_KEYS) if (tuning[key] !== undefined) out[key] = tuning[key];
  return out as Partial<Required<InformerTuning>>;
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === "object" && error !== null && "message" in error) return String((error as { message: unknown }).message);
  return String(error);
}
