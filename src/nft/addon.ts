// The default nft executor: nadguard's own Node-API addon (native/nft/nft.c, built by `npm ci`
// through scripts/build-addon.sh against libnftables-dev) runs each script through libnftables on a
// libuv worker thread that enters the netns with setns(2) and returns to its own afterwards. An
// apply then costs no process start (`nsenter` + `nft` cost ~5-10 ms of CPU each, which made a
// change touching 100 netns take close to a second on a small node) and the same parser and single
// netlink batch as `nft -f FILE`: all or nothing, errors in nft's own `FILE:LINE:COL` format
// (src/nft/errors.ts maps them to operations), `--check` as libnftables' dry run. libnftables 1.0.6 is
// not thread-safe, so the addon runs it under one lock, dropped only while the kernel commits (a
// commit that deletes waits there 8-16 ms for an RCU grace period); calls are queued here so that
// those waiting for the lock do not hold libuv's threads (see callQueue). Where the addon
// cannot load (not built: no libnftables-dev at install time; libnftables1 missing at run time),
// nadguard applies through `ExecNftExecutor` (`nsenter --net=PATH nft -f FILE`); the commands that
// apply say once, when they start, which executor runs and why (`defaultNftExecutor`).
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Result } from "../api/errors.js";
import type { NftError } from "./errors.js";
import { ExecNftExecutor, listingResult, netnsPath, type ListOptions, type NftExecutor, type NftRunResult, type RunOptions } from "./exec.js";
import type { TableListing } from "./listing.js";
import type { TableRef } from "./objects.js";

/** What native/nft/nft.c exports. Both never reject: a netns that cannot be entered is exit code -1 with the reason on stderr. */
export interface NftAddon {
  /** `nft [--check] -f FILE` on the whole script, inside `netns` (a path) or the caller's (null). */
  apply(script: string, netns: string | null, dryRun: boolean): Promise<NftRunResult>;
  /** `nft [-j -t -a] COMMAND` (libnftables' output flags), inside `netns` or the caller's. */
  command(command: string, netns: string | null, outputFlags: number): Promise<NftRunResult>;
  /** Whether the kernel's commits run outside the addon's lock (native/nft/nft.c), so that calls in flight at once overlap them. */
  readonly parallelCommits: boolean;
}

// libnftables' output flags (nftables/libnftables.h): -a, -j, -t.
const OUTPUT_HANDLE = 1 << 3;
const OUTPUT_JSON = 1 << 4;
const OUTPUT_TERSE = 1 << 11;

/**
 * Runs at most `limit` calls of the addon at once, in order. The calls beyond one wait for the
 * addon's lock in libuv's thread pool, which file system work shares (UV_THREADPOOL_SIZE, default
 * 4): one thread is left to it. Only as many calls as there are kernel commits to overlap are
 * worth it: one when the addon cannot drop its lock during commits.
 */
function callQueue(limit: number): <T>(call: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (call) => {
    // A finished call hands its place to the oldest waiting one, so that none can jump the queue.
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    else running += 1;
    try {
      return await call();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running -= 1;
    }
  };
}

/** Calls in flight at once for an addon: all but one of libuv's threads when commits overlap, else one. */
export function addonConcurrency(addon: Pick<NftAddon, "parallelCommits">, threadpoolSize: string | undefined = process.env.UV_THREADPOOL_SIZE): number {
  const threads = Number(threadpoolSize);
  return addon.parallelCommits ? Math.max(1, (Number.isInteger(threads) && threads > 0 ? threads : 4) - 1) : 1;
}

export interface AddonExecutorOptions {
  /** A call not finished after this long fails (exit code -1); default 30 s, as `nft -f` processes are killed after. */
  readonly timeoutMs?: number;
  /** Where calls go once one has timed out; default `nft -f` processes (`new ExecNftExecutor()`). */
  readonly fallback?: () => NftExecutor;
}

/**
 * Applies and lists through the native addon. Holds no process or file: nothing to close.
 *
 * Each call has a time limit (`timeoutMs`). A thread cannot be killed: a call past its limit fails
 * with exit code -1 and a message saying so, and its libuv worker thread stays where it is stuck,
 * possibly inside libnftables holding the addon's lock, which every later call would wait for. The
 * executor is therefore broken from then on: this and later calls (those already queued included)
 * go through the fallback, `nft -f` processes, and the listeners of `onFallback` get one line
 * saying why (the commands log it at error). Should the stuck call end after all, its result is
 * dropped; the thread returns to libuv's pool, one fewer for file system work until then.
 */
export class AddonNftExecutor implements NftExecutor {
  readonly #addon: NftAddon;
  readonly #queue: <T>(call: () => Promise<T>) => Promise<T>;
  readonly #timeoutMs: number;
  readonly #makeFallback: () => NftExecutor;
  #fallback: NftExecutor | undefined;
  #broken: string | undefined;
  readonly #listeners: ((message: string) => void)[] = [];

  constructor(addon: NftAddon, options: AddonExecutorOptions = {}) {
    this.#addon = addon;
    this.#queue = callQueue(addonConcurrency(addon));
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#makeFallback = options.fallback ?? (() => new ExecNftExecutor());
  }

  /** Why calls go through `nft -f` processes now (a call timed out); undefined while the addon is used. */
  get fallenBack(): string | undefined {
    return this.#broken;
  }

