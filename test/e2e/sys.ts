// Process plumbing of the end-to-end harness: running commands, the per-run name prefix, the
// cleanup of what killed runs left behind, and a lock that keeps e2e files from running at once
// (they share two cores; probes time out on a starved machine).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { open, readdir, readFile, rm, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command; never rejects (exit code -1 when it cannot start). */
export function run(command: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"], env: options.env ?? process.env, timeout: options.timeoutMs ?? 30_000 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", (e) => resolve({ code: -1, stdout: "", stderr: e.message }));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on("error", () => undefined);
    child.stdin.end(options.input ?? "");
  });
}

/** The `nadguard` command as a user runs it: bin/nadguard.js (the compiled build when present, else the sources through tsx). */
export const NADGUARD_BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "nadguard.js");

/** Runs `nadguard ARGS…` as its own process, with Node's own binary. */
export function nadguard(args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [NADGUARD_BIN, ...args], { timeoutMs: 120_000, ...options });
}

/** One JSON log line of a command (pino's format: `level` 10 trace … 60 fatal, `msg`, then the event's fields). */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** The line as a log line, or undefined when it is not one. */
export function parseLogLine(line: string): LogLine | undefined {
  try {
    const value = JSON.parse(line) as Partial<LogLine> | null;
    return typeof value?.level === "number" && typeof value.msg === "string" ? (value as LogLine) : undefined;
  } catch {
    return undefined;
  }
}

/** Every line of a command's stdout as a log line; throws on the first that is not one. */
export function logLines(stdout: string): LogLine[] {
  return stdout
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => {
      const log = parseLogLine(line);
      if (!log) throw new Error(`not a JSON log line: ${line}`);
      return log;
    });
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** Runs a command and throws with its output when it fails. */
export async function must(command: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

/** Every netns, bridge and veth of a run lives under `ng-<pid>-<6 hex>-` (links inside the run's own netns). */
export const PREFIX_PATTERN = /^ng-(\d+)-([0-9a-f]{6})-/;

export function newPrefix(): string {
  return `ng-${process.pid}-${randomBytes(3).toString("hex")}-`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the network namespaces and temp dirs of runs whose process is gone (a killed test run):
 * only names matching PREFIX_PATTERN, and only when their pid is not alive. Processes still in such
 * a netns are killed first (they would keep it alive).
 */
export async function cleanupStale(): Promise<string[]> {
  const removed: string[] = [];
  const names = await readdir("/run/netns").catch(() => [] as string[]);
  for (const name of names) {
    const match = PREFIX_PATTERN.exec(name);
    if (!match || alive(Number(match[1]))) continue;
    const pids = (await run("ip", ["netns", "pids", name])).stdout.split("\n").filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await run("ip", ["netns", "delete", name]);
    removed.push(name);
  }
  for (const entry of await readdir(tmpdir()).catch(() => [] as string[])) {
    const match = /^nadguard-e2e-(ng-(\d+)-[0-9a-f]{6}-)/.exec(entry);
    if (match && !alive(Number(match[2]))) {
      await rm(join(tmpdir(), entry), { recursive: true, force: true });
      removed.push(entry);
    }
  }
  return removed;
}

const LOCK = join(tmpdir(), "nadguard-e2e.lock");

/** Waits until no other e2e file of a live process holds the lock, then holds it; returns the release. */
export async function acquireE2eLock(timeoutMs = 600_000): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(LOCK, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return async () => {
        await unlink(LOCK).catch(() => undefined);
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number(await readFile(LOCK, "utf8").catch(() => "0"));
      if (holder > 0 && !alive(holder)) {
        await unlink(LOCK).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`the e2e lock ${LOCK} is held by pid ${holder} for too long`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
