// CNI results (spec 1.0.0 section "Success"; 0.3.0-0.4.0 as libcni pkg/types/040): what a plugin
// prints after ADD, what the next plugin of a list gets as `prevResult`, and what the runtime gets
// back in the version it asked for. Conversion follows libcni pkg/types/100 exactly: 1.x -> 0.3.x/0.4.0
// adds each IP's `version` ("4" for an IPv4 or IPv4-mapped address, else "6") and drops the 1.1
// interface fields (`mtu`, `socketPath`, `pciID`); 0.x -> 1.x drops `version`; routes and dns are
// copied whole. As Go's decoder does, unknown keys are dropped and `null` reads as absent.
import { z } from "zod";
import { type Problem, type Result, fail, ok, problemsFromZod } from "../api/errors.js";
import { parseCidr, parseIp } from "../networks/addresses.js";
import { CNI_ERROR, type CniError, cniError } from "./errors.js";
import { defined } from "./json.js";
import { RESULT_VERSIONS, type ResultVersion, compareVersions, isResultVersion } from "./version.js";

export interface CniInterface {
  readonly name: string;
  readonly mac?: string;
  /** The netns path for an interface inside the container; absent for host-side ones. */
  readonly sandbox?: string;
  /** 1.1.0 only. */
  readonly mtu?: number;
  readonly socketPath?: string;
  readonly pciID?: string;
}

export interface CniIpConfig {
  /** 0.3.x/0.4.0 only: "4" or "6". */
  readonly version?: "4" | "6";
  /** Index into `interfaces`. */
  readonly interface?: number;
  /** Address with its prefix, e.g. `198.18.0.2/24`. */
  readonly address: string;
  readonly gateway?: string;
}

export interface CniRoute {
  readonly dst: string;
  readonly gw?: string;
  readonly mtu?: number;
  readonly advmss?: number;
  readonly priority?: number;
  readonly table?: number;
  readonly scope?: number;
}

export interface CniDns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

/**
 * A result in its canonical form for its version: empty lists left out; `dns` always present in
 * 0.x (libcni's 0.4.0 type prints `"dns": {}`), only when non-empty in 1.x.
 */
export interface CniResult {
  readonly cniVersion: ResultVersion;
  readonly interfaces?: readonly CniInterface[];
  readonly ips?: readonly CniIpConfig[];
  readonly routes?: readonly CniRoute[];
  readonly dns?: CniDns;
}

const absent = <T extends z.ZodType>(schema: T) => schema.nullish().transform((value) => value ?? undefined);
const IpText = z.string().refine((text) => parseIp(text) !== undefined, { message: "is not an IP address" });
const CidrText = z.string().refine((text) => parseCidr(text) !== undefined, { message: "is not an address with a prefix (e.g. 198.18.0.2/24)" });
const StringList = absent(z.array(z.string()));

const DnsSchema = z.object({ nameservers: StringList, domain: absent(z.string()), search: StringList, options: StringList });
const RouteSchema = z.object({
  dst: CidrText,
  gw: absent(IpText),
  mtu: absent(z.number().int()),
  advmss: absent(z.number().int()),
  priority: absent(z.number().int()),
  table: absent(z.number().int()),
  scope: absent(z.number().int()),
});
const InterfaceSchema = z.object({
  name: z.string(),
  mac: absent(z.string()),
  sandbox: absent(z.string()),
  mtu: absent(z.number().int()),
  socketPath: absent(z.string()),
  pciID: absent(z.string()),
});
const IpSchema = z.object({
  version: absent(z.enum(["4", "6"])),
  interface: absent(z.number().int().nonnegative()),
  address: CidrText,
  gateway: absent(IpText),
});
const ResultSchema = z.object({
  cniVersion: z.string(),
  interfaces: absent(z.array(InterfaceSchema)),
  ips: absent(z.array(IpSchema)),
  routes: absent(z.array(RouteSchema)),
  dns: absent(DnsSchema),
});

