// The mutations a pod with secondary networks needs, each a pure edit of a pod copy:
// SR-IOV device requests, the NADs' node selectors, and the optional podnetinfo volume.
import {
  ANNOTATION_INJECTED_RESOURCES,
  ANNOTATION_NODE_SELECTOR,
  ANNOTATION_RESOURCE_CONTAINER,
  type NetworkAttachmentDefinition,
  type Pod,
  annotationsOf,
} from "../api/objects.js";

/** A pod as a plain mutable JSON tree: a draft made by `draftPod`. */
export type MutablePod = Pod & Record<string, unknown>;

type Json = Record<string, unknown>;
const copied = <T>(value: T): T => (value && typeof value === "object" ? (Array.isArray(value) ? [...value] : { ...value }) : value) as T;

/**
 * A copy-on-write draft of a pod for the mutations below: the objects they write to (the pod,
 * metadata and its annotations, spec, nodeSelector, volumes, each container with its resources,
 * requests, limits and volumeMounts) are shallow copies; everything else is shared with the
 * original. The patch is then the diff of the two, and the diff skips shared subtrees at once
 * instead of walking a deep clone of the whole pod. A new mutation must only write to objects
 * copied here (the idempotence and patch tests catch one that does not).
 */
export function draftPod(original: Pod): MutablePod {
  const pod = { ...original } as MutablePod;
  pod.metadata = { ...original.metadata };
  if (original.metadata.annotations) pod.metadata.annotations = { ...original.metadata.annotations };
  const spec = { ...original.spec };
  pod.spec = spec;
  if (spec.nodeSelector) spec.nodeSelector = { ...spec.nodeSelector };
  if (spec.volumes) spec.volumes = [...spec.volumes];
  spec.containers = original.spec.containers.map((container) => {
    const copy = { ...container };
    if (container.resources) {
      const resources = { ...container.resources } as Json;
      // Only keys that exist: an explicit `undefined` would read as a change to the diff.
      if (container.resources.requests) resources.requests = copied(container.resources.requests);
      if (container.resources.limits) resources.limits = copied(container.resources.limits);
      copy.resources = resources as typeof container.resources;
    }
    if (container.volumeMounts) copy.volumeMounts = [...container.volumeMounts];
    return copy;
  });
  return pod;
}

/** A failure names the field it is about (`path`), the message says what is wrong with it. */
export type MutationResult = { ok: true; warnings: string[] } | { ok: false; path: string; message: string };

/** Containers named in a message before "and N more". */
const MAX_CONTAINERS_NAMED = 20;

/** Resource name → count of references to NADs that need it (one per reference, summed). */
export function countResources(
  nads: readonly NetworkAttachmentDefinition[],
  resourceNameKeys: readonly string[],
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const nad of nads) {
    const resource = resourceNameOf(nad, resourceNameKeys);
    if (resource) counts.set(resource, (counts.get(resource) ?? 0) + 1);
  }
  return counts;
}

export function resourceNameOf(nad: NetworkAttachmentDefinition, keys: readonly string[]): string | undefined {
  const annotations = annotationsOf(nad.metadata);
  for (const key of keys) {
    const value = annotations[key]?.trim();
    if (value) return value;
  }
  return undefined;
}

const asCount = (quantity: string | number | undefined): number | undefined => {
  if (quantity === undefined) return 0;
  const text = String(quantity).trim();
  return /^\d+$/.test(text) ? Number(text) : undefined;
};

/**
 * Adds device requests and limits for `counts`. The target is the container named by the pod
 * annotation nadguard.io/resource-container, else the first. A resource the pod already asks for
 * in any container is left alone (network-resources-injector's default) unless `honorExisting`,
 * then the count is added to the target's value. What was injected is recorded on the pod so that
 * a reinvocation or a second pass adds nothing.
 */
export function injectResources(pod: MutablePod, counts: ReadonlyMap<string, number>, honorExisting: boolean): MutationResult {
  if (counts.size === 0) return { ok: true, warnings: [] };
  const annotations = (pod.metadata.annotations ??= {});
  const wanted = annotations[ANNOTATION_RESOURCE_CONTAINER];
  const containers = pod.spec.containers;
  const target = wanted === undefined ? containers[0] : containers.find((c) => c.name === wanted);
  if (!target) {
    const names = containers.slice(0, MAX_CONTAINERS_NAMED).map((c) => c.name).join(", ") || "none";
    const more = containers.length > MAX_CONTAINERS_NAMED ? ` and ${containers.length - MAX_CONTAINERS_NAMED} more` : "";
    return {
      ok: false,
      path: `metadata.annotations["${ANNOTATION_RESOURCE_CONTAINER}"]`,
      message: `names container ${JSON.stringify(wanted)}, which the pod does not have (containers: ${names}${more})`,
    };
  }
  const recorded = readRecord(annotations[ANNOTATION_INJECTED_RESOURCES]);
  const injected: Record<string, number> = { ...recorded };
  const warnings: string[] = [];
  for (const [resource, count] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
    if (recorded[resource] === count) continue; // a previous pass already did this
    const askedFor = containers.some((c) => c.resources?.requests?.[resource] !== undefined || c.resources?.limits?.[resource] !== undefined);
    if (askedFor && !honorExisting) continue;
    const resources = (target.resources ??= {});
    const requests = (resources.requests ??= {});
    const limits = (resources.limits ??= {});
    const current = Math.max(asCount(requests[resource]) ?? NaN, asCount(limits[resource]) ?? NaN);
    if (Number.isNaN(current)) {
      warnings.push(`${resource}: container ${target.name} asks for a non-integer quantity; nothing injected`);
      continue;
    }
    requests[resource] = String(current + count);
    limits[resource] = String(current + count);
    injected[resource] = count;
  }
  const record = JSON.stringify(sortRecord(injected));
  if (record !== JSON.stringify(sortRecord(recorded))) annotations[ANNOTATION_INJECTED_RESOURCES] = record;
  return { ok: true, warnings };
}

