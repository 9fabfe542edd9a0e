// ClusterState over Kubernetes informers (Kubernetes mode): NADs, Namespaces and
// MultiNetworkPolicies for the webhook and the enforcer, Pods of one node for the enforcer, and
// RBAC objects only when offline RBAC is asked for (in a cluster the SubjectAccessReview reviewer
// of src/authz/sar.ts answers instead). Every informer restarts itself on failure
// (kube-informer.ts); this file turns their caches into immutable Snapshots, one per burst of
// events, and is ready once every informer's first list is in.
import type { KubeConfig } from "@kubernetes/client-node";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Snapshot } from "../api/snapshot.js";
import type { ClusterState } from "./cluster-state.js";
import { type InformerStatus, type InformerTuning, KubeInformer, type RestartReason } from "./kube-informer.js";
import { RESOURCES, type WatchedKind, placeOf, problemsOf } from "./kube-resources.js";
import { SnapshotBuilder } from "./snapshot-builder.js";

/** What to watch. Namespaces, NADs and policies default on; pods and RBAC off. */
export interface WatchSelection {
  readonly namespaces?: boolean;
  readonly nads?: boolean;
  readonly policies?: boolean;
  /** `true`: every pod; `{ nodeName }`: the pods of that node (field selector spec.nodeName). */
  readonly pods?: boolean | { readonly nodeName: string };
  /** Roles, ClusterRoles and their bindings, for the offline RBAC evaluator. */
  readonly rbac?: boolean;
}

export interface KubeStateOptions {
  readonly kubeConfig: KubeConfig;
  readonly watch?: WatchSelection;
  /** Events within this window after the first make one snapshot; default 50 ms. */
  readonly debounceMs?: number;
  readonly tuning?: InformerTuning;
  /** start() rejects when the first lists are not all in after this long; default: waits. */
  readonly syncTimeoutMs?: number;
  /** Informer failures and watchdog restarts (each retried by itself), and listener errors. */
  readonly onError?: (error: Error) => void;
  /** Informer metrics go here when given. */
  readonly registry?: Registry;
}

export interface KubeState extends ClusterState {
  /** Per informer: synced, object count, restarts by reason, last error. */
  status(): readonly InformerStatus[];
}

export const DEFAULT_DEBOUNCE_MS = 50;

interface InformerSpec {
  readonly kind: WatchedKind;
  readonly fieldSelector?: string;
}

/** The informers a selection asks for, in the order they are added to snapshots. */
export function informerSpecs(selection: WatchSelection = {}): InformerSpec[] {
  const specs: InformerSpec[] = [];
  if (selection.namespaces !== false) specs.push({ kind: "Namespace" });
  if (selection.nads !== false) specs.push({ kind: "NetworkAttachmentDefinition" });
  if (selection.policies !== false) specs.push({ kind: "MultiNetworkPolicy" });
  const pods = selection.pods;
  if (pods === true) specs.push({ kind: "Pod" });
  else if (typeof pods === "object") specs.push({ kind: "Pod", fieldSelector: `spec.nodeName=${pods.nodeName}` });
  if (selection.rbac === true) {
    for (const kind of ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] as const) specs.push({ kind });
  }
  return specs;
}

interface InformerMetrics {
  restart(resource: string, reason: RestartReason): void;
  synced(resource: string, value: boolean): void;
  objects(resource: string, count: number): void;
}

function reuse<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function informerMetrics(registry: Registry | undefined): InformerMetrics | undefined {
  if (!registry) return undefined;
  const restarts = reuse(registry, "nadguard_kube_watch_restarts_total", () =>
    new Counter({
      name: "nadguard_kube_watch_restarts_total",
      help: "Informer restarts by resource and reason: error (retried with backoff), watchdog (silent watch), expired (410 Gone, relist).",
      labelNames: ["resource", "reason"] as const,
      registers: [registry],
    }),
  );
  const synced = reuse(registry, "nadguard_kube_informer_synced", () =>
    new Gauge({
      name: "nadguard_kube_informer_synced",
      help: "1 once the informer's first list is in.",
      labelNames: ["resource"] as const,
      registers: [registry],
    }),
  );
  const objects = reuse(registry, "nadguard_kube_objects", () =>
    new Gauge({
      name: "nadguard_kube_objects",
      help: "Objects cached per resource at the last snapshot.",
      labelNames: ["resource"] as const,
      registers: [registry],
    }),
  );
  return {
    restart: (resource, reason) => restarts.inc({ resource, reason }),
    synced: (resource, value) => synced.set({ resource }, value ? 1 : 0),
    objects: (resource, count) => objects.set({ resource }, count),
  };
}