function isLegacy(version: string): boolean {
  return (compareVersions(version, "1.0.0") ?? 0) < 0;
}

/** libcni's family test: Go's To4() is non-nil for IPv4 and IPv4-mapped IPv6 addresses. */
function ipVersionOf(address: string): "4" | "6" {
  const ip = parseIp(address.slice(0, address.indexOf("/")));
  return ip?.family === 4 || (ip !== undefined && ip.value >> 32n === 0xffffn) ? "4" : "6";
}


function isEmptyDns(dns: CniDns | undefined): boolean {
  return dns === undefined || Object.values(dns).every((value) => value === undefined || (Array.isArray(value) && value.length === 0) || value === "");
}

function nonEmpty<T>(list: readonly T[] | undefined): readonly T[] | undefined {
  return list !== undefined && list.length > 0 ? list : undefined;
}

/** Builds the canonical form of a result for `version` from its parts (see CniResult). */
function canonical(version: ResultVersion, parts: Omit<CniResult, "cniVersion">): CniResult {
  const legacy = isLegacy(version);
  const interfaces = parts.interfaces?.map((i) =>
    defined(legacy ? { name: i.name, mac: i.mac, sandbox: i.sandbox } : { name: i.name, mac: i.mac, mtu: i.mtu, sandbox: i.sandbox, socketPath: i.socketPath, pciID: i.pciID }),
  );
  const ips = parts.ips?.map((ip) =>
    defined({ version: legacy ? ipVersionOf(ip.address) : undefined, interface: ip.interface, address: ip.address, gateway: ip.gateway }),
  );
  const routes = parts.routes?.map((route) => defined({ ...route }));
  const dns = isEmptyDns(parts.dns) ? (legacy ? {} : undefined) : defined({ ...parts.dns! });
  return defined({ cniVersion: version, interfaces: nonEmpty(interfaces), ips: nonEmpty(ips), routes: nonEmpty(routes), dns });
}

/**
 * Reads a result (a plugin's stdout, a cached result, a prevResult). A result without
 * `cniVersion` is read as `defaultVersion` (libcni does the same with the config's version).
 * Problems name `where` and the path inside, e.g. `plugin bridge: ips[0].address`.
 */
export function parseResult(json: unknown, where: string, defaultVersion?: string): Result<CniResult, Problem[]> {
  const object = typeof json === "object" && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
  const unversioned = object !== undefined && (object.cniVersion === undefined || object.cniVersion === null || object.cniVersion === "");
  const input = unversioned && defaultVersion !== undefined ? { ...object, cniVersion: defaultVersion } : json;
  const parsed = ResultSchema.safeParse(input);
  if (!parsed.success) return fail(problemsFromZod(parsed.error, where, "cni.result"));
  const { cniVersion, ...parts } = parsed.data;
  if (!isResultVersion(cniVersion)) {
    return fail([{ code: "cni.result-version", path: `${where}${where ? "." : ""}cniVersion`, message: `"${cniVersion}" is not a result version nadguard reads (${RESULT_VERSIONS.join(", ")})` }]);
  }
  return ok(canonical(cniVersion, parts));
}

/** The result in `version`, as libcni's GetAsVersion converts it. Code 1 when `version` cannot be written. */
export function convertResult(result: CniResult, version: string): Result<CniResult, CniError> {
  if (!isResultVersion(version)) {
    return fail(cniError(CNI_ERROR.incompatibleVersion, `cannot convert a ${result.cniVersion} result to version "${version}"`, `nadguard converts results between ${RESULT_VERSIONS.join(", ")}`));
  }
  if (version === result.cniVersion) return ok(result);
  const { cniVersion: _from, ...parts } = result;
  return ok(canonical(version, parts));
}

/** The result as a plugin prints it. */
export function resultJson(result: CniResult): string {
  return JSON.stringify(result);
}
