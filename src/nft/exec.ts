// The seam between nadguard and the `nft` binary: the only place that spawns it (README,
// Architecture). A script is written whole to a private file and given to `nft -f FILE`: nft
// reading stdin would apply whatever prefix it had received if nadguard died mid-write (EOF looks
// like the end of the script), which breaks all-or-nothing. A network namespace is entered with
// `nsenter --net=PATH`, which is lighter than `ip netns exec` (that also creates a mount namespace:
// ip-netns(8)). Nothing here reads back after a write: one process per transaction is the floor an
// apply is measured against. The enforcer applies through the native addon (src/nft/addon.ts) and
// uses this executor where the addon cannot load.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { rmdir, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/** A listing from the results of `nft -j list table` and, when asked, `nft -a -t list table` (also the native executor's, src/nft/addon.ts). */
export function listingResult(table: TableRef, opts: ListOptions, json: NftRunResult, text: NftRunResult | undefined): Result<TableListing, NftError> {
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
