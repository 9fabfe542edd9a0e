// The seam between nadguard and CNI plugin binaries: the only place that spawns them (README, Architecture).
// `PluginExec` finds a plugin in the search path and runs one process; SpawnPluginExec does it for
// real, FakePluginExec (fake.ts) in memory for the layers above. The CNI protocol on top of it
// (environment, stdin, how stdout and the exit status are read) is in invoke.ts.
import { spawn } from "node:child_process";
import { stat } from "node:fs/promises";
import { join } from "node:path";

export interface PluginRequest {
  /** The plugin binary, as `find` returned it. */
  readonly path: string;
  /** The whole environment of the process (nothing is inherited besides). */
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
  /** Kill the plugin, and every process it started, after this long. */
  readonly timeoutMs: number;
  /**
   * Called once the process is started (or could not be), before it is waited for: the caller's
   * own work from then on runs while the plugin does (the node daemon compiles a pod's table
   * there). Possibly more than once when a busy binary is retried.
   */
  readonly onStart?: () => void;
}

export interface PluginOutcome {
  /** The exit status; null when the process was killed by a signal or never started. */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The time limit ran out before the plugin exited, and it was killed. */
  readonly timedOut: boolean;
  /** Why the process could not be started (`spawn … ENOENT`, `EACCES`). */
  readonly startError?: string;
}

export interface PluginExec {
  /**
   * The plugin binary of `type`: the first regular file of that name in `dirs`, searched in
   * order (libcni invoke.FindInPath). Undefined when no directory has one.
   */
  find(type: string, dirs: readonly string[]): Promise<string | undefined>;
  /** Runs the plugin once. Never rejects. */
  run(request: PluginRequest): Promise<PluginOutcome>;
}

export interface SpawnOptions {
  /**
   * Run the plugins inside this network namespace (a path such as `/run/netns/x`) through
   * `nsenter --net`: host-side links (bridges, veth peers) are then made there instead of the
   * caller's namespace. Absent: the caller's namespace, as a runtime runs them.
   */
  readonly netns?: string;
  /** Default `nsenter`. */
  readonly nsenterPath?: string;
}

/**
 * libcni invoke.RawExec retries a plugin that is "text file busy" (being copied into place while
 * it is started) five times, a second apart.
 */
const BUSY_RETRIES = 5;
const BUSY_WAIT_MS = 1000;

/** Runs plugins as real processes. */
export class SpawnPluginExec implements PluginExec {
  readonly #netns: string | undefined;
  readonly #nsenter: string;

  constructor(options: SpawnOptions = {}) {
    this.#netns = options.netns;
    this.#nsenter = options.nsenterPath ?? "nsenter";
  }

  async find(type: string, dirs: readonly string[]): Promise<string | undefined> {
    for (const dir of dirs) {
      const candidate = join(dir, type);
      const info = await stat(candidate).catch(() => undefined);
      if (info?.isFile()) return candidate;
    }
    return undefined;
  }

  async run(request: PluginRequest): Promise<PluginOutcome> {
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#once(request);
      if (!outcome.startError?.includes("ETXTBSY") || attempt >= BUSY_RETRIES) return outcome;
      await new Promise((resolve) => setTimeout(resolve, BUSY_WAIT_MS));
    }
  }

  #once(request: PluginRequest): Promise<PluginOutcome> {
    const [command, args] = this.#netns === undefined ? [request.path, []] : [this.#nsenter, [`--net=${this.#netns}`, request.path]];
    return new Promise((resolve) => {
      // Its own process group, so that a time limit kills what the plugin started too: a
      // child that kept stdout open would otherwise keep the call waiting after the kill.
      const child = spawn(command, args, { env: request.env, stdio: ["pipe", "pipe", "pipe"], detached: true });
      request.onStart?.();
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      let exited = false;
      const timer = setTimeout(() => {
        timedOut = !exited;
        if (child.pid !== undefined) killGroup(child.pid);
        // Whatever is left holding the pipes must not hold the answer.
        child.stdout.destroy();
        child.stderr.destroy();
      }, request.timeoutMs);
      child.stdout.on("data", (chunk: Buffer) => out.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
      child.stdin.on("error", () => undefined);
      child.on("exit", () => {
        exited = true;
      });
      child.on("error", (error) => {
        clearTimeout(timer);
        resolve({ exitCode: null, stdout: "", stderr: "", timedOut: false, startError: error.message });
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ exitCode: timedOut ? null : code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
      });
      child.stdin.end(request.stdin);
    });
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // The group is gone already.
  }
}