/** A device the networks need more of than the pod requests. */
export interface MissingDevice {
  readonly resource: string;
  readonly needed: number;
  /** Summed over the containers; a quantity that is not a whole number counts as none. */
  readonly requested: number;
}

/**
 * The devices `counts` asks for beyond what the pod's containers already request or limit (an
 * extended resource's request equals its limit): what a pod that cannot be mutated any more lacks.
 */
export function missingDevices(pod: Pod, counts: ReadonlyMap<string, number>): MissingDevice[] {
  const missing: MissingDevice[] = [];
  for (const [resource, needed] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
    let requested = 0;
    for (const container of pod.spec.containers) {
      const quantity = container.resources?.limits?.[resource] ?? container.resources?.requests?.[resource];
      requested += asCount(quantity) ?? 0;
    }
    if (requested < needed) missing.push({ resource, needed, requested });
  }
  return missing;
}

function readRecord(value: string | undefined): Record<string, number> {
  if (!value) return {};
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter((e): e is [string, number] => Number.isInteger(e[1])));
  } catch {
    return {};
  }
}

const sortRecord = (record: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));

/**
 * Parses a NAD's `k8s.v1.cni.cncf.io/nodeSelector`: comma-separated `key=value` or bare `key`
 * (a bare key means the label must exist with an empty value, as network-resources-injector reads it).
 */
export function parseNodeSelector(value: string): { ok: true; labels: Map<string, string> } | { ok: false; message: string } {
  const labels = new Map<string, string>();
  for (const raw of value.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    const key = (eq < 0 ? item : item.slice(0, eq)).trim();
    const label = eq < 0 ? "" : item.slice(eq + 1).trim();
    if (key === "") return { ok: false, message: `"${item}" has no label key` };
    labels.set(key, label);
  }
  return { ok: true, labels };
}

const NODE_SELECTOR_PATH = "spec.nodeSelector";

/** Merges every NAD's node selector into spec.nodeSelector; disagreeing values are a conflict. */
export function injectNodeSelectors(pod: MutablePod, nads: readonly NetworkAttachmentDefinition[]): MutationResult {
  const wanted = new Map<string, { value: string; from: string }>();
  const existing = pod.spec.nodeSelector ?? {};
  for (const nad of nads) {
    const annotation = annotationsOf(nad.metadata)[ANNOTATION_NODE_SELECTOR];
    if (annotation === undefined) continue;
    const from = `${nad.metadata.namespace}/${nad.metadata.name}`;
    const parsed = parseNodeSelector(annotation);
    if (!parsed.ok) return { ok: false, path: NODE_SELECTOR_PATH, message: `NetworkAttachmentDefinition ${from}: annotation ${ANNOTATION_NODE_SELECTOR}: ${parsed.message}` };
    for (const [key, value] of parsed.labels) {
      const earlier = wanted.get(key);
      if (earlier && earlier.value !== value) {
        return {
          ok: false,
          path: NODE_SELECTOR_PATH,
          message: `NetworkAttachmentDefinition ${earlier.from} needs ${key}=${earlier.value} but ${from} needs ${key}=${value}; no node can satisfy both`,
        };
      }
      if (key in existing && existing[key] !== value) {
        return {
          ok: false,
          path: NODE_SELECTOR_PATH,
          message: `NetworkAttachmentDefinition ${from} needs ${key}=${value} but the pod's spec.nodeSelector has ${key}=${existing[key]}`,
        };
      }
      wanted.set(key, { value, from });
    }
  }
  if (wanted.size === 0) return { ok: true, warnings: [] };
  const selector = (pod.spec.nodeSelector ??= {});
  for (const [key, { value }] of wanted) selector[key] = value;
  return { ok: true, warnings: [] };
}

export const PODNETINFO_VOLUME = "podnetinfo";
export const PODNETINFO_PATH = "/etc/podnetinfo";

/** Adds the downward-API volume with labels and annotations, mounted read-only in every container, once. */
export function injectDownwardApi(pod: MutablePod): void {
  const volumes = (pod.spec.volumes ??= []);
  if (!volumes.some((v) => v.name === PODNETINFO_VOLUME)) {
    volumes.push({
      name: PODNETINFO_VOLUME,
      downwardAPI: {
        items: [
          { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
          { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
        ],
      },
    });
  }
  for (const container of pod.spec.containers) {
    const mounts = (container.volumeMounts ??= []);
    if (mounts.some((m) => m.name === PODNETINFO_VOLUME || m.mountPath === PODNETINFO_PATH)) continue;
    mounts.push({ name: PODNETINFO_VOLUME, mountPath: PODNETINFO_PATH, readOnly: true });
  }
}
