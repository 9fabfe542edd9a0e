// The node enforcer's reconcile loop. It follows a ClusterState; each sync asks
// the desired-state source (the compiler, through the seam below) for the tables of this node's
// pods, and brings every netns that differs from what was last applied there to its desired table
// with ONE nft transaction (plan.ts), at most `parallelism` netns at a time.
//
// What the enforcer believes a netns holds is kept in memory per pod. It is "unknown" at start, after
// a failed apply, and when the pod's netns changed identity (a new sandbox); an unknown netns is read
// back (`nft list table`, only nadguard's table) and either adopted as is, when it already equals the
// desired table, or replaced whole, atomically. A periodic full sync re-reads every netns (drift
// repair); partial syncs touch only pods whose desired table changed. A deleted pod is forgotten,
// its netns left alone. Stopping lets the sync in progress finish (each transaction is all or
// nothing) and removes nothing unless asked: a restarting enforcer must not open pods.
import { formatProblem, type Problem } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import type { ClusterState } from "../cluster/cluster-state.js";
import { defaultNftExecutor } from "../nft/addon.js";
import type { NftExecutor } from "../nft/exec.js";
import type { NftError } from "../nft/errors.js";
import { Nft } from "../nft/nft.js";
import type { TableState } from "../nft/state.js";
import type { Op } from "../nft/transaction.js";
import type { EnforcerMetrics, SyncKind } from "./metrics.js";
import { podRefKey, type NetnsHandle, type NetnsResolver, type PodRef } from "./netns.js";
import { elementPlan, planTransaction, REMOVE_TABLE_OPS, sameState, type ApplyMode, type Known, type Plan } from "./plan.js";
import { boundedFrequencyRunner, type Runner, type RunnerOptions, type RunOutcome, type RunReason } from "./runner.js";

/** What one pod's netns should hold. */
export interface DesiredTable {
  readonly state: TableState;
  /** Equal fingerprints mean equal states: an unchanged pod is skipped without comparing tables. */
  readonly fingerprint: string;
  /** What could not be expressed for this pod (logged once per change). */
  readonly warnings?: readonly Problem[];
  /**
   * The compiler's transaction from the desired table of fingerprint `from` to this one. Used as the
   * plan when the netns is known to hold exactly that table and the ops change elements only; else
   * the enforcer plans from the tables (plan.ts).
   */
  readonly transition?: { readonly from: string; readonly ops: readonly Op[] };
}

/**
 * The seam to the policy compiler: the desired tables of the pods of `node` that need one, by
 * `namespace/name`. A local pod left out needs no table (none is kept in its netns). Called once
 * per sync with the newest snapshot; an implementation may keep state between calls to compile
 * incrementally. Must not throw for invalid objects.
 */
export interface DesiredStateSource {
  desired(snapshot: Snapshot, node: string): ReadonlyMap<string, DesiredTable>;
}

export type LogLevel = "error" | "warn" | "info" | "debug";

/**
 * A log event: a message a person reads (it names the pod) and the fields a machine reads (`pod`,
 * `netns`, …). The command turns these into JSON lines; the enforcer itself prints nothing.
 */
export type EnforcerLog = (level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>) => void;

export interface EnforcerOptions {
  /** spec.nodeName of the pods to enforce. */
  readonly node: string;
  readonly state: ClusterState;
  readonly source: DesiredStateSource;
  readonly resolver: NetnsResolver;
  /** Default: `defaultNftExecutor()` (the native addon; `nsenter --net=PATH nft -f FILE` where it cannot load). */
  readonly executor?: NftExecutor;
  /** Netns worked on at once in a sync. Default 8. */
  readonly parallelism?: number;
  readonly runner?: RunnerOptions;
  readonly metrics?: EnforcerMetrics;
  /** Every apply at info (pod, netns, mode, elements added and removed, duration); failures at error; what was left unchanged and each sync's totals at debug. */
  readonly log?: EnforcerLog;
  /** Clock for latencies, in ms. Default `performance.now` based. */
  readonly now?: () => number;
}

