// One plugin call per the CNI spec (1.0.0, section "Execution protocol"): parameters in CNI_*
// environment variables, the config on stdin, a result (ADD) or nothing (DEL, CHECK, STATUS, GC)
// on stdout with exit status 0, an error object on stdout with a non-zero status. Every way a call
// can fail ends as a CniError naming the plugin: the plugin's own error with its code, or one of
// nadguard's (binary missing, not startable, time limit, output that cannot be read).
import { z } from "zod";
import { type Result, fail, formatProblem, ok } from "../api/errors.js";
import { CNI_ERROR, type CniCommand, type CniError, CniErrorWireSchema, cniError } from "./errors.js";
import type { PluginExec } from "./exec.js";
import { decodeJson } from "./json.js";
import { type CniResult, parseResult } from "./result.js";

export type CniArgs = readonly (readonly [string, string])[];

export interface InvokeParams {
  readonly command: CniCommand;
  readonly containerId?: string;
  /** Empty for a DEL after the sandbox's netns is gone (containerd sends `CNI_NETNS=""`). */
  readonly netns?: string;
  readonly ifname?: string;
  /** CNI_ARGS as pairs, e.g. `[["K8S_POD_NAME", "web"]]`. */
  readonly args?: CniArgs;
  /** Called once the plugin's process is started (PluginRequest.onStart). */
  readonly onStart?: () => void;
}

export interface InvokeContext {
  readonly exec: PluginExec;
  /** The plugin search path, also given to the plugin as CNI_PATH (IPAM plugins are found through it). */
  readonly pluginDirs: readonly string[];
  /** The environment the plugin inherits; CNI_* are set over it. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs: number;
}

/** `K=V;K=V`, the CNI_ARGS format. */
export function formatCniArgs(args: CniArgs | undefined): string {
  return (args ?? []).map(([key, value]) => `${key}=${value}`).join(";");
}

/** The plugin's environment: the base one with every CNI_* variable set (empty when not given), as libcni's Args.AsEnv. */
export function pluginEnv(base: InvokeContext["env"], params: InvokeParams, pluginDirs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) if (value !== undefined && !key.startsWith("CNI_")) env[key] = value;
  return {
    ...env,
    CNI_COMMAND: params.command,
    CNI_CONTAINERID: params.containerId ?? "",
    CNI_NETNS: params.netns ?? "",
    CNI_IFNAME: params.ifname ?? "",
    CNI_ARGS: formatCniArgs(params.args),
    CNI_PATH: pluginDirs.join(":"),
  };
}

/** The binary of `type`, or code 999 naming the type and every directory searched. */
export async function findPlugin(context: InvokeContext, type: string): Promise<Result<string, CniError>> {
  const path = await context.exec.find(type, context.pluginDirs);
  if (path !== undefined) return ok(path);
  const dirs = context.pluginDirs.length > 0 ? context.pluginDirs.join(", ") : "(no directories given)";
  return fail({ ...cniError(CNI_ERROR.internal, `no plugin binary "${type}" in the plugin path: searched ${dirs}`), plugin: type });
}

const clip = (text: string): string => {
  const trimmed = text.trim();
  return trimmed.length > 500 ? `${trimmed.slice(0, 499)}…` : trimmed;
};

/**
 * Runs `type` with `stdin`; the raw stdout on success. A non-zero exit is the plugin's error
 * object when stdout holds one, else an error quoting what it printed (libcni invoke.pluginErr).
 */
export async function invokePlugin(context: InvokeContext, type: string, stdin: string, params: InvokeParams): Promise<Result<string, CniError>> {
  const found = await findPlugin(context, type);
  if (!found.ok) return fail({ ...found.error, command: params.command });
  const origin = { plugin: type, command: params.command };
  const outcome = await context.exec.run({ path: found.value, env: pluginEnv(context.env, params, context.pluginDirs), stdin, timeoutMs: context.timeoutMs, ...(params.onStart && { onStart: params.onStart }) });
  if (outcome.startError !== undefined) {
    return fail({ ...cniError(CNI_ERROR.internal, `cannot start ${found.value}: ${outcome.startError}`), ...origin });
  }
  if (outcome.timedOut) {
    return fail({ ...cniError(CNI_ERROR.internal, `${found.value} did not answer within ${context.timeoutMs} ms and was killed`), ...origin });
  }
  if (outcome.exitCode === 0) return ok(outcome.stdout);
  const status = outcome.exitCode === null ? "was killed" : `exited with status ${outcome.exitCode}`;
  if (outcome.stdout.trim() === "") {
    const stderr = clip(outcome.stderr);
    const msg = stderr === "" ? `${found.value} ${status} and printed no error` : `${found.value} ${status}: ${stderr}`;
    return fail({ ...cniError(CNI_ERROR.internal, msg), ...origin });
  }
  const decoded = decodeJson(outcome.stdout);
  const parsed = CniErrorWireSchema.safeParse(decoded.ok ? decoded.value : undefined);
  if (!parsed.success) {
    return fail({ ...cniError(CNI_ERROR.internal, `${found.value} ${status} and printed something that is not a CNI error: ${clip(outcome.stdout)}`), ...origin });
  }
  return fail({ ...parsed.data, ...origin });
}

/** Reads an ADD's stdout as a result; one without cniVersion is read in the config's version. */
export function readResult(stdout: string, type: string, configVersion: string): Result<CniResult, CniError> {
  const unreadable = (why: string): Result<CniResult, CniError> =>
    fail({ ...cniError(CNI_ERROR.decodingFailure, `plugin ${type} printed a result nadguard cannot read: ${why}`), plugin: type, command: "ADD" });
  const decoded = decodeJson(stdout);
  if (!decoded.ok) return unreadable(`not JSON (${decoded.error})`);
  const parsed = parseResult(decoded.value, "", configVersion);
  return parsed.ok ? parsed : unreadable(parsed.error.map(formatProblem).join("; "));
}

const VersionInfoSchema = z.object({ cniVersion: z.string(), supportedVersions: z.array(z.string()) });
export type VersionInfo = z.infer<typeof VersionInfoSchema>;

/** The VERSION command: which spec versions the plugin speaks. */
export async function pluginVersions(context: InvokeContext, type: string): Promise<Result<VersionInfo, CniError>> {
  const out = await invokePlugin(context, type, JSON.stringify({ cniVersion: "1.0.0" }), { command: "VERSION" });
  if (!out.ok) return out;
  const decoded = decodeJson(out.value);
  const parsed = VersionInfoSchema.safeParse(decoded.ok ? decoded.value : undefined);
  if (parsed.success) return ok(parsed.data);
  return fail({ ...cniError(CNI_ERROR.decodingFailure, `plugin ${type} answered VERSION with something nadguard cannot read: ${clip(out.value)}`), plugin: type, command: "VERSION" });
}
