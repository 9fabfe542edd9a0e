// A `nadguard enforce` process following a lab's state directory, to be stopped (SIGTERM), killed
// (SIGKILL at any point) and restarted by the dynamic and crash suites: the command a user runs
// (bin/nadguard.js), with its real arguments. Its /metrics tell when it has synced; its stdout is
// JSON log lines, kept parsed.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { NODE, type Lab } from "./lab.js";
import { NADGUARD_BIN, parseLogLine, sleep, type LogLine } from "./sys.js";

export interface EnforcerProcessOptions {
  readonly parallelism?: number;
  readonly minIntervalMs?: number;
  readonly maxIntervalMs?: number;
  readonly removeOnExit?: boolean;
}

export class EnforcerProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  /** Every line it printed, stderr ones tagged `stderr: `. */
  readonly output: string[] = [];
  /** Its stdout lines that parsed as JSON log lines. */
  readonly logs: LogLine[] = [];
  /** Its stdout lines that did not. */
  readonly notJson: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #metricsUrl: string | undefined;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    this.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const collect = (stream: NodeJS.ReadableStream, onLine: (line: string) => void): void => {
      let buffer = "";
      stream.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split("\n");
        buffer = lines.pop()!;
        lines.forEach(onLine);
      });
    };
    collect(child.stdout, (line) => {
      this.output.push(line);
      const log = parseLogLine(line);
      if (!log) return void this.notJson.push(line);
      this.logs.push(log);
      if (typeof log.metrics === "string") this.#metricsUrl = log.metrics.replace(/\/metrics$/, "");
    });
    collect(child.stderr, (line) => this.output.push(`stderr: ${line}`));
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** Starts the enforcer on the lab (metrics on a free loopback port); resolves once the process runs, not once it synced. */
  static start(lab: Lab, options: EnforcerProcessOptions = {}): EnforcerProcess {
    const args = [
      NADGUARD_BIN,
      "enforce",
      "--state",
      lab.stateDir,
      "--node",
      NODE,
      "--netns",
      lab.netnsTemplate,
      "--metrics-listen",
      "127.0.0.1:0",
      "--parallelism",
      String(options.parallelism ?? 4),
      "--min-interval",
      String(options.minIntervalMs ?? 20),
      "--max-interval",
      String(options.maxIntervalMs ?? 60_000),
      ...(options.removeOnExit ? ["--remove-on-exit"] : []),
    ];
    return new EnforcerProcess(spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] }));
  }

  /** The enforcer's /metrics text, or undefined while it does not serve yet. */
  async metrics(): Promise<string | undefined> {
    if (!this.#metricsUrl) return undefined;
    try {
      const response = await fetch(`${this.#metricsUrl}/metrics`);
      return response.ok ? await response.text() : undefined;
    } catch {
      return undefined;
    }
  }

  /** How many syncs it finished (from its metrics; 0 before it serves). */
  async syncs(): Promise<number> {
    const text = (await this.metrics()) ?? "";
    return [...text.matchAll(/^nadguard_enforcer_sync_duration_seconds_count\{kind="\w+"\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  }

  /** Waits until at least `count` syncs finished. */
  async waitForSyncs(count: number, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.syncs()) < count) {
      if (Date.now() > deadline) throw new Error(`the enforcer did not finish ${count} sync(s) in ${timeoutMs} ms:\n${this.output.join("\n")}`);
      await sleep(25);
    }
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** SIGTERM and wait; returns its exit code. */
  async stop(): Promise<number | null> {
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), 10_000);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
