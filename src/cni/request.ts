// A CNI call as the shim forwards it to the node daemon, in Multus' thick-plugin wire format
// (multus-cni pkg/server/api): `POST /cni` with `{"env": {…the shim's whole environment…},
// "config": "<base64 of its stdin>"}`, so that `multus-shim` can talk to nadguard unchanged. The
// call is checked as a plugin checks its own invocation (CNI spec 1.0.0 "Parameters"; libcni
// pkg/skel): the variables each command needs, CNI_ARGS as `K=V` pairs, the config a JSON object.
// Answers: ADD `200 {"Result": <1.0.0 result>}` (the shim converts it to the version its runtime
// asked for, as multus-shim does), the other commands `200` and an empty body, a failure `400` with
// a CNI error object.
import { z } from "zod";
import { type Result, fail, formatProblem, ok, problemsFromZod } from "../api/errors.js";
import type { JsonObject } from "./config.js";
import { CNI_ERROR, type CniCommand, type CniError, type CniErrorWire, cniError, toWireError } from "./errors.js";
import type { CniArgs } from "./invoke.js";
import { decodeJson } from "./json.js";
import { type CniResult, convertResult } from "./result.js";

export const SHIM_RESULT_VERSION = "1.0.0";

const COMMANDS: readonly CniCommand[] = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"];
const isCommand = (value: string): value is CniCommand => (COMMANDS as readonly string[]).includes(value);

/** Which variables each command needs (libcni pkg/skel getCmdArgsFromEnv). */
const REQUIRED: Record<string, readonly CniCommand[]> = {
  CNI_CONTAINERID: ["ADD", "DEL", "CHECK"],
  CNI_NETNS: ["ADD", "CHECK"],
  CNI_IFNAME: ["ADD", "DEL", "CHECK"],
  CNI_PATH: ["ADD", "DEL", "CHECK"],
};

export const ShimRequestSchema = z.object({
  env: z.record(z.string(), z.string(), { message: "must be the shim's environment, an object of strings" }),
  config: z.base64({ message: "must be the shim's stdin, base64" }),
});

/** The Kubernetes part of CNI_ARGS, as the CRI sets it. */
export interface K8sArgs {
  readonly namespace?: string;
  readonly name?: string;
  readonly uid?: string;
  readonly infraContainerId?: string;
}

export interface CniCall {
  readonly command: CniCommand;
  readonly containerId: string;
  /** Empty for a DEL after the sandbox's netns is gone. */
  readonly netns: string;
  readonly ifname: string;
  readonly path: readonly string[];
  /** CNI_ARGS, every pair in order. */
  readonly args: CniArgs;
  readonly k8s: K8sArgs;
  /** The meta-plugin's config (its stdin), decoded. */
  readonly config: JsonObject;
  /** The config's cniVersion: the version the runtime wants its result in. */
  readonly cniVersion: string;
  /** The rest of the shim's environment, as the runtime set it. */
  readonly env: Readonly<Record<string, string>>;
}

/** `K=V;K=V` into pairs; code 4 naming a pair without `=` (skel: "ARGS: invalid pair"). */
export function parseCniArgs(text: string): Result<[string, string][], CniError> {
  if (text.trim() === "") return ok([]);
  const pairs: [string, string][] = [];
  for (const part of text.split(";")) {
    const at = part.indexOf("=");
    if (at <= 0) return fail(cniError(CNI_ERROR.invalidEnvironment, `CNI_ARGS: "${part}" is not a KEY=VALUE pair`));
    pairs.push([part.slice(0, at), part.slice(at + 1)]);
  }
  return ok(pairs);
}

/** The pod named by CNI_ARGS (K8S_POD_*); absent keys are left out. */
export function k8sArgs(args: CniArgs): K8sArgs {
  const value = (key: string): string | undefined => args.find(([k]) => k === key)?.[1] || undefined;
  return Object.fromEntries(
    Object.entries({ namespace: value("K8S_POD_NAMESPACE"), name: value("K8S_POD_NAME"), uid: value("K8S_POD_UID"), infraContainerId: value("K8S_POD_INFRA_CONTAINER_ID") }).filter(([, v]) => v !== undefined),
  );
}

/** Reads a `POST /cni` body (already JSON-decoded). Errors are CNI errors: 4 for the environment, 6 for what cannot be decoded. */
export function parseCniCall(body: unknown): Result<CniCall, CniError> {
  const parsed = ShimRequestSchema.safeParse(body);
  if (!parsed.success) return fail(cniError(CNI_ERROR.decodingFailure, `the request is not a CNI call: ${problemsFromZod(parsed.error, "").map(formatProblem).join("; ")}`));
  const { env } = parsed.data;
  const command = env.CNI_COMMAND;
  if (command === undefined || command === "") return fail(cniError(CNI_ERROR.invalidEnvironment, "required env variables [CNI_COMMAND] missing"));
  if (!isCommand(command)) return fail(cniError(CNI_ERROR.invalidEnvironment, `unknown CNI_COMMAND: ${command}`));
  const missing = Object.entries(REQUIRED)
    .filter(([variable, commands]) => commands.includes(command) && !env[variable])
    .map(([variable]) => variable);
  if (missing.length > 0) return fail(cniError(CNI_ERROR.invalidEnvironment, `required env variables [${missing.join(",")}] missing`));
  const args = parseCniArgs(env.CNI_ARGS ?? "");
  if (!args.ok) return args;
  const decoded = decodeJson(Buffer.from(parsed.data.config, "base64").toString());
  if (!decoded.ok) return fail(cniError(CNI_ERROR.decodingFailure, `the network config (stdin) is not JSON: ${decoded.error}`));
  const config = decoded.value;
  if (typeof config !== "object" || config === null || Array.isArray(config)) return fail(cniError(CNI_ERROR.decodingFailure, "the network config (stdin) must be a JSON object"));
  const cniVersion = (config as JsonObject).cniVersion;
  if (typeof cniVersion !== "string" || cniVersion === "") return fail(cniError(CNI_ERROR.invalidNetworkConfig, 'the network config (stdin) has no cniVersion (e.g. "1.0.0")'));
  const { CNI_COMMAND: _c, CNI_CONTAINERID: containerId = "", CNI_NETNS: netns = "", CNI_IFNAME: ifname = "", CNI_PATH: path = "", CNI_ARGS: _a, ...rest } = env;
  return ok({
    command,
    containerId,
    netns,
    ifname,
    path: path.split(":").filter((dir) => dir !== ""),
    args: args.value,
    k8s: k8sArgs(args.value),
    config: config as JsonObject,
    cniVersion,
    env: rest,
  });
}

export interface CniAnswer {
  readonly status: 200 | 400;
  /** Empty for a 200 without result. */
  readonly body: string;
}

/** ADD's answer: the result in 1.0.0 under `Result`; a result that cannot be written so is an error. */
export function resultAnswer(result: CniResult): CniAnswer {
  const converted = convertResult(result, SHIM_RESULT_VERSION);
  return converted.ok ? { status: 200, body: JSON.stringify({ Result: converted.value }) } : errorAnswer(converted.error);
}

/** DEL, CHECK, STATUS, GC: success and nothing to say. */
export const EMPTY_ANSWER: CniAnswer = { status: 200, body: "" };

export function errorAnswer(error: CniError, cniVersion?: string): CniAnswer {
  const wire: CniErrorWire = toWireError(error, cniVersion);
  return { status: 400, body: JSON.stringify(wire) };
}
