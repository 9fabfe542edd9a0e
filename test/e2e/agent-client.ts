// The test side of agent.mjs: one long-running agent per pod netns (started with nsenter), probes
// sent as JSON lines and matched back by id.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { dirname, join } from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export type Proto = "tcp" | "udp" | "sctp";

export interface ProbeRequest {
  readonly proto: Proto;
  readonly host: string;
  readonly port: number;
  /** How long a silent (dropped) probe waits; default 250 ms. */
  readonly timeoutMs?: number;
}

export interface ProbeResult {
  readonly result: "open" | "closed" | "error";
  /** The name of the pod that answered. */
  readonly reply?: string;
  readonly detail?: string;
}

export interface AgentPorts {
  readonly tcp: readonly number[];
  readonly udp: readonly number[];
  /** Only when the kernel has SCTP (and python3 exists). */
  readonly sctp?: readonly number[];
}

const AGENT = join(dirname(fileURLToPath(import.meta.url)), "agent.mjs");

export const DEFAULT_TIMEOUT_MS = 250;

export class Agent {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting = new Map<number, (r: ProbeResult) => void>();
  #next = 1;
  #exited = false;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
  }

  /** Starts an agent named `name` in the netns at `netnsPath` and waits until it listens. */
  static async start(name: string, netnsPath: string, ports: AgentPorts): Promise<Agent> {
    const args = [`--net=${netnsPath}`, process.execPath, AGENT, name, "--tcp", ports.tcp.join(","), "--udp", ports.udp.join(",")];
    if (ports.sctp && ports.sctp.length > 0) args.push("--sctp", ports.sctp.join(","));
    const child = spawn("nsenter", args, { stdio: ["pipe", "pipe", "pipe"] });
    const agent = new Agent(child);
    const stderr: string[] = [];
    child.stderr.on("data", (c: Buffer) => stderr.push(c.toString()));
    const lines = readline.createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      child.once("exit", (code) => {
        agent.#exited = true;
        reject(new Error(`agent ${name} exited (${code}) before it was ready: ${stderr.join("")}`));
        for (const w of agent.#waiting.values()) w({ result: "error", detail: "agent exited" });
        agent.#waiting.clear();
      });
      lines.on("line", (line) => {
        const msg = JSON.parse(line) as { ready?: boolean; id?: number } & ProbeResult;
        if (msg.ready) return resolve();
        const waiter = agent.#waiting.get(msg.id!);
        agent.#waiting.delete(msg.id!);
        const { id: _id, ...result } = msg;
        waiter?.(result);
      });
    });
    return agent;
  }

  probe(request: ProbeRequest): Promise<ProbeResult> {
    if (this.#exited) return Promise.resolve({ result: "error", detail: "agent exited" });
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#child.stdin.write(`${JSON.stringify({ id, timeoutMs: DEFAULT_TIMEOUT_MS, ...request })}\n`);
    });
  }

  /** Ends the agent (closing stdin makes it exit; killed if it does not). */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), 2000);
    await exited;
    clearTimeout(timer);
  }
}
