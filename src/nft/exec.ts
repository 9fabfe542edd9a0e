// The seam between nadguard and the `nft` binary: the only place that spawns it (README,
// Architecture). A script is written whole to a private file and given to `nft -f FILE`: nft
// reading stdin would apply whatever prefix it had received if nadguard died mid-write (EOF looks
// like the end of the script), which breaks all-or-nothing. A network namespace is entered with
// `nsenter --net=PATH`, which is lighter than `ip netns exec` (that also creates a mount namespace:
// ip-netns(8)). Nothing here reads back after a write: one process per transaction is the floor an
// apply is measured against.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { rmdir, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fail, ok, type Result } from "../api/errors.js";
import { execError, nftErrorFromStderr, type NftError } from "./errors.js";
import { parseJsonListing, withTextListing, type TableListing } from "./listing.js";
import type { TableRef } from "./objects.js";

export interface NftRunResult {
  /** The process's exit code; -1 if it could not be started or was killed. */
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** A network namespace: a path (`/proc/123/ns/net`, `/run/netns/x`) or a name under /run/netns. Absent: the caller's. */
  readonly netns?: string;
  /** Ask `nft --check`: parse and validate against the kernel, change nothing. */
  readonly check?: boolean;
}

export interface ListOptions {
  readonly netns?: string;
  /** Read set and map elements too (a full listing instead of `-t`). Default false. */
  readonly elements?: boolean;
  /** Also read the text listing for rule text, typeof, auto-merge and comments (one more process). Default false. */
  readonly text?: boolean;
}

export interface NftExecutor {
  /** Runs an `nft -f` script. Never rejects: failures to start are exit code -1 with the reason on stderr. */
  run(script: string, opts: RunOptions): Promise<NftRunResult>;
  /** Reads one table. A table that does not exist is an error with reason `not-found`. */
  list(table: TableRef, opts: ListOptions): Promise<Result<TableListing, NftError>>;
}

export interface ExecOptions {
  /** Default `nft` (found on PATH). */
  readonly nftPath?: string;
  /** Default `nsenter`. */
  readonly nsenterPath?: string;
  /** Kill nft after this long; default 30 s. */
  readonly timeoutMs?: number;
  /** Where script files are written (a private folder is made inside); default the OS temp dir. */
  readonly scriptDir?: string;
}

/** `/run/netns/NAME` for a bare name, the path itself otherwise. */
export function netnsPath(netns: string): string {
  return netns.includes("/") ? netns : `/run/netns/${netns}`;
}

/** A listing from the results of `nft -j list table` and, when asked, `nft -a -t list table`. */
function listingResult(table: TableRef, opts: ListOptions, json: NftRunResult, text: NftRunResult | undefined): Result<TableListing, NftError> {
  const failed = json.exitCode !== 0 ? json : text !== undefined && text.exitCode !== 0 ? text : undefined;
  if (failed) {
    if (failed.exitCode === -1) return fail(execError(failed.stderr, opts.netns));
    return fail(nftErrorFromStderr(failed.stderr, { exitCode: failed.exitCode, ...(opts.netns !== undefined ? { netns: opts.netns } : {}) }));
  }
  const parsed = parseJsonListing(json.stdout, table, opts.elements ?? false);
  if (!parsed.ok) {
    const message = `cannot read nft's listing: ${parsed.error.map((p) => `${p.path}: ${p.message}`).join("; ")}`;
    return fail({ ...execError(message, opts.netns), code: "nft.unknown", reason: "unknown" });
  }
  return ok(text === undefined ? parsed.value : withTextListing(parsed.value, text.stdout));
}

/**
 * Scripts handed to nft whole: each is written to a private file (0600, in a folder mkdtemp makes
 * 0700, so no other user can swap it between write and read) and removed once nft is done with it.
 * The folder lives only while scripts are in flight: the last one out removes it, so no run of
 * nadguard leaves a folder behind in the temp dir, and a parallel sync still shares one folder.
 */
class ScriptFiles {
  readonly #parent: string;
  #dir: string | undefined;
  #inFlight = 0;
  #count = 0;

  constructor(parent: string) {
    this.#parent = parent;
  }

