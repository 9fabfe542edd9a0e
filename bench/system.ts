// The benchmarks' edge to the machine: running commands, the bench's own network namespaces (named
// with a per-run prefix, removed at the end — also on failure and on SIGINT/SIGTERM), child
// processes to stop, and what the machine is. Targets are only 127.0.0.1 and the bench's own
// namespaces, addressed from 198.18.0.0/15 and fd00::/8.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpus, loadavg, release, totalmem } from "node:os";

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit. */
  readonly ms: number;
}

/** Runs a command to completion (never rejects; exit code -1 when it could not start or timed out). */
export function run(command: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"], timeout: options.timeoutMs ?? 120_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (c: Buffer) => out.push(c));
    child.stderr?.on("data", (c: Buffer) => err.push(c));
    child.on("error", (e) => resolve({ code: -1, stdout: "", stderr: e.message, ms: performance.now() - started }));
    child.on("close", (code) =>
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), ms: performance.now() - started }),
    );
    if (options.input !== undefined && child.stdin) {
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.input);
    }
  });
}

/** Like `run` but throws with the command's stderr when it fails. */
export async function must(command: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} failed (${result.code}): ${result.stderr.trim().slice(0, 2000)}`);
  return result;
}

/** True when `command` runs (e.g. `nft --version`). */
export async function available(command: string, args: readonly string[] = ["--version"]): Promise<boolean> {
  return (await run(command, args, { timeoutMs: 10_000 })).code === 0;
}

/**
 * What a run created and must remove: child processes (stopped first, by pid, since a process
 * inside a namespace keeps it alive) and network namespaces with the run's prefix. Idempotent;
 * `sweep` also works synchronously from a signal handler.
 */
export class Cleanup {
  readonly prefix: string;
  readonly #children = new Set<ChildProcess>();
  #handlersInstalled = false;

  constructor(prefix = `ngb${randomBytes(2).toString("hex")}`) {
    this.prefix = prefix;
  }

  /** Remembers a child to stop at the end; forgets it when it exits by itself. */
  track(child: ChildProcess): ChildProcess {
    this.#children.add(child);
    child.once("exit", () => this.#children.delete(child));
    return child;
  }

  /** Stops one tracked child (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(child: ChildProcess, graceMs = 2000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) {
      this.#children.delete(child);
      return;
    }
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
    this.#children.delete(child);
  }

  /** Stops every child and deletes every namespace with the prefix. */
  async sweep(): Promise<void> {
    await Promise.all([...this.#children].map((c) => this.stop(c)));
    for (const name of await this.namespaces()) await run("ip", ["netns", "del", name]);
  }

  /** The synchronous version, for signal and exit handlers. */
  sweepSync(): void {
    for (const child of this.#children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    this.#children.clear();
    let names: string[] = [];
    try {
      names = parseNetnsList(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).filter((n) => n.startsWith(this.prefix));
    } catch {
      return;
    }
    for (const name of names) {
      try {
        execFileSync("ip", ["netns", "del", name], { stdio: "ignore" });
      } catch {
        // keep going: the others must go too
      }
    }
  }

  /** The run's namespaces that exist now. */
  async namespaces(): Promise<string[]> {
    const listed = await run("ip", ["netns", "list"]);
    return parseNetnsList(listed.stdout).filter((n) => n.startsWith(this.prefix));
  }

  /**
   * On SIGINT/SIGTERM/SIGHUP: sweep and exit 128+signal. Installed once. The sweep is asynchronous
   * at first: under the tsx CLI the child must answer its parent's signal relay within 30 ms or be
   * SIGKILLed, which a synchronous sweep would prevent; a synchronous pass then catches whatever
   * the still-running section created meanwhile. Repeated signals are ignored while sweeping.
   */
  installSignalHandlers(): void {
    if (this.#handlersInstalled) return;
    this.#handlersInstalled = true;
    let sweeping = false;
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
      process.on(signal, () => {
        if (sweeping) return;
        sweeping = true;
        process.stderr.write(`\nbench: ${signal}: removing ${this.prefix}* namespaces and child processes\n`);
        const finish = (): never => {
          this.sweepSync();
          process.exit(code);
        };
        setTimeout(finish, 10_000).unref();
        void this.sweep().then(finish, finish);
      });
    }
    process.once("exit", () => this.sweepSync());
  }
}

function parseNetnsList(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "");
}

/** A network namespace of the bench: `ip netns add`, loopback up. */
export async function addNetns(name: string): Promise<string> {
  await must("ip", ["netns", "add", name]);
  await must("ip", ["-n", name, "link", "set", "lo", "up"]);
  return name;
}

export async function delNetns(name: string): Promise<void> {
  await run("ip", ["netns", "del", name]);
}

export function netnsPath(name: string): string {
  return `/run/netns/${name}`;
}

/** Runs a command inside a namespace with `nsenter --net` (lighter than `ip netns exec`). */
export function inNetns(name: string, command: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run("nsenter", [`--net=${netnsPath(name)}`, command, ...args], options);
}

export async function mustInNetns(name: string, command: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const result = await inNetns(name, command, args, options);
  if (result.code !== 0) throw new Error(`[${name}] ${command} ${args.join(" ")} failed (${result.code}): ${result.stderr.trim().slice(0, 2000)}`);
  return result;
}

export interface Machine {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly node: string;
  readonly nft: string;
  readonly iptables: string;
  readonly python: string;
  readonly memory: string;
  readonly loadAtStart: string;
}

export async function machine(): Promise<Machine> {
  const first = (r: RunResult): string => (r.code === 0 ? (r.stdout || r.stderr).trim().split("\n")[0]! : "not available");
  const [nft, iptables, python] = await Promise.all([run("nft", ["--version"]), run("iptables", ["--version"]), run(pythonCommand(), ["--version"])]);
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    kernel: release(),
    node: process.version,
    nft: first(nft),
    iptables: first(iptables),
    python: first(python),
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    loadAtStart: loadavg().map((l) => l.toFixed(2)).join(" "),
  };
}

/** The system python (not a pyenv shim, whose bash wrapper costs ~50 ms per start). */
export function pythonCommand(): string {
  for (const candidate of ["/usr/bin/python3", "/usr/local/bin/python3"]) {
    try {
      execFileSync(candidate, ["-c", "pass"], { stdio: "ignore" });
      return candidate;
    } catch {
      // next
    }
  }
  return "python3";
}

export function sleep(msValue: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, msValue));
}

/** CPU time (user+system, ms) this process used since `since` (from process.cpuUsage()). */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

/**
 * One of nadguard's modules (`path` from the repository's root, as `src/enforcer/enforcer.js`) as the command runs it:
 * from dist/ when the build is current (bin/compiled.js decides, as bin/nadguard.js does), else the
 * source through tsx, whose compiled output is slower and larger than tsc's.
 */
export async function engineModule<T>(path: string): Promise<{ module: T; from: "dist" | "tsx" }> {
  // @ts-expect-error bin/compiled.js is plain JavaScript without declarations
  const { compiledIsCurrent } = (await import("../bin/compiled.js")) as { compiledIsCurrent: boolean };
  const from = compiledIsCurrent ? "dist" : "tsx";
  const url = new URL(from === "dist" ? `../dist/${path}` : `../${path}`, import.meta.url);
  return { module: (await import(url.href)) as T, from };
}
