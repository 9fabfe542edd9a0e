// The `k8s.v1.cni.cncf.io/network-status` annotation that Multus writes after CNI ADD
// (NPWG multi-net spec v1.3, section 4.1.2): per attachment its NAD, interface, IPs, MAC.
import { z } from "zod";
import { type Problem, type Result, fail, ok, problemsFromZod } from "../api/errors.js";
import { ANNOTATION_NETWORK_STATUS } from "../api/objects.js";

const NetworkStatusEntrySchema = z.looseObject({
  name: z.string().min(1),
  interface: z.string().optional(),
  ips: z.array(z.string()).nullish(),
  mac: z.string().optional(),
  default: z.boolean().optional(),
  dns: z.unknown().optional(),
  "default-route": z.array(z.string()).nullish(),
  "device-info": z.unknown().optional(),
});

export interface NetworkStatusEntry {
  /** `namespace/name` of the NAD, or the cluster network's name for the default entry. */
  readonly name: string;
  readonly interface?: string;
  readonly ips: readonly string[];
  readonly mac?: string;
  readonly default: boolean;
}

const PATH = `metadata.annotations["${ANNOTATION_NETWORK_STATUS}"]`;

/** Parses the annotation's JSON list; every problem names the entry it is in. */
export function parseNetworkStatus(value: string): Result<NetworkStatusEntry[], Problem[]> {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (error) {
    return fail([{ code: "network-status.json", path: PATH, message: `is not valid JSON: ${(error as Error).message}` }]);
  }
  const parsed = z.array(NetworkStatusEntrySchema).safeParse(json);
  if (!parsed.success) return fail(problemsFromZod(parsed.error, PATH, "network-status.schema"));
  return ok(
    parsed.data.map((entry) => ({
      name: entry.name,
      ...(entry.interface !== undefined && { interface: entry.interface }),
      ips: entry.ips ?? [],
      ...(entry.mac !== undefined && { mac: entry.mac }),
      default: entry.default ?? false,
    })),
  );
}

/**
 * Where a state directory keeps the network-status the node daemon recorded for a pod
 * (README, state directory): `<state>/.nadguard/network-status/<namespace>/<pod>.json`, the annotation's JSON list,
 * overlaid on the pod by every reader of the state directory, as the API server keeps a pod's status.
 */
export const NADGUARD_STATE_DIR = ".nadguard";
export const NETWORK_STATUS_DIR = `${NADGUARD_STATE_DIR}/network-status`;

export function networkStatusFile(stateDir: string, namespace: string, name: string): string {
  return `${stateDir.replace(/\/+$/, "")}/${NETWORK_STATUS_DIR}/${namespace}/${name}.json`;
}
