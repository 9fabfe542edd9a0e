// The delegate cache: per sandbox, the delegates attached to it with their configs exactly as run,
// written before the first delegate runs, so that DEL undoes what ADD did even when the pod, a NAD
// or the netns is gone, or a NAD changed since. The format is Multus' (`<cniDir>/<containerID>`,
// its []*DelegateNetConf as Go marshals it, multus-cni pkg/types): a JSON list of objects with
// `Name`, `ifnameRequest`, `macRequest`, `ipRequest`, `infinibandGUIDRequest`, `default-route`,
// `deviceID`, `resourceName`, and `Bytes`, the delegate's config base64. The same reader takes
// Multus' own files (default dir `/var/lib/cni/multus`), to DEL a pod Multus attached before
// nadguard took over the node: as Multus' cmdDel reads them, the first delegate is the cluster
// network and gets the runtime's CNI_IFNAME, every other one its `ifnameRequest`, else
// `net<position>`. nadguard also writes each delegate's full capability arguments
// (`capabilityArgs`, since Multus does not cache port mappings and bandwidth) and its selection
// element as written (`element`, for messages); Multus' decoder ignores both.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { type Problem, type Result, atPlace, fail, ok, problemsFromZod } from "../api/errors.js";
import { CNI_NAME_PATTERN, type NetworkConfigList, parseNetworkConfig } from "./config.js";
import { removeFile, writeFileAtomic } from "./files.js";
import { decodeJson, defined } from "./json.js";

export const DEFAULT_MULTUS_CNI_DIR = "/var/lib/cni/multus";

export interface CachedDelegate {
  /** `namespace/nad` for a NAD, the conf's name for the cluster network. */
  readonly name: string;
  /** The interface it was attached as. */
  readonly ifname: string;
  /** The first delegate: the cluster network. */
  readonly clusterNetwork: boolean;
  /** The selection element as written (e.g. `nets/blue@net1`), for messages; absent for the cluster and default networks. */
  readonly element?: string;
  /** Its config as run (a single config as a list of one). */
  readonly config: NetworkConfigList;
  /** The capability arguments it ran with. */
  readonly capabilityArgs: Readonly<Record<string, unknown>>;
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
  capabilityArgs: z.record(z.string(), z.unknown()).nullish(),
  element: z.string().nullish(),
  Bytes: z.base64({ message: "must be the delegate's config as base64" }),
});

const CacheSchema = z.array(DelegateSchema, { message: "must be a JSON list of delegates" }).min(1, { message: "must hold at least the cluster network's delegate" });

/** The capability arguments Multus builds from what it caches (it does not cache port mappings and bandwidth). */
function multusCapabilityArgs(entry: z.infer<typeof DelegateSchema>, clusterNetwork: boolean): Record<string, unknown> {
  if (clusterNetwork) return {};
  return defined({ ips: entry.ipRequest?.length ? entry.ipRequest : undefined, mac: entry.macRequest || undefined, infinibandGUID: entry.infinibandGUIDRequest || undefined, deviceID: entry.deviceID || undefined });
}

/**
 * Reads a delegate cache file. `ifname` is the runtime's CNI_IFNAME (the cluster network's
 * interface); `fallbackVersion` is used for a delegate config without cniVersion, as Multus gives
 * such a config its own conf's version.
 */
export function parseDelegateCache(text: string, path: string, ifname: string, fallbackVersion = "1.0.0"): Result<CachedDelegate[], Problem[]> {
  const decoded = decodeJson(text);
  if (!decoded.ok) return fail([{ code: "delegate-cache.json", path, message: `is not valid JSON: ${decoded.error}` }]);
  const parsed = CacheSchema.safeParse(decoded.value);
  if (!parsed.success) return fail(atPlace(problemsFromZod(parsed.error, "", "delegate-cache.schema"), path));
  const problems: Problem[] = [];
  const delegates: CachedDelegate[] = [];
  parsed.data.forEach((entry, index) => {
    const where = `${path}: [${index}].Bytes`;
    const bytes = decodeJson(Buffer.from(entry.Bytes, "base64").toString());
    if (!bytes.ok) {
      problems.push({ code: "delegate-cache.config", path: where, message: `is not a JSON config: ${bytes.error}` });
      return;
    }
    const raw = typeof bytes.value === "object" && bytes.value !== null && !("cniVersion" in bytes.value) ? { ...bytes.value, cniVersion: fallbackVersion } : bytes.value;
    const config = parseNetworkConfig(raw, where);
    if (!config.ok) {
      problems.push(...config.error);
      return;
    }
    const clusterNetwork = index === 0;
    delegates.push(
      defined({
        name: entry.Name || config.value.name,
        ifname: entry.ifnameRequest || (clusterNetwork ? ifname : `net${index}`),
        clusterNetwork,
        element: entry.element || undefined,
        config: config.value,
        capabilityArgs: entry.capabilityArgs ?? multusCapabilityArgs(entry, clusterNetwork),
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

/** `<dir>/<containerId>`, or a problem when the ID cannot name a file (only what libcni accepts for one). */
export function delegateCacheFile(dir: string, containerId: string): Result<string, Problem[]> {
  if (!CNI_NAME_PATTERN.test(containerId)) return fail([{ code: "delegate-cache.container-id", path: dir, message: `container ID "${containerId}" cannot name a cache file` }]);
  return ok(join(dir, containerId));
}

/** Reads `<dir>/<containerId>`: undefined when there is no file for the container. */
export async function readDelegateCache(dir: string, containerId: string, ifname: string, fallbackVersion?: string): Promise<Result<CachedDelegate[] | undefined, Problem[]>> {
  const path = delegateCacheFile(dir, containerId);
  if (!path.ok) return path;
  let text: string;
  try {
    text = await readFile(path.value, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return ok(undefined);
    return fail([{ code: "delegate-cache.read", path: path.value, message: `cannot be read: ${(error as Error).message}` }]);
  }
  return parseDelegateCache(text, path.value, ifname, fallbackVersion);
}

/** Writes `<dir>/<containerId>` atomically, mode 0600; the first delegate must be the cluster network. */
export async function writeDelegateCache(dir: string, containerId: string, delegates: readonly CachedDelegate[]): Promise<Result<string, Problem[]>> {
  const path = delegateCacheFile(dir, containerId);
  if (!path.ok) return path;
  const entries = delegates.map((d) =>
    defined({
      Name: d.name,
      ifnameRequest: d.ifname,
      macRequest: d.macRequest,
      ipRequest: d.ipRequest,
      infinibandGUIDRequest: d.infinibandGuidRequest,
      "default-route": d.defaultRoute,
      deviceID: d.deviceId,
      resourceName: d.resourceName,
      capabilityArgs: d.capabilityArgs,
      element: d.element,
      Bytes: Buffer.from(d.config.bytes).toString("base64"),
    }),
  );
  try {
    await writeFileAtomic(path.value, JSON.stringify(entries));
    return ok(path.value);
  } catch (error) {
    return fail([{ code: "delegate-cache.write", path: path.value, message: `cannot be written: ${(error as Error).message}` }]);
  }
}

/** Removes `<dir>/<containerId>`; nothing when there is none. */
export async function removeDelegateCache(dir: string, containerId: string): Promise<Result<void, Problem[]>> {
  const path = delegateCacheFile(dir, containerId);
  if (!path.ok) return path;
  try {
    await removeFile(path.value);
    return ok(undefined);
  } catch (error) {
    return fail([{ code: "delegate-cache.remove", path: path.value, message: `cannot be removed: ${(error as Error).message}` }]);
  }
}
