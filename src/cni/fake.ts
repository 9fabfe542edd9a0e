// An in-memory PluginExec for the layers above src/cni: plugins are functions, each call is
// recorded with the environment and the config exactly as a real plugin would have received them,
// and an answer is turned into the stdout and exit status a real plugin would print. It speaks the
// same protocol as SpawnPluginExec, so the runner and invoke code under test are the real ones.
import { join } from "node:path";
import type { JsonObject } from "./config.js";
import type { CniCommand, CniErrorWire } from "./errors.js";
import type { PluginExec, PluginOutcome, PluginRequest } from "./exec.js";

export interface FakeCall {
  readonly type: string;
  readonly command: CniCommand;
  readonly env: Readonly<Record<string, string>>;
  /** stdin, decoded. */
  readonly config: JsonObject;
}

/** What a fake plugin answers: a result (printed, exit 0), nothing (exit 0), an error (exit 1), or raw output. */
export type FakeAnswer =
  | { readonly result: unknown }
  | { readonly ok: true }
  | { readonly error: CniErrorWire }
  | { readonly exitCode: number; readonly stdout?: string; readonly stderr?: string }
  | { readonly timeout: true };

export type FakePlugin = (call: FakeCall) => FakeAnswer | Promise<FakeAnswer>;

export class FakePluginExec implements PluginExec {
  /** Every call, in order. */
  readonly calls: FakeCall[] = [];
  readonly #plugins: Map<string, FakePlugin>;
  readonly #dir: string;

  /** `plugins` by type; they are "installed" in `dir`, which must be in the search path to be found. */
  constructor(plugins: Record<string, FakePlugin>, dir = "/fake/cni/bin") {
    this.#plugins = new Map(Object.entries(plugins));
    this.#dir = dir;
  }

  async find(type: string, dirs: readonly string[]): Promise<string | undefined> {
    return this.#plugins.has(type) && dirs.includes(this.#dir) ? join(this.#dir, type) : undefined;
  }

  async run(request: PluginRequest): Promise<PluginOutcome> {
    const type = request.path.slice(this.#dir.length + 1);
    const plugin = this.#plugins.get(type);
    if (!plugin) return { exitCode: null, stdout: "", stderr: "", timedOut: false, startError: `spawn ${request.path} ENOENT` };
    const call: FakeCall = { type, command: request.env.CNI_COMMAND as CniCommand, env: request.env, config: JSON.parse(request.stdin) as JsonObject };
    this.calls.push(call);
    request.onStart?.();
    const answer = await plugin(call);
    if ("result" in answer) return { exitCode: 0, stdout: JSON.stringify(answer.result), stderr: "", timedOut: false };
    if ("ok" in answer) return { exitCode: 0, stdout: "", stderr: "", timedOut: false };
    if ("error" in answer) return { exitCode: 1, stdout: JSON.stringify(answer.error), stderr: "", timedOut: false };
    if ("timeout" in answer) return { exitCode: null, stdout: "", stderr: "", timedOut: true };
    return { exitCode: answer.exitCode, stdout: answer.stdout ?? "", stderr: answer.stderr ?? "", timedOut: false };
  }
}
