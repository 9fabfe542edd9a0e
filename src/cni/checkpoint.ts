// The kubelet's device-plugin checkpoint (`/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint`):
// which devices of which resource (SR-IOV VFs, `intel.com/sriov_netdevice`) the kubelet gave each
// container of each pod. A delegate whose NAD names a resourceName gets its deviceID from here, as
// Multus does without the PodResources socket (multus-cni pkg/checkpoint): the pod's IDs of that
// resource across all its containers, sorted, the n-th delegate of the resource taking the n-th ID.
// `DeviceIDs` is `{"<NUMA node>": [ids]}` since Kubernetes 1.20 and a plain list before; both are read.
// The file's `Checksum` is not checked: the kubelet computes it over Go's in-memory layout.
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { type Problem, type Result, atPlace, fail, ok, problemsFromZod } from "../api/errors.js";
import { decodeJson } from "./json.js";

export const DEFAULT_DEVICE_CHECKPOINT = "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint";

export interface PodDeviceEntry {
  readonly podUid: string;
  readonly containerName: string;
  readonly resourceName: string;
  /** Every device ID of the entry, NUMA nodes flattened, in the order written. */
  readonly deviceIds: readonly string[];
}

const EntrySchema = z.object({
  PodUID: z.string(),
  ContainerName: z.string(),
  ResourceName: z.string(),
  DeviceIDs: z.union([z.record(z.string(), z.array(z.string()).nullable()), z.array(z.string())], { message: 'must be {"<NUMA node>": [device IDs]} or a list of device IDs' }).nullish(),
});

const CheckpointSchema = z.object({
  Data: z.object({ PodDeviceEntries: z.array(EntrySchema).nullish() }, { message: "must be an object with PodDeviceEntries" }),
});

/** Reads the checkpoint's text; problems name `path` and the entry, e.g. `…: Data.PodDeviceEntries[2].DeviceIDs`. */
export function parseDeviceCheckpoint(text: string, path: string): Result<PodDeviceEntry[], Problem[]> {
  const decoded = decodeJson(text);
  if (!decoded.ok) return fail([{ code: "checkpoint.json", path, message: `is not valid JSON: ${decoded.error}` }]);
  const parsed = CheckpointSchema.safeParse(decoded.value);
  if (!parsed.success) return fail(atPlace(problemsFromZod(parsed.error, "", "checkpoint.schema"), path));
  return ok(
    (parsed.data.Data.PodDeviceEntries ?? []).map((entry) => ({
      podUid: entry.PodUID,
      containerName: entry.ContainerName,
      resourceName: entry.ResourceName,
      deviceIds: Array.isArray(entry.DeviceIDs) ? entry.DeviceIDs : Object.values(entry.DeviceIDs ?? {}).flatMap((ids) => ids ?? []),
    })),
  );
}

/**
 * Reads the checkpoint file. A node where no device plugin ever registered has none: that is no
 * entries, not an error. A file that cannot be read or parsed is an error naming it.
 */
export async function readDeviceCheckpoint(path: string = DEFAULT_DEVICE_CHECKPOINT): Promise<Result<PodDeviceEntry[], Problem[]>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return ok([]);
    return fail([{ code: "checkpoint.read", path, message: `cannot be read: ${(error as Error).message}` }]);
  }
  return parseDeviceCheckpoint(text, path);
}

/** A pod's devices by resource name: the IDs of all its containers, sorted, without repeats. */
export function podDevices(entries: readonly PodDeviceEntry[], podUid: string): Map<string, string[]> {
  const byResource = new Map<string, Set<string>>();
  for (const entry of entries) {
    if (entry.podUid !== podUid) continue;
    const ids = byResource.get(entry.resourceName) ?? new Set<string>();
    for (const id of entry.deviceIds) ids.add(id);
    byResource.set(entry.resourceName, ids);
  }
  return new Map([...byResource].map(([resource, ids]) => [resource, [...ids].sort()]));
}

/**
 * Hands out a pod's devices to its delegates in order: each call for a resource returns its next
 * ID, undefined once they are used up (the pod asked for fewer devices than it has delegates of
 * that resource, which admission's injection prevents).
 */
export function deviceAssigner(devices: ReadonlyMap<string, readonly string[]>): (resourceName: string) => string | undefined {
  const used = new Map<string, number>();
  return (resourceName) => {
    const index = used.get(resourceName) ?? 0;
    const id = devices.get(resourceName)?.[index];
    if (id !== undefined) used.set(resourceName, index + 1);
    return id;
  };
}