  /** Runs `use` with the script's file; a script that cannot be written is an exec failure (-1). */
  async with(script: string, use: (file: string) => Promise<NftRunResult>): Promise<NftRunResult> {
    this.#inFlight += 1;
    try {
      let file: string;
      try {
        this.#dir ??= mkdtempSync(join(this.#parent, "nadguard-nft-"));
        file = join(this.#dir, `${process.pid}-${++this.#count}.nft`);
        await writeFile(file, script, { mode: 0o600, flag: "wx" });
      } catch (error) {
        return { exitCode: -1, stdout: "", stderr: `cannot write the nft script: ${(error as Error).message}` };
      }
      try {
        return await use(file);
      } finally {
        await unlink(file).catch(() => undefined);
      }
    } finally {
      await this.#release();
    }
  }

  async #release(): Promise<void> {
    this.#inFlight -= 1;
    if (this.#inFlight > 0 || this.#dir === undefined) return;
    // Forgotten before it is removed: a script that starts meanwhile makes a folder of its own.
    const dir = this.#dir;
    this.#dir = undefined;
    await rmdir(dir).catch(() => undefined);
  }
}

/** Runs nft with a real process per call. */
export class ExecNftExecutor implements NftExecutor {
  readonly #nft: string;
  readonly #nsenter: string;
  readonly #timeoutMs: number;
  readonly #scripts: ScriptFiles;

  constructor(opts: ExecOptions = {}) {
    this.#nft = opts.nftPath ?? "nft";
    this.#nsenter = opts.nsenterPath ?? "nsenter";
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#scripts = new ScriptFiles(opts.scriptDir ?? tmpdir());
  }

  run(script: string, opts: RunOptions): Promise<NftRunResult> {
    return this.#scripts.with(script, (file) => this.runFile(file, opts));
  }

  /** `nft -f FILE` on a script file the caller wrote (and removes). */
  runFile(file: string, opts: RunOptions): Promise<NftRunResult> {
    return this.#spawn(opts.check ? ["--check", "-f", file] : ["-f", file], opts.netns);
  }

  async list(table: TableRef, opts: ListOptions): Promise<Result<TableListing, NftError>> {
    const target = ["list", "table", table.family, table.name];
    const jsonArgs = opts.elements ? ["-j", ...target] : ["-j", "-t", ...target];
    const [json, text] = await Promise.all([
      this.#spawn(jsonArgs, opts.netns),
      opts.text ? this.#spawn(["-a", "-t", ...target], opts.netns) : Promise.resolve(undefined),
    ]);
    return listingResult(table, opts, json, text);
  }