export interface PodOutcome {
  readonly pod: string;
  readonly netns?: string;
  readonly mode: ApplyMode;
  /** The netns already held the desired table when read back: adopted without writing. */
  readonly adopted?: boolean;
}

export interface PodFailure {
  readonly pod: string;
  readonly netns?: string;
  readonly problem: Problem;
}

export interface SyncReport {
  readonly kind: SyncKind;
  /** False when there was no snapshot yet (nothing was done). */
  readonly ran: boolean;
  readonly outcomes: readonly PodOutcome[];
  readonly failures: readonly PodFailure[];
  readonly durationMs: number;
}

/** What the enforcer believes about one local pod's netns. */
interface PodRecord {
  uid: string | undefined;
  netns: NetnsHandle | undefined;
  known: Known;
  /** The fingerprint of the desired table `known` was applied from; undefined when not known to match any. */
  fingerprint: string | undefined;
  /** When the oldest change not yet applied to this netns happened (for the latency histogram). */
  pendingSince: number | undefined;
}

interface WorkItem {
  readonly key: string;
  readonly ref: PodRef;
  readonly desired: DesiredTable | undefined;
  readonly record: PodRecord;
}

const UNKNOWN: Known = { kind: "unknown" };
const ABSENT: Known = { kind: "absent" };

