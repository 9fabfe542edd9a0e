// Multus' delegate cache, `<cniDir>/<containerID>` (default `/var/lib/cni/multus`): what Multus
// attached to a sandbox, written before its first delegate ran. nadguard reads it to DEL a pod that
// Multus attached before nadguard took over the node. The file is Multus' []*DelegateNetConf as Go
// marshals it (multus-cni pkg/types): a JSON list of objects with `Name`, `ifnameRequest`,
// `macRequest`, `ipRequest`, `infinibandGUIDRequest`, `default-route`, `deviceID`, `resourceName`
// and `Bytes`, the delegate's config exactly as run, base64. As Multus' cmdDel reads it: the first
// delegate is the cluster network and gets the runtime's CNI_IFNAME; every other one its
// `ifnameRequest`, else `net<position>`.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { type Problem, type Result, atPlace, fail, ok, problemsFromZod } from "../api/errors.js";
import { CNI_NAME_PATTERN, type NetworkConfigList, parseNetworkConfig } from "./config.js";
import { decodeJson, defined } from "./json.js";

export const DEFAULT_MULTUS_CNI_DIR = "/var/lib/cni/multus";

export interface MultusDelegate {
  /** Multus' name for it: `namespace/nad` for a NAD, the conf's name for the cluster network. */
  readonly name: string;
  /** The interface it was attached as. */
  readonly ifname: string;
  /** The first delegate: the cluster network. */
  readonly clusterNetwork: boolean;
  /** Its config as Multus ran it (a single config as a list of one). */
  readonly config: NetworkConfigList;
  readonly macRequest?: string;
  readonly ipRequest?: readonly string[];
  readonly infinibandGuidRequest?: string;
  readonly defaultRoute?: readonly string[];
  readonly deviceId?: string;
  readonly resourceName?: string;
}

const DelegateSchema = z.object({
  Name: z.string().nullish(),
  ifnameRequest: z.string().nullish(),
  macRequest: z.string().nullish(),
  ipRequest: z.array(z.string()).nullish(),
  infinibandGUIDRequest: z.string().nullish(),
  "default-route": z.array(z.string()).nullish(),
  deviceID: z.string().nullish(),
  resourceName: z.string().nullish(),
  Bytes: z.base64({ message: "must be the delegate's config as base64" }),
});

const CacheSchema = z.array(DelegateSchema, { message: "must be a JSON list of delegates" }).min(1, { message: "must hold at least the cluster network's delegate" });

/**
 * Reads a Multus delegate cache file. `ifname` is the runtime's CNI_IFNAME (the cluster
 * network's interface); `fallbackVersion` is used for a delegate config without cniVersion, as
 * Multus gives such a config its own conf's version.
 */
export function parseMultusDelegates(text: string, path: string, ifname: string, fallbackVersion = "1.0.0"): Result<MultusDelegate[], Problem[]> {
  const decoded = decodeJson(text);
  if (!decoded.ok) return fail([{ code: "multus-cache.json", path, message: `is not valid JSON: ${decoded.error}` }]);
  const parsed = CacheSchema.safeParse(decoded.value);
  if (!parsed.success) return fail(atPlace(problemsFromZod(parsed.error, "", "multus-cache.schema"), path));
  const problems: Problem[] = [];
  const delegates: MultusDelegate[] = [];
  parsed.data.forEach((entry, index) => {
    const where = `${path}: [${index}].Bytes`;
    const bytes = decodeJson(Buffer.from(entry.Bytes, "base64").toString());
    const raw = bytes.ok && typeof bytes.value === "object" && bytes.value !== null && !("cniVersion" in bytes.value) ? { ...bytes.value, cniVersion: fallbackVersion } : bytes.ok ? bytes.value : undefined;
    const config = bytes.ok ? parseNetworkConfig(raw, where) : fail([{ code: "multus-cache.config", path: where, message: `is not a JSON config: ${bytes.error}` }]);
    if (!config.ok) {
      problems.push(...config.error);
      return;
    }
    delegates.push(
      defined({
        name: entry.Name || config.value.name,
        ifname: entry.ifnameRequest || (index === 0 ? ifname : `net${index}`),
        clusterNetwork: index === 0,
        config: config.value,
        macRequest: entry.macRequest || undefined,
        ipRequest: entry.ipRequest?.length ? entry.ipRequest : undefined,
        infinibandGuidRequest: entry.infinibandGUIDRequest || undefined,
        defaultRoute: entry["default-route"]?.length ? entry["default-route"] : undefined,
        deviceId: entry.deviceID || undefined,
        resourceName: entry.resourceName || undefined,
      }),
    );
  });
  return problems.length > 0 ? fail(problems) : ok(delegates);
}

/** Reads `<cniDir>/<containerId>`: undefined when Multus has no file for the container. */
export async function readMultusDelegates(cniDir: string, containerId: string, ifname: string, fallbackVersion?: string): Promise<Result<MultusDelegate[] | undefined, Problem[]>> {
  // The container ID becomes a file name: nothing but what libcni accepts for one.
  if (!CNI_NAME_PATTERN.test(containerId)) return fail([{ code: "multus-cache.container-id", path: cniDir, message: `container ID "${containerId}" cannot name a cache file` }]);
  const path = join(cniDir, containerId);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return ok(undefined);
    return fail([{ code: "multus-cache.read", path, message: `cannot be read: ${(error as Error).message}` }]);
  }
  return parseMultusDelegates(text, path, ifname, fallbackVersion);
}

/** The capability arguments Multus gave the delegate from what it cached (port mappings and bandwidth it does not cache). */
export function multusCapabilityArgs(delegate: MultusDelegate): Record<string, unknown> {
  if (delegate.clusterNetwork) return {};
  return defined({ ips: delegate.ipRequest, mac: delegate.macRequest, infinibandGUID: delegate.infinibandGuidRequest, deviceID: delegate.deviceId });
}

