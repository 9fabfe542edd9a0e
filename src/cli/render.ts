// `nadguard render --state DIR --pod NS/NAME`: the nft script the enforcer would apply in that pod's
// network namespace (the whole table, replacing what was there), from the same compiler.
import { InputError, formatProblem } from "../api/errors.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { loadConfig } from "../config/config.js";
import { buildModel, type InterfaceModel } from "../policy/model.js";
import { compilePod, podScript } from "../policy/compiler.js";
import { reportStateProblems } from "./env.js";
import { EXIT, UsageError } from "./io.js";

export interface RenderOptions {
  state: string;
  /** `namespace/name`. */
  pod: string;
  config?: string | undefined;
  /** Accept ICMP/ICMPv6 echo requests on isolated interfaces (compiler option). */
  acceptIcmpEcho?: boolean;
}

/** `ns/name`; a UsageError naming the flag otherwise. */
export function parseObjectRef(value: string, flag: string): string {
  const match = /^([^/\s]+)\/([^/\s]+)$/.exec(value.trim());
  if (!match) throw new UsageError(`--${flag} ${value}: expected NAMESPACE/NAME`);
  return `${match[1]}/${match[2]}`;
}

function describeInterface(m: InterfaceModel): string {
  const where = `${m.interface ?? "?"} (${m.network})`;
  if (!m.managed) return `# ${where}: not managed: ${m.unmanagedReason ?? "unknown reason"}`;
  const dir = (name: string, d: InterfaceModel["ingress"]): string => (d.isolated ? `${name} isolated by ${d.policies.join(", ")}` : `${name} not isolated`);
  return `# ${where}: ${dir("ingress", m.ingress)}; ${dir("egress", m.egress)}`;
}

export async function runRender(options: RenderOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const podKey = parseObjectRef(options.pod, "pod");
  const config = await loadConfig(options.config);
  const snapshot = await loadStateDir(options.state);
  reportStateProblems(snapshot, err);
  if (!snapshot.pods.has(podKey)) {
    throw new InputError([{ code: "render.pod", path: "--pod", message: `pod ${podKey} is not in the state directory ${options.state}` }]);
  }
  const compilerOptions = { acceptIcmpEcho: options.acceptIcmpEcho ?? config.enforcement.acceptIcmpEcho };
  const model = buildModel(snapshot, config);
  const interfaces = model.podModel(podKey);
  const applying = new Set(interfaces.flatMap((m) => [...m.ingress.policies, ...m.egress.policies]));
  for (const key of applying) for (const problem of model.policies.get(key)?.problems ?? []) err(`policy: ${formatProblem(problem)}`);
  const state = compilePod(snapshot, config, podKey, compilerOptions);
  for (const warning of state?.warnings ?? []) err(`warning: ${formatProblem(warning)}`);
  out(`# nadguard: table inet nadguard for pod ${podKey}`);
  if (interfaces.length === 0) out("# no secondary network attachments in network-status");
  for (const m of interfaces) out(describeInterface(m));
  if (!state) {
    out("# no managed interface: nadguard keeps no table in this pod's network namespace");
    return EXIT.ok;
  }
  out(podScript(state, compilerOptions).trimEnd());
  return EXIT.ok;
}