/** The pods whose netns the enforcer of `node` manages: scheduled there, not on the host network (also what `enforce --cleanup` cleans). */
export function localPods(snapshot: Snapshot, node: string): Map<string, PodRef> {
  const out = new Map<string, PodRef>();
  for (const [key, pod] of snapshot.pods) {
    if (pod.spec.nodeName !== node || pod.spec.hostNetwork === true) continue;
    const ref: PodRef = { namespace: pod.metadata.namespace ?? "default", name: pod.metadata.name ?? "", ...(pod.metadata.uid ? { uid: pod.metadata.uid } : {}) };
    out.set(key, ref);
  }
  return out;
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function inPool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class Enforcer {
  readonly #opts: EnforcerOptions;
  readonly #executor: NftExecutor;
  readonly #records = new Map<string, PodRecord>();
  readonly #now: () => number;
  #runner: Runner | undefined;
  #unsubscribe: (() => void) | undefined;
  #pendingSince: number | undefined;
  #syncing: Promise<unknown> = Promise.resolve();
  #stopped = false;
  #lastReport: SyncReport | undefined;

  constructor(options: EnforcerOptions) {
    this.#opts = options;
    this.#executor = options.executor ?? defaultNftExecutor().executor;
    this.#now = options.now ?? (() => performance.now());
  }

  /** The report of the last sync, if any. */
  get lastReport(): SyncReport | undefined {
    return this.#lastReport;
  }

  /** Pods the enforcer tracks, with what it believes their netns hold (for status and tests). */
  tracked(): Map<string, { netns?: string; known: Known["kind"]; fingerprint?: string }> {
    const out = new Map<string, { netns?: string; known: Known["kind"]; fingerprint?: string }>();
    for (const [key, r] of this.#records) {
      out.set(key, { ...(r.netns ? { netns: r.netns.path } : {}), known: r.known.kind, ...(r.fingerprint !== undefined ? { fingerprint: r.fingerprint } : {}) });
    }
    return out;
  }

  /**
   * Starts following the cluster state: a full sync at once, then a sync per change (coalesced,
   * bounded by the runner's intervals) and a full one every maxInterval. The ClusterState must be
   * started by the caller.
   */
  start(): void {
    if (this.#runner || this.#stopped) return;
    this.#unsubscribe = this.#opts.state.subscribe(() => {
      this.#pendingSince ??= this.#now();
      this.#runner?.request();
    });
    let first = true;
    this.#runner = boundedFrequencyRunner(
      async (reason: RunReason): Promise<RunOutcome> => {
        const kind: SyncKind = first || reason === "periodic" ? "full" : "partial";
        first = false;
        const report = await this.sync(kind);
        return report.failures.length > 0 ? "retry" : "done";
      },
      { ...this.#opts.runner, onError: (error) => this.#log("error", `sync failed: ${(error as Error).message}`, { err: (error as Error).stack ?? String(error) }) },
    );
    this.#runner.start();
  }

  /**
   * One reconcile. `full`: every local pod's netns is resolved and read back (start, periodic
   * resync); `partial`: only pods whose desired table changed or whose netns is not known to hold
   * it. Syncs never overlap (a second call waits for the first).
   */
  sync(kind: SyncKind = "full"): Promise<SyncReport> {
    const run = this.#syncing.then(() => this.#sync(kind));
    this.#syncing = run.catch(() => undefined);
    return run;
  }

  /** Stops following changes and waits for the sync in progress; with `removeTables`, then deletes nadguard's table from every netns it manages. */
  async stop(options: { removeTables?: boolean } = {}): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    await this.#runner?.stop();
    await this.#syncing;
    if (!options.removeTables) return;
    const targets = [...this.#records].filter(([, r]) => r.netns !== undefined && r.known.kind !== "absent");
    await inPool(targets, this.#opts.parallelism ?? 8, async ([key, r]) => {
      const nft = new Nft({ netns: r.netns!.path, executor: this.#executor });
      const result = await nft.run(nft.transaction().append(REMOVE_TABLE_OPS));
      if (result.ok) {
        r.known = ABSENT;
        this.#log("info", `${key}: table inet nadguard removed`, { pod: key, netns: r.netns!.path });
      } else this.#log("error", `${key}: cannot remove table inet nadguard from ${r.netns!.path}: ${result.error.message}`, { pod: key, netns: r.netns!.path, code: result.error.code });
    });
  }

  async #sync(kind: SyncKind): Promise<SyncReport> {
    const started = this.#now();
    const snapshot = this.#opts.state.current();
    if (!snapshot) return { kind, ran: false, outcomes: [], failures: [], durationMs: 0 };
    const since = this.#pendingSince;
    this.#pendingSince = undefined;
    const desired = this.#opts.source.desired(snapshot, this.#opts.node);
    const local = localPods(snapshot, this.#opts.node);
    this.#forgetGone(local);

    const work = this.#workList(local, desired, kind, since);

    const outcomes: PodOutcome[] = [];
    const failures: PodFailure[] = [];
    const handles = await this.#opts.resolver.resolve(work.map((w) => w.ref));
    await inPool(work, this.#opts.parallelism ?? 8, async (item) => {
      const lookup = handles.get(podRefKey(item.ref));
      if (!lookup || !lookup.ok) {
        // A pod that wants no table and has no netns (pending, or its sandbox is gone) is no failure.
        if (item.desired) failures.push({ pod: item.key, problem: lookup?.error ?? { code: "netns.not-found", path: item.key, message: "not resolved" } });
        return;
      }
      const result = await this.#reconcilePod(item, lookup.value, kind);
      if ("problem" in result) failures.push(result);
      else outcomes.push(result);
    });

    const byPod = (a: { pod: string }, b: { pod: string }): number => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0);
    outcomes.sort(byPod);
    failures.sort(byPod);
    for (const f of failures) {
      this.#opts.metrics?.observeFailure(f.problem.code.startsWith("nft.") ? f.problem.code.slice(4) : f.problem.code.startsWith("netns.") ? "netns" : f.problem.code);
      // A problem whose path is the pod itself (no netns for it) is not worth naming the pod twice.
      const problem = f.problem.path === f.pod ? f.problem.message : formatProblem(f.problem);
      this.#log("error", `${f.pod}${f.netns ? ` (${f.netns})` : ""}: ${problem}`, { pod: f.pod, ...(f.netns && { netns: f.netns }), code: f.problem.code });
    }
    const managedNetns = [...this.#records.values()].filter((r) => r.known.kind === "table").length;
    this.#opts.metrics?.setManaged(desired.size, managedNetns);
    const durationMs = this.#now() - started;
    this.#opts.metrics?.observeSync(kind, durationMs / 1000);
    const report: SyncReport = { kind, ran: true, outcomes, failures, durationMs };
    this.#lastReport = report;
    const changed = outcomes.filter((o) => o.mode !== "none").length;
    this.#log("debug", `${kind} sync: ${outcomes.length} netns, ${changed} changed, ${failures.length} failed`, { kind, reconciled: outcomes.length, changed, failed: failures.length, durationMs: rounded(durationMs) });
    return report;
  }

  /** The pods a sync must look at: all on a full sync; on a partial one, those whose desired table differs from what their netns is known to hold. */
  #workList(local: ReadonlyMap<string, PodRef>, desired: ReadonlyMap<string, DesiredTable>, kind: SyncKind, since: number | undefined): WorkItem[] {
    const work: WorkItem[] = [];
    for (const [key, ref] of local) {
      const want = desired.get(key);
      let record = this.#records.get(key);
      if (!record) {
        // A pod first seen in a partial sync was created after the last full one: its netns is new and holds no table.
        if (!want && kind === "partial") continue;
        record = { uid: ref.uid, netns: undefined, known: UNKNOWN, fingerprint: undefined, pendingSince: undefined };
        this.#records.set(key, record);
      }
      if (since !== undefined) record.pendingSince ??= since;
      const changed = want ? record.fingerprint !== want.fingerprint || record.known.kind !== "table" : record.known.kind !== "absent";
      if (kind === "full" || changed) work.push({ key, ref, desired: want, record });
      else record.pendingSince = undefined;
    }
    return work;
  }

  #forgetGone(local: ReadonlyMap<string, PodRef>): void {
    for (const [key, record] of this.#records) {
      const ref = local.get(key);
      if (ref && ref.uid === record.uid) continue;
      // Deleted, moved to another node, or replaced by a pod of the same name: leave its netns alone.
      this.#records.delete(key);
      this.#log("info", `${key}: forgotten (${ref ? "replaced by a new pod of the same name" : "no longer on this node"})`, { pod: key });
    }
  }

  async #reconcilePod(item: WorkItem, handle: NetnsHandle, kind: SyncKind): Promise<PodOutcome | PodFailure> {
    const { record, desired } = item;
    if (record.netns?.id !== handle.id) {
      if (record.netns) this.#log("info", `${item.key}: new network namespace at ${handle.path}`, { pod: item.key, netns: handle.path });
      record.known = UNKNOWN;
      record.fingerprint = undefined;
    }
    record.netns = handle;
    const nft = new Nft({ netns: handle.path, executor: this.#executor });
    let adopted = false;
    if (kind === "full" || record.known.kind === "unknown") {
      const refreshed = await this.#refresh(item, nft, handle);
      if ("problem" in refreshed) return refreshed;
      adopted = refreshed.adopted;
    }
    const plan = planFor(record, desired);
    if (plan.mode === "none") this.#log("debug", `${item.key}: ${adopted ? "already enforced (adopted)" : "unchanged"}`, { pod: item.key, netns: handle.path, adopted });
    else {
      const failure = await this.#apply(item, nft, handle, plan);
      if (failure) return failure;
    }
    record.known = desired ? knownTable(desired) : ABSENT;
    record.fingerprint = desired?.fingerprint;
    record.pendingSince = undefined;
    return { pod: item.key, netns: handle.path, mode: plan.mode, ...(adopted ? { adopted } : {}) };
  }

  /** Runs the plan's transaction; logs it (info) and its pod's warnings, or returns the failure (the netns is then unknown). */
  async #apply(item: WorkItem, nft: Nft, handle: NetnsHandle, plan: Plan): Promise<PodFailure | undefined> {
    const { record, desired } = item;
    const { mode, added, removed } = plan;
    if (mode === "none") return undefined;
    const started = this.#now();
    const result = await nft.run(nft.transaction().append(plan.ops));
    if (!result.ok) {
      record.known = UNKNOWN;
      record.fingerprint = undefined;
      return { pod: item.key, netns: handle.path, problem: result.error };
    }
    const durationMs = rounded(this.#now() - started);
    this.#log("info", `${item.key}: applied (${mode}, +${added} -${removed ?? "?"} elements)`, { pod: item.key, netns: handle.path, mode, added, removed: removed ?? null, durationMs });
    this.#opts.metrics?.observeApply(mode);
    if (record.pendingSince !== undefined) this.#opts.metrics?.observeEventToApplied((this.#now() - record.pendingSince) / 1000);
    for (const warning of desired?.warnings ?? []) {
      this.#log("warn", `${item.key}: ${formatProblem(warning)}`, { pod: item.key, code: warning.code });
      this.#opts.metrics?.observeWarning(warning.code);
    }
    return undefined;
  }

  /**
   * Reads the netns's table back and updates what the record believes: a table changed behind
   * nadguard's back is noticed (and rebuilt by the plan), one that already equals the desired
   * table is adopted without a write, and an unreadable one is marked unknown (replaced whole).
   */
  async #refresh(item: WorkItem, nft: Nft, handle: NetnsHandle): Promise<{ adopted: boolean } | PodFailure> {
    const { record, desired } = item;
    const read = await this.#readBack(nft);
    if (!read.ok) {
      record.known = UNKNOWN;
      record.fingerprint = undefined;
      // nsenter or nft could not run: the netns is gone or the node is broken; nothing to apply.
      if (read.problem.reason === "exec") return { pod: item.key, netns: handle.path, problem: read.problem };
      // A table nadguard cannot read is replaced whole: that needs no knowledge of its content.
      this.#log("warn", `${item.key}: cannot read table inet nadguard in ${handle.path} (${read.problem.message}); replacing it`, { pod: item.key, netns: handle.path, code: read.problem.code });
      return { adopted: false };
    }
    if (record.known.kind === "table" && (read.known.kind !== "table" || !sameState(record.known.state, read.known.state))) {
      this.#log("warn", `${item.key}: table inet nadguard in ${handle.path} was changed behind nadguard's back; restoring it`, { pod: item.key, netns: handle.path });
      record.fingerprint = undefined;
    }
    if (record.known.kind === "table" && record.fingerprint !== undefined) return { adopted: false };
    record.known = read.known;
    const adopted = desired !== undefined && read.known.kind === "table" && sameState(read.known.state, desired.state);
    if (adopted) record.known = knownTable(desired);
    return { adopted };
  }

  async #readBack(nft: Nft): Promise<{ ok: true; known: Known } | { ok: false; problem: NftError }> {
    const listing = await nft.list({ elements: true, text: true });
    if (listing.ok) return { ok: true, known: { kind: "table", state: listing.value } };
    if (listing.error.reason === "not-found") return { ok: true, known: ABSENT };
    return { ok: false, problem: listing.error };
  }

  #log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void {
    this.#opts.log?.(level, message, fields);
  }
}

/** The compiler's element transaction when the netns holds the table it starts from; else the plan from the tables. */
function planFor(record: { readonly known: Known; readonly fingerprint: string | undefined }, desired: DesiredTable | undefined): Plan {
  const transition = desired?.transition;
  const given = transition && record.known.kind === "table" && record.fingerprint === transition.from ? elementPlan(transition.ops) : undefined;
  return given ?? planTransaction(record.known, desired?.state);
}

/** A netns known to hold `desired`'s table, read from it only when needed (a source may build the table on first read). */
function knownTable(desired: DesiredTable): Known {
  return {
    kind: "table",
    get state(): TableState {
      return desired.state;
    },
  };
}

/** Milliseconds to a tenth, for logs. */
function rounded(ms: number): number {
  return Math.round(ms * 10) / 10;
}