  #spawn(args: readonly string[], netns: string | undefined): Promise<NftRunResult> {
    const [command, argv] = netns === undefined ? [this.#nft, [...args]] : [this.#nsenter, [`--net=${netnsPath(netns)}`, this.#nft, ...args]];
    return new Promise((resolve) => {
      const child = spawn(command, argv, { stdio: ["ignore", "pipe", "pipe"] });
      // Our own timer rather than spawn's `timeout`: that one is cleared only on 'exit', which a
      // program that cannot start never emits, so a one-shot command would linger for the timeout.
      const timer = setTimeout(() => child.kill("SIGTERM"), this.#timeoutMs);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let settled = false;
      const settle = (result: NftRunResult): void => {
        clearTimeout(timer);
        if (!settled) resolve(result);
        settled = true;
      };
      child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.on("error", (error) => settle({ exitCode: -1, stdout: "", stderr: `cannot run ${command}: ${error.message}` }));
      child.on("close", (code, signal) => {
        const err = Buffer.concat(stderr).toString("utf8");
        // nsenter's own failures (no such netns) must not read as nft's "No such file or directory".
        const enterFailed = netns !== undefined && err.startsWith("nsenter: ");
        settle({
          exitCode: enterFailed ? -1 : (code ?? -1),
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: code === null ? `${command} was killed by ${signal ?? "a signal"} (timeout ${this.#timeoutMs} ms?)\n${err}` : err,
        });
      });
    });
  }
}

// ---------------------------------------------------------------------------------------------
// A persistent in-process libnftables path for applies (bench/convergence.ts measures it). Starting
// `nsenter` + `nft` costs ~5-10 ms of CPU per apply (two execs, dynamic linking, nft's start-up),
// which on a small node makes a change that touches 100 netns take close to a second however many
// run in parallel. A helper process (python3 + ctypes over libnftables.so.1, both what `nft`
// itself is built on) stays up, enters each netns with setns(2), and runs
// `nft_run_cmd_from_filename` on the script file: the same parser and the same single batch as
// `nft -f FILE`, so the script is still complete in a private file before nft reads a byte of it
// (all or nothing), errors come back in nft's own format, and `--check` is libnftables' dry run.
// When the helper cannot run (no python3, no libnftables.so.1, no CAP_SYS_ADMIN), applies fall
// back to the process path for good. Listings stay on the process path (they only happen on full
// syncs).

/** The helper's program, a file beside this module (the build copies it to dist/ with the compiled code). */
const HELPER_SCRIPT = fileURLToPath(new URL("./libnftables-helper.py", import.meta.url));

// libnftables' output flags (nftables/libnftables.h): -a, -j, -t.
const OUTPUT_HANDLE = 1 << 3;
const OUTPUT_JSON = 1 << 4;
const OUTPUT_TERSE = 1 << 11;

export interface HelperOptions extends ExecOptions {
  /** Default `python3`. */
  readonly pythonPath?: string;
  /** Most helper processes (applies and listings in flight at once), started as needed. Default 8. */
  readonly helpers?: number;
}

interface Pending {
  readonly id: number;
  readonly resolve: (result: NftRunResult | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

/** One helper process: requests answered in order. */
class Helper {
  readonly #child: ReturnType<typeof spawn>;
  readonly #pending = new Map<number, Pending>();
  readonly #timeoutMs: number;
  #buffer = "";
  #ids = 0;
  /** Resolves true once the helper said it is ready, false if it died first. */
  readonly ready: Promise<boolean>;
  dead = false;

  constructor(python: string, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#child = spawn(python, [HELPER_SCRIPT], { stdio: ["pipe", "pipe", "ignore"] });
    let markReady!: (ok: boolean) => void;
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.#child.on("error", () => this.#die(markReady));
    this.#child.on("exit", () => this.#die(markReady));
    this.#child.stdin!.on("error", () => this.#die(markReady));
    this.#child.stdout!.setEncoding("utf8");
    this.#child.stdout!.on("data", (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        let msg: { ready?: boolean; id?: number; exitCode?: number; stdout?: string; stderr?: string };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          continue;
        }
        if (msg.ready) {
          markReady(true);
          continue;
        }
        const p = msg.id !== undefined ? this.#pending.get(msg.id) : undefined;
        if (!p) continue;
        this.#pending.delete(p.id);
        clearTimeout(p.timer);
        p.resolve({ exitCode: msg.exitCode ?? -1, stdout: msg.stdout ?? "", stderr: msg.stderr ?? "" });
      }
      this.#updateRef();
    });
    this.#updateRef();
  }

  /** Requests about to be sent: see `reserve`. */
  #reserved = 0;

  /** Requests in flight or about to be sent. */
  get load(): number {
    return this.#pending.size + this.#reserved;
  }

  /**
   * Holds a place for one request, taken by `request` or given back by `release`. A reserved
   * helper keeps Node running: a caller awaiting its readiness holds no other handle, and a
   * one-shot command would otherwise end with that await unsettled.
   */
  reserve(): void {
    this.#reserved += 1;
    this.#updateRef();
  }

  release(): void {
    this.#reserved = Math.max(0, this.#reserved - 1);
    this.#updateRef();
  }

  /** Sends a request in place of a reservation. The result, or undefined when the helper died before answering (nothing is known of the apply). */
  request(what: { file: string } | { cmd: string; flags: number }, opts: RunOptions): Promise<NftRunResult | undefined> {
    this.#reserved = Math.max(0, this.#reserved - 1);
    if (this.dead) {
      this.#updateRef();
      return Promise.resolve(undefined);
    }
    const id = ++this.#ids;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // Killing the helper aborts the apply in progress; the netlink batch is all or nothing.
        this.#pending.delete(id);
        resolve({ exitCode: -1, stdout: "", stderr: `the nft helper was killed (timeout ${this.#timeoutMs} ms)` });
        this.kill();
      }, this.#timeoutMs);
      this.#pending.set(id, { id, resolve, timer });
      this.#updateRef();
      this.#child.stdin!.write(`${JSON.stringify({ id, ...what, check: opts.check === true, netns: opts.netns === undefined ? null : netnsPath(opts.netns) })}\n`);
    });
  }

  kill(): void {
    this.dead = true;
    this.#child.kill("SIGKILL");
  }

  #die(markReady: (ok: boolean) => void): void {
    this.dead = true;
    markReady(false);
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.resolve(undefined);
    }
    this.#pending.clear();
  }

  // An idle helper must not keep Node alive; one with work in flight or reserved must.
  #updateRef(): void {
    const busy = this.load > 0;
    for (const handle of [this.#child, this.#child.stdin, this.#child.stdout] as ({ ref?: () => void; unref?: () => void } | null)[]) {
      if (busy) handle?.ref?.();
      else handle?.unref?.();
    }
  }
}