  /** Calls `listener` once, with a line for the log, when the executor falls back to `nft -f` processes. */
  onFallback(listener: (message: string) => void): void {
    this.#listeners.push(listener);
  }

  run(script: string, opts: RunOptions): Promise<NftRunResult> {
    const netns = opts.netns === undefined ? null : netnsPath(opts.netns);
    return this.#queue(() => (this.#broken === undefined ? this.#limited(this.#addon.apply(script, netns, opts.check === true), netns) : this.#fallbackExecutor().run(script, opts)));
  }

  async list(table: TableRef, opts: ListOptions): Promise<Result<TableListing, NftError>> {
    if (this.#broken !== undefined) return this.#fallbackExecutor().list(table, opts);
    const cmd = `list table ${table.family} ${table.name}`;
    const netns = opts.netns === undefined ? null : netnsPath(opts.netns);
    const command = (flags: number): Promise<NftRunResult> => this.#queue(() => (this.#broken === undefined ? this.#limited(this.#addon.command(cmd, netns, flags), netns) : Promise.resolve(BROKEN_COMMAND)));
    const [json, text] = await Promise.all([command(opts.elements ? OUTPUT_JSON : OUTPUT_JSON | OUTPUT_TERSE), opts.text ? command(OUTPUT_HANDLE | OUTPUT_TERSE) : Promise.resolve(undefined)]);
    // A listing cut short by the executor breaking is asked again of the fallback, whole.
    if (json === BROKEN_COMMAND || text === BROKEN_COMMAND) return this.#fallbackExecutor().list(table, opts);
    return listingResult(table, opts, json, text);
  }

  /** The addon's result, or exit code -1 once the time limit passed (the executor then falls back). */
  async #limited(call: Promise<NftRunResult>, netns: string | null): Promise<NftRunResult> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), this.#timeoutMs);
    });
    try {
      const result = await Promise.race([call, late]);
      if (result !== "late") return result;
    } finally {
      clearTimeout(timer);
    }
    const stuck = `the native nft addon did not finish within ${this.#timeoutMs} ms in ${netns ?? "the host's network namespace"}`;
    if (this.#broken === undefined) {
      this.#broken = stuck;
      const line = `nft executor: nft -f processes from now on, because ${stuck} (its worker thread cannot be stopped and may hold the addon's lock on libnftables)`;
      for (const listener of this.#listeners) listener(line);
    }
    return { exitCode: -1, stdout: "", stderr: `${stuck}; nadguard applies through nft -f processes from now on\n` };
  }

  #fallbackExecutor(): NftExecutor {
    this.#fallback ??= this.#makeFallback();
    return this.#fallback;
  }
}

/** A listing command not run because the executor broke while it waited in the queue. */
const BROKEN_COMMAND: NftRunResult = Object.freeze({ exitCode: -1, stdout: "", stderr: "" });

/** Where `npm ci` builds the addon, from src/nft/ (tsx) and from dist/src/nft/ (the build and the image). */
const BUILT = ["../../native/nft/build/Release/nadguard_nft.node", "../../../native/nft/build/Release/nadguard_nft.node"].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));

/** The environment variable naming the addon file to load instead of the built one; `none` applies through `nft -f` processes. */
export const ADDON_ENV = "NADGUARD_NFT_ADDON";

/** Loads the addon: from `path`, or where the build leaves it. An error value says why it cannot be used. */
export function loadNftAddon(path: string | undefined = process.env[ADDON_ENV]): Result<NftAddon, string> {
  if (path === "none") return { ok: false, error: `${ADDON_ENV}=none` };
  const file = path ?? BUILT.find((candidate) => existsSync(candidate));
  if (file === undefined) return { ok: false, error: "native/nft is not built (libnftables-dev was missing when npm ci ran; install it and run npm run build:addon)" };
  try {
    const addon = createRequire(import.meta.url)(file) as Partial<NftAddon>;
    if (typeof addon.apply !== "function" || typeof addon.command !== "function" || typeof addon.parallelCommits !== "boolean") {
      return { ok: false, error: `${file} is not nadguard's nft addon (no apply and command functions)` };
    }
    return { ok: true, value: addon as NftAddon };
  } catch (error) {
    return { ok: false, error: `cannot load ${file}: ${(error as Error).message.split("\n")[0]}` };
  }
}

export interface NftExecutorChoice {
  readonly executor: NftExecutor;
  readonly kind: "addon" | "nft -f";
  /** Why the addon is not used (kind `nft -f`). */
  readonly reason?: string;
  /** One line for the log: which executor runs, and why it fell back. */
  readonly message: string;
}

let chosen: NftExecutorChoice | undefined;

/** The executor nadguard applies through: the addon, else `nft -f` processes. Decided once per process. */
export function defaultNftExecutor(): NftExecutorChoice {
  chosen ??= chooseNftExecutor(loadNftAddon());
  return chosen;
}

/** The choice for a load result (defaultNftExecutor's, for a given load). */
export function chooseNftExecutor(loaded: Result<NftAddon, string>): NftExecutorChoice {
  if (loaded.ok) return { executor: new AddonNftExecutor(loaded.value), kind: "addon", message: "nft executor: native addon (libnftables on a worker thread, setns into each netns)" };
  return {
    executor: new ExecNftExecutor(),
    kind: "nft -f",
    reason: loaded.error,
    message: `nft executor: nft -f processes (nsenter --net=PATH nft -f FILE), because the native addon cannot be used: ${loaded.error}`,
  };
}
