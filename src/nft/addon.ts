// The default nft executor: nadguard's own Node-API addon (native/nft/nft.c, built by `npm ci`
// through scripts/build-addon.sh against libnftables-dev) runs each script through libnftables on a
// libuv worker thread that enters the netns with setns(2) and returns to its own afterwards. An
// apply then costs no process start (`nsenter` + `nft` cost ~5-10 ms of CPU each, which made a
// change touching 100 netns take close to a second on a small node) and the same parser and single
// netlink batch as `nft -f FILE`: all or nothing, errors in nft's own `FILE:LINE:COL` format
// (src/nft/errors.ts maps them to operations), `--check` as libnftables' dry run. Calls run one at a
// time (libnftables 1.0.6 is not thread-safe; see serialQueue): an apply costs ~0.5 ms of floor
// against ~10 ms for an `nft -f` process (BENCHMARKS.md section 3), so one at a time is still far
// ahead of processes in parallel on a small node. Where the addon
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
}

// libnftables' output flags (nftables/libnftables.h): -a, -j, -t.
const OUTPUT_HANDLE = 1 << 3;
const OUTPUT_JSON = 1 << 4;
const OUTPUT_TERSE = 1 << 11;

/**
 * Runs one call of the addon at a time, in order. libnftables 1.0.6 is not thread-safe (global
 * set and chain id counters, generation id, interface cache, getprotobynumber's static result:
 * native/nft/nft.c), so the addon holds one lock around it; queueing here as well keeps the calls
 * that wait for that lock from occupying libuv's small thread pool, which file system work shares.
 */
function serialQueue(): <T>(call: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (call) => {
    const run = tail.then(call, call);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** One queue for every executor over the addon: the lock it stands for is the process's. */
const queue = serialQueue();

/** Applies and lists through the native addon. Holds no process or file: nothing to close. */
export class AddonNftExecutor implements NftExecutor {
  readonly #addon: NftAddon;

  constructor(addon: NftAddon) {
    this.#addon = addon;
  }

  run(script: string, opts: RunOptions): Promise<NftRunResult> {
    const netns = opts.netns === undefined ? null : netnsPath(opts.netns);
    return queue(() => this.#addon.apply(script, netns, opts.check === true));
  }

  async list(table: TableRef, opts: ListOptions): Promise<Result<TableListing, NftError>> {
    const cmd = `list table ${table.family} ${table.name}`;
    const netns = opts.netns === undefined ? null : netnsPath(opts.netns);
    const [json, text] = await Promise.all([
      queue(() => this.#addon.command(cmd, netns, opts.elements ? OUTPUT_JSON : OUTPUT_JSON | OUTPUT_TERSE)),
      opts.text ? queue(() => this.#addon.command(cmd, netns, OUTPUT_HANDLE | OUTPUT_TERSE)) : Promise.resolve(undefined),
    ]);
    return listingResult(table, opts, json, text);
  }
}

/** Where `npm ci` builds the addon, from src/nft/ (tsx) and from dist/src/nft/ (the build and the image). */
const BUILT = ["../../native/nft/build/Release/nadguard_nft.node", "../../../native/nft/build/Release/nadguard_nft.node"].map((rel) => fileURLToPath(new URL(rel, import.meta.url)));

/** The environment variable naming the addon file to load instead of the built one; `none` applies through `nft -f` processes. */
export const ADDON_ENV = "NADGUARD_NFT_ADDON";

/** Loads the addon: from `path`, or where the build leaves it. An error value says why it cannot be used. */
export function loadNftAddon(path: string | undefined = process.env[ADDON_ENV]): Result<NftAddon, string> {
  if (path === "none") return { ok: false, error: `${ADDON_ENV}=none` };
  const file = path ?? BUILT.find((candidate) => existsSync(candidate));
  if (file === undefined) return { ok: false, error: "native/nft is not built (libnftables-dev was missing when npm ci ran; install it and run sh scripts/build-addon.sh)" };
  try {
    const addon = createRequire(import.meta.url)(file) as Partial<NftAddon>;
    if (typeof addon.apply !== "function" || typeof addon.command !== "function") return { ok: false, error: `${file} is not nadguard's nft addon (no apply and command functions)` };
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