/**
 * Applies through persistent libnftables helpers (see above), lists and falls back through
 * `ExecNftExecutor`. Call `close()` when done (idle helpers never keep the process alive, though).
 */
export class HelperNftExecutor implements NftExecutor {
  readonly #fallback: ExecNftExecutor;
  readonly #python: string;
  readonly #count: number;
  readonly #timeoutMs: number;
  readonly #scripts: ScriptFiles;
  #helpers: Helper[] | undefined;
  /** False once the helper turned out not to work here: the process path from then on. */
  #usable = true;
  #closed = false;

  constructor(opts: HelperOptions = {}) {
    this.#fallback = new ExecNftExecutor(opts);
    this.#python = opts.pythonPath ?? "python3";
    this.#count = Math.max(1, opts.helpers ?? 8);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#scripts = new ScriptFiles(opts.scriptDir ?? tmpdir());
  }

  /** Whether applies currently go through the helper (false after a fallback). */
  get usingHelper(): boolean {
    return this.#usable && !this.#closed;
  }

  async run(script: string, opts: RunOptions): Promise<NftRunResult> {
    if (!this.#usable || this.#closed) return this.#fallback.run(script, opts);
    return this.#scripts.with(script, async (file) => {
      const helper = await this.#pick();
      if (!helper) return this.#fallback.runFile(file, opts);
      const result = await helper.request({ file }, opts);
      if (result) return result;
      // The helper died mid-request: whether the batch was committed is unknown; report an exec
      // failure (the enforcer then reads the netns back) rather than silently re-applying.
      return { exitCode: -1, stdout: "", stderr: "the nft helper exited before answering" };
    });
  }

  /** `nft -j [-t] list table` and `nft -a -t list table` as libnftables calls (read-only commands: no script file needed). */
  async list(table: TableRef, opts: ListOptions): Promise<Result<TableListing, NftError>> {
    if (!this.#usable || this.#closed) return this.#fallback.list(table, opts);
    const cmd = `list table ${table.family} ${table.name}`;
    const netns = opts.netns !== undefined ? { netns: opts.netns } : {};
    const ask = async (flags: number): Promise<NftRunResult | undefined> => {
      const helper = await this.#pick();
      return helper ? ((await helper.request({ cmd, flags }, netns)) ?? { exitCode: -1, stdout: "", stderr: "the nft helper exited before answering" }) : undefined;
    };
    const [json, text] = await Promise.all([ask(opts.elements ? OUTPUT_JSON : OUTPUT_JSON | OUTPUT_TERSE), opts.text ? ask(OUTPUT_HANDLE | OUTPUT_TERSE) : Promise.resolve(undefined)]);
    if (json === undefined || (opts.text && text === undefined)) return this.#fallback.list(table, opts);
    return listingResult(table, opts, json, text);
  }

  /** Stops the helpers. Later calls use the process path. */
  close(): void {
    this.#closed = true;
    for (const h of this.#helpers ?? []) h.kill();
    this.#helpers = undefined;
  }

  /** A ready helper with a place reserved for the caller's request, or undefined when helpers cannot run here. */
  async #pick(): Promise<Helper | undefined> {
    this.#helpers ??= [];
    // Replace dead helpers (killed on timeout); if a fresh one cannot start, stop using helpers.
    for (let i = 0; i < this.#helpers.length; i++) if (this.#helpers[i]!.dead) this.#helpers[i] = new Helper(this.#python, this.#timeoutMs);
    let helper = this.#helpers.length > 0 ? this.#helpers.reduce((a, b) => (b.load < a.load ? b : a)) : undefined;
    // One more helper when all are busy: an apply may wait in the kernel (an RCU grace period on
    // a commit that deletes), so applies in flight at once must not be capped below the caller's
    // parallelism.
    if ((!helper || helper.load > 0) && this.#helpers.length < this.#count) {
      helper = new Helper(this.#python, this.#timeoutMs);
      this.#helpers.push(helper);
    }
    helper = helper!;
    helper.reserve();
    const ready = await helper.ready;
    if (!ready) {
      helper.release();
      this.#usable = false;
      this.close();
      this.#closed = false;
      return undefined;
    }
    return helper;
  }
}
