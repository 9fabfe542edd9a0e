// A NAD's spec.config checked as the CNI runtime and its plugins will read it when a pod attaches:
// the envelope (CNI spec 1.1 section "Configuration format": a single network config or a conflist,
// name, cniVersion, type), then each plugin of a known type (cni-plugins.ts) and each IPAM section
// (cni-ipam.ts). Every problem names its JSON path inside the config, e.g.
// `spec.config.plugins[0].ipam.ranges[0][0].rangeStart`, says what is wrong and what is allowed.
//
// Problems are what would make the pod fail in ContainerCreating; warnings are configurations that
// work but rarely mean what their author thinks.
import type { Problem } from "../api/errors.js";
import { type Findings, type JsonObject, at, either, field, isObject, report, show } from "./cni-fields.js";
import { type IpamSummary, checkIpam } from "./cni-ipam.js";
import { PLUGIN_CHECKS } from "./cni-plugins.js";

/** The versions the CNI spec defines (SPEC.md "Configuration format"; 1.1.0 is the latest). */
export const CNI_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

/** libcni ValidateNetworkName. */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Plugin types that install no routes beyond those of their IPAM result (containernetworking/plugins
 * macvlan and ipvlan), so their pods reach past the subnet only through IPAM routes.
 */
const ROUTED_TYPES = new Set(["macvlan", "ipvlan"]);
/** Plugins later in a list that add routes of their own. */
const ROUTE_ADDING_TYPES = new Set(["route-override"]);

export interface PluginIpam extends IpamSummary {
  /** JSON path of the ipam section, e.g. `spec.config.plugins[0].ipam`. */
  readonly path: string;
  /** Index of the plugin it belongs to (0 for a single config). */
  readonly plugin: number;
  readonly pluginType: string;
}

export interface CniConfigCheck {
  /** `empty`: no config (the node's file of the NAD's name is used, multi-net spec 3.2.4). */
  readonly form: "empty" | "single" | "list";
  readonly problems: readonly Problem[];
  readonly warnings: readonly string[];
  /** Plugin types in delegate order (those that could be read). */
  readonly types: readonly string[];
  /** The IPAM sections of known types, in plugin order. */
  readonly ipams: readonly PluginIpam[];
}

export interface CniConfigOptions {
  /** The NAD has a device-plugin resource (its deviceID reaches the plugin as runtime config). */
  readonly hasResourceName?: boolean;
  /** Where the config sits, for paths; `spec.config` by default. */
  readonly path?: string;
}

/** Checks a NAD's spec.config text. Never throws. */
export function checkCniConfig(config: string | undefined, options: CniConfigOptions = {}): CniConfigCheck {
  const path = options.path ?? "spec.config";
  const findings: Findings = { problems: [], warnings: [] };
  const done = (form: CniConfigCheck["form"], types: string[] = [], ipams: PluginIpam[] = []): CniConfigCheck => ({
    form,
    problems: findings.problems,
    warnings: findings.warnings,
    types,
    ipams,
  });
  if (config === undefined || config.trim() === "") return done("empty");
  let json: unknown;
  try {
    json = JSON.parse(config);
  } catch (error) {
    report(findings, "json", path, `is not valid JSON: ${(error as Error).message}`);
    return done("single");
  }
  if (!isObject(json)) {
    report(findings, "not-object", path, `must be a JSON object (a CNI config or a conflist), not ${show(json)}`);
    return done("single");
  }
  const context = { hasResourceName: options.hasResourceName ?? false };
  checkName(findings, json, path);
  const version = checkVersion(findings, json, path);
  const types: string[] = [];
  const ipams: PluginIpam[] = [];
  const plugins = field(json, "plugins");
  if (plugins === undefined) {
    checkPlugin(findings, json, path, 0, context, types, ipams);
    warnUnrouted(findings, types, ipams);
    return done("single", types, ipams);
  }
  if (!Array.isArray(plugins) || plugins.length === 0) {
    const what = Array.isArray(plugins) ? "an empty array" : show(plugins);
    report(findings, "bad-plugins", at(path, "plugins"), `must be a non-empty array of plugin objects (each with a "type"), not ${what}`);
    return done("list");
  }
  plugins.forEach((plugin, i) => {
    const where = at(at(path, "plugins"), i);
    if (!isObject(plugin)) {
      report(findings, "bad-plugins", where, `must be a plugin object with a "type", not ${show(plugin)}`);
      return;
    }
    const own = field(plugin, "cniVersion");
    if (version !== undefined && typeof own === "string" && own !== version) {
      // libcni injects the list's cniVersion into every plugin it runs.
      findings.warnings.push(`${at(where, "cniVersion")}: ${own} differs from the list's ${version}; the runtime uses ${version}`);
    }
    checkPlugin(findings, plugin, where, i, context, types, ipams);
  });
  warnUnrouted(findings, types, ipams);
  return done("list", types, ipams);
}