/**
 * A ClusterState fed by informers. start() resolves with the first snapshot, built once every
 * informer has listed; later failures never unset readiness (the webhook keeps answering from
 * the last snapshot while a watch reconnects, which informers do by themselves).
 */
export function kubeState(options: KubeStateOptions): KubeState {
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const onError = options.onError ?? ((): void => undefined);
  const metrics = informerMetrics(options.registry);
  const listeners = new Set<(snapshot: Snapshot) => void>();
  const readyWaiters: (() => void)[] = [];
  let snapshot: Snapshot | undefined;
  let version = 0;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const schedule = (): void => {
    // Not a trailing debounce: a steady stream of events must not postpone snapshots forever.
    if (timer !== undefined || stopped) return;
    timer = setTimeout(publish, debounceMs);
  };

  const informers = informerSpecs(options.watch).map((spec) => {
    const resource = RESOURCES[spec.kind];
    return new KubeInformer({
      ...options.tuning,
      kubeConfig: options.kubeConfig,
      resource,
      ...(spec.fieldSelector !== undefined && { fieldSelector: spec.fieldSelector }),
      onChange: schedule,
      onError,
      onRestart: (reason) => metrics?.restart(resource.name, reason),
    });
  });

  function build(): Snapshot {
    const builder = new SnapshotBuilder(++version);
    for (const informer of informers) {
      const objects = informer.objects();
      metrics?.objects(informer.resource.name, objects.length);
      for (const object of objects) {
        const problems = problemsOf(object);
        if (problems) for (const problem of problems) builder.problem(problem);
        else builder.add(informer.resource.kind, object, `cluster: ${placeOf(informer.resource.kind, object)}`);
      }
    }
    return builder.build();
  }

  function publish(): void {
    timer = undefined;
    if (stopped || !informers.every((informer) => informer.synced())) return;
    for (const informer of informers) metrics?.synced(informer.resource.name, true);
    snapshot = build();
    for (const resolve of readyWaiters.splice(0)) resolve();
    for (const listener of listeners) {
      try {
        listener(snapshot);
      } catch (error) {
        onError(new Error(`a snapshot listener failed: ${(error as Error).message}`));
      }
    }
  }

  function waitReady(): Promise<void> {
    const ready = snapshot ? Promise.resolve() : new Promise<void>((resolve) => readyWaiters.push(resolve));
    const limit = options.syncTimeoutMs;
    if (limit === undefined || snapshot) return ready;
    let deadline: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      deadline = setTimeout(() => reject(new Error(notReadyMessage(informers, limit))), limit);
    });
    return Promise.race([ready, timeout]).finally(() => clearTimeout(deadline));
  }

  return {
    current: () => snapshot,
    ready: () => snapshot !== undefined,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async start() {
      for (const informer of informers) {
        metrics?.synced(informer.resource.name, false);
        informer.start();
      }
      await waitReady();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await Promise.all(informers.map((informer) => informer.stop()));
    },
    status: () => informers.map((informer) => informer.status()),
  };
}

function notReadyMessage(informers: readonly KubeInformer[], limitMs: number): string {
  const waiting = informers
    .filter((informer) => !informer.synced())
    .map((informer) => {
      const { resource, lastError } = informer.status();
      return lastError ? `${resource} (last error: ${lastError})` : resource;
    });
  return `the cluster state is not ready after ${limitMs} ms: still listing ${waiting.join(", ")}`;
}