/** `name` may be left out: Multus names the network after the NAD. */
function checkName(findings: Findings, config: JsonObject, path: string): void {
  const name = field(config, "name");
  if (name === undefined || name === "") return;
  if (typeof name !== "string") report(findings, "wrong-type", at(path, "name"), `must be a string, not ${show(name)}`);
  else if (!NETWORK_NAME.test(name)) {
    report(findings, "bad-name", at(path, "name"), `${show(name)} is not a CNI network name (letters, digits, '_', '.' and '-', starting with a letter or digit)`);
  }
}

function checkVersion(findings: Findings, config: JsonObject, path: string): string | undefined {
  const version = field(config, "cniVersion");
  if (version === undefined) {
    // pkg/version ConfigDecoder: an absent cniVersion reads as 0.1.0.
    findings.warnings.push(`${path}: no cniVersion, so plugins read it as CNI 0.1.0; set one, e.g. "1.0.0"`);
    return undefined;
  }
  if (typeof version === "string" && (CNI_VERSIONS as readonly string[]).includes(version)) return version;
  report(findings, "bad-version", at(path, "cniVersion"), `${show(version)} is not a CNI spec version; use ${either(CNI_VERSIONS)}`);
  return undefined;
}

function checkPlugin(
  findings: Findings,
  plugin: JsonObject,
  path: string,
  index: number,
  context: { hasResourceName: boolean },
  types: string[],
  ipams: PluginIpam[],
): void {
  const type = checkType(findings, plugin, path);
  if (type === undefined) return;
  types.push(type);
  PLUGIN_CHECKS[type]?.(findings, plugin, path, context);
  const ipam = field(plugin, "ipam");
  if (ipam === undefined) return;
  if (!isObject(ipam)) {
    report(findings, "wrong-type", at(path, "ipam"), `must be an object with a "type", not ${show(ipam)}`);
    return;
  }
  const summary = checkIpam(findings, ipam, at(path, "ipam"));
  if (summary) ipams.push({ ...summary, path: at(path, "ipam"), plugin: index, pluginType: type });
}

function checkType(findings: Findings, plugin: JsonObject, path: string): string | undefined {
  const type = field(plugin, "type");
  const where = at(path, "type");
  if (type === undefined || type === "") {
    report(findings, "missing-type", where, `is missing; name the CNI plugin, e.g. "macvlan"`);
  } else if (typeof type !== "string") {
    report(findings, "wrong-type", where, `must be a string, not ${show(type)}`);
  } else if (/[/\\]/.test(type)) {
    report(findings, "bad-type", where, `${show(type)} is a path; type is the file name of a plugin binary in the CNI bin directory`);
  } else {
    return type;
  }
  return undefined;
}

/**
 * macvlan/ipvlan with addresses but no gateway and no route: the IPAM result installs no route, so
 * the interface reaches only its own subnet (a pod can still name a gateway in its selection).
 */
function warnUnrouted(findings: Findings, types: readonly string[], ipams: readonly PluginIpam[]): void {
  // The first plugin creates the interface; its IPAM configures it.
  const ipam = ipams.find((candidate) => candidate.plugin === 0);
  if (!ROUTED_TYPES.has(ipam?.pluginType ?? "") || !ipam || ipam.routed) return;
  if (types.some((type) => ROUTE_ADDING_TYPES.has(type))) return;
  const subnets = [...new Set(ipam.ranges.map((range) => range.subnet))];
  if (subnets.length === 0) return;
  const shown = subnets.length > 2 ? `${subnets.slice(0, 2).join(", ")} and ${subnets.length - 2} more` : subnets.join(", ");
  findings.warnings.push(`no gateway or routes: pods reach only ${shown} on this network`);
}
