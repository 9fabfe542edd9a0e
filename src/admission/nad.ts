// The NetworkAttachmentDefinition decision: a NAD whose spec.config the CNI plugins would refuse
// is denied at `kubectl apply`, not discovered later in a pod stuck in ContainerCreating. A pure
// function of (request, snapshot, config).
//
// - CREATE: name, annotations and spec.config are checked (src/networks/cni-config.ts).
// - UPDATE: only what changes is judged, so that an old NAD that predates a rule can still get
//   its labels or finalizers edited; with `nads.protectInUse`, a change of spec.config is refused
//   while pods use the NAD.
// - DELETE: refused while pods use the NAD, with `nads.protectInUse` only.
//
// Both endpoints give the same answer (`nadguard admit` asks as "mutate"); there is nothing to
// mutate, so the webhook configurations send NADs to /validate only.
import type { AdmissionRequest } from "../api/admission-review.js";
import { type Problem, problemsFromZod } from "../api/errors.js";
import {
  ANNOTATION_NETWORK_STATUS,
  ANNOTATION_NETWORKS,
  ANNOTATION_NODE_SELECTOR,
  NetworkAttachmentDefinition,
  annotationsOf,
  objectKey,
} from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { type PluginIpam, checkCniConfig } from "../networks/cni-config.js";
import { rangesOverlap } from "../networks/cni-ipam.js";
import { isDns1123Label, isLabelValue, isQualifiedName, parseNetworkSelections, parseNetworkStatus } from "../networks/index.js";
import { ALLOW, type AdmissionEnv, type Decision, type Endpoint, clampWarning, deny } from "./decision.js";
import { parseNodeSelector, resourceNameOf } from "./pod-mutations.js";
import { canonicalJson } from "./canonical-json.js";
import { explainObjectProblems } from "./denial.js";

/** How many pods a nad-in-use denial names before it counts the rest. */
export const MAX_PODS_NAMED = 10;
/** How many overlap warnings one NAD gets before the rest are counted. */
const MAX_OVERLAP_WARNINGS = 5;

const annotationPath = (key: string): string => `metadata.annotations["${key}"]`;

export function admitNad(request: AdmissionRequest, env: AdmissionEnv, _endpoint: Endpoint): Decision {
  switch (request.operation) {
    case "CREATE":
    case "UPDATE":
      return admitWrite(request, env);
    case "DELETE":
      return admitDelete(request, env);
    default:
      return ALLOW;
  }
}

function admitDelete(request: AdmissionRequest, env: AdmissionEnv): Decision {
  if (!env.config.nads.protectInUse) return ALLOW;
  const old = NetworkAttachmentDefinition.safeParse(request.oldObject);
  const namespace = request.namespace || (old.success ? old.data.metadata.namespace : undefined) || "default";
  const name = request.name || (old.success ? old.data.metadata.name : undefined);
  if (!name) return ALLOW;
  const users = podsUsing(env.snapshot, objectKey(namespace, name));
  if (users.length === 0) return ALLOW;
  return deny("nad-in-use", `NetworkAttachmentDefinition ${objectKey(namespace, name)}: cannot be deleted while pods use it (nads.protectInUse): ${listPods(users)}`);
}

function admitWrite(request: AdmissionRequest, env: AdmissionEnv): Decision {
  const parsed = NetworkAttachmentDefinition.safeParse(request.object);
  const metadata = (request.object as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  const namespace = request.namespace || (typeof metadata?.namespace === "string" ? metadata.namespace : "") || "default";
  const rawName = request.name || (typeof metadata?.name === "string" ? metadata.name : "");
  if (!parsed.success) {
    return deny("invalid-nad", explainObjectProblems(`NetworkAttachmentDefinition ${objectKey(namespace, rawName || "<unnamed>")}`, problemsFromZod(parsed.error, "", "nad.schema")));
  }
  const nad = parsed.data;
  const name = nad.metadata.name || request.name || "";
  const who = `NetworkAttachmentDefinition ${objectKey(namespace, name || `${nad.metadata.generateName ?? ""}<generated>`)}`;
  const oldParsed = request.operation === "UPDATE" ? NetworkAttachmentDefinition.safeParse(request.oldObject) : undefined;
  const old = oldParsed?.success ? oldParsed.data : undefined;
  if (old && (nad.metadata as { deletionTimestamp?: unknown }).deletionTimestamp) return ALLOW; // finalizers being removed

  const configChanged = !old || !sameConfig(old.spec?.config, nad.spec?.config);
  if (old && configChanged && env.config.nads.protectInUse) {
    const users = podsUsing(env.snapshot, objectKey(namespace, name));
    if (users.length > 0) {
      return deny("nad-in-use", `${who}: spec.config cannot change while pods use it (nads.protectInUse): ${listPods(users)}`);
    }
  }

  const problems: Problem[] = [];
  const warnings: string[] = [];
  if (!old) problems.push(...checkName(nad));
  problems.push(...checkAnnotations(nad, old, env));
  if (configChanged) {
    const hasResourceName = resourceNameOf(nad, env.config.resources.resourceNameKeys) !== undefined;
    const check = checkCniConfig(nad.spec?.config, { hasResourceName });
    problems.push(...check.problems);
    warnings.push(...check.warnings);
    if (check.problems.length === 0) warnings.push(...overlapWarnings(check.ipams, namespace, name, env));
  }
  const clamped = warnings.map(clampWarning);
  if (problems.length > 0) return deny("invalid-nad", explainObjectProblems(who, problems), { warnings: clamped });
  return { ...ALLOW, warnings: clamped };
}


/** Equal configs, or configs that differ only in formatting. */
function sameConfig(a: string | undefined, b: string | undefined): boolean {
  if ((a ?? "").trim() === (b ?? "").trim()) return true;
  try {
    return canonicalJson(JSON.parse(a ?? "")) === canonicalJson(JSON.parse(b ?? ""));
  } catch {
    return false;
  }
}

/**
 * A DNS-1123 label, not a subdomain: a pod selects a NAD by `name` or `namespace/name` in its
 * networks annotation, where Multus and the multi-net spec take labels, so a NAD named with a dot
 * could never be attached.
 */
function checkName(nad: NetworkAttachmentDefinition): Problem[] {
  const { name, generateName } = nad.metadata;
  if (name) {
    if (isDns1123Label(name)) return [];
    return [{ code: "nad.bad-name", path: "metadata.name", message: `"${name}" is not a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit), so no pod could select it` }];
  }
  // The API server appends 5 characters to generateName.
  if (generateName && generateName.length <= 58 && isDns1123Label(`${generateName}x`)) return [];
  if (generateName) {
    return [{ code: "nad.bad-name", path: "metadata.generateName", message: `"${generateName}" does not start a DNS-1123 label (at most 58 lower-case letters, digits and '-', starting with a letter or digit)` }];
  }
  return [{ code: "nad.bad-name", path: "metadata.name", message: "is missing" }];
}

/** Annotations that changed (all of them on CREATE). */
function checkAnnotations(nad: NetworkAttachmentDefinition, old: NetworkAttachmentDefinition | undefined, env: AdmissionEnv): Problem[] {
  const annotations = annotationsOf(nad.metadata);
  const before = old ? annotationsOf(old.metadata) : {};
  const changed = (key: string): boolean => annotations[key] !== undefined && (!old || before[key] !== annotations[key]);
  const problems: Problem[] = [];
  for (const key of new Set(env.config.resources.resourceNameKeys)) {
    if (!changed(key)) continue;
    const value = annotations[key]!.trim();
    const problem = resourceNameProblem(value);
    if (problem) problems.push({ code: "nad.bad-resource-name", path: annotationPath(key), message: problem });
  }
  if (changed(ANNOTATION_NODE_SELECTOR)) problems.push(...nodeSelectorProblems(annotations[ANNOTATION_NODE_SELECTOR]!));
  return problems;
}

/** An extended resource name: `domain/name`, outside the kubernetes.io domains (which name native resources). */
function resourceNameProblem(value: string): string | undefined {
  if (value === "") return undefined; // read as no resource
  const example = "use domain/name, e.g. intel.com/sriov_netdevice";
  if (!value.includes("/") || !isQualifiedName(value)) return `"${value}" is not a qualified resource name; ${example}`;
  const domain = value.slice(0, value.indexOf("/"));
  if (domain === "kubernetes.io" || domain.endsWith(".kubernetes.io")) {
    return `"${value}" is in the reserved kubernetes.io domain; device-plugin resources need their own domain, e.g. intel.com/sriov_netdevice`;
  }
  return undefined;
}

function nodeSelectorProblems(value: string): Problem[] {
  const path = annotationPath(ANNOTATION_NODE_SELECTOR);
  const parsed = parseNodeSelector(value);
  if (!parsed.ok) return [{ code: "nad.bad-node-selector", path, message: `${parsed.message}; write key=value pairs separated by commas` }];
  const problems: Problem[] = [];
  for (const [key, label] of parsed.labels) {
    if (!isQualifiedName(key)) {
      problems.push({ code: "nad.bad-node-selector", path, message: `"${key}" is not a label key (optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.')` });
    } else if (!isLabelValue(label)) {
      problems.push({ code: "nad.bad-node-selector", path, message: `"${label}" (for ${key}) is not a label value (at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)` });
    }
  }
  return problems;
}

// ---- overlaps with the other NADs of the namespace --------------------------------------------

const ipamCache = new WeakMap<NetworkAttachmentDefinition, readonly PluginIpam[]>();

function ipamsOf(nad: NetworkAttachmentDefinition): readonly PluginIpam[] {
  let ipams = ipamCache.get(nad);
  if (!ipams) {
    ipams = checkCniConfig(nad.spec?.config).ipams;
    ipamCache.set(nad, ipams);
  }
  return ipams;
}

/**
 * Each of this NAD's ranges against the other NADs' ranges in its namespace. Two whereabouts
 * ranges with overlap protection (enable_overlapping_ranges, its default) never hand out the
 * same address, so they are not reported.
 */
function overlapWarnings(own: readonly PluginIpam[], namespace: string, name: string, env: AdmissionEnv): string[] {
  if (own.every((ipam) => ipam.ranges.length === 0)) return [];
  const found: string[] = [];
  const names = env.snapshot.nadNamesByNamespace.get(namespace) ?? [];
  for (const otherName of names) {
    if (otherName === name) continue;
    const other = env.snapshot.nads.get(objectKey(namespace, otherName));
    if (!other) continue;
    for (const mine of own) {
      for (const theirs of ipamsOf(other)) {
        if (mine.clusterWideUnique && theirs.clusterWideUnique) continue;
        for (const a of mine.ranges) {
          const b = theirs.ranges.find((range) => rangesOverlap(a, range));
          if (b) found.push(`IPAM range ${a.text} overlaps NAD ${otherName} (${b.text})`);
        }
      }
    }
  }
  const unique = [...new Set(found)];
  if (unique.length <= MAX_OVERLAP_WARNINGS) return unique;
  return [...unique.slice(0, MAX_OVERLAP_WARNINGS), `and ${unique.length - MAX_OVERLAP_WARNINGS} more IPAM range overlaps with other NADs`];
}

// ---- pods that use a NAD ----------------------------------------------------------------------

/**
 * Pods of the snapshot attached to `key` (`namespace/name`): named in their network-status (what
 * Multus attached) or in their networks annotation (what they asked for). Finished pods
 * (Succeeded, Failed) hold no interface and are left out. Sorted.
 */
export function podsUsing(snapshot: Snapshot, key: string): string[] {
  const users: string[] = [];
  for (const [podKey, pod] of snapshot.pods) {
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") continue;
    const annotations = annotationsOf(pod.metadata);
    const namespace = pod.metadata.namespace ?? podKey.slice(0, podKey.indexOf("/"));
    const status = annotations[ANNOTATION_NETWORK_STATUS];
    const networks = annotations[ANNOTATION_NETWORKS];
    const inStatus = (): boolean => {
      if (status === undefined) return false;
      const entries = parseNetworkStatus(status);
      return entries.ok && entries.value.some((entry) => entry.name === key);
    };
    const inSelection = (): boolean => {
      if (networks === undefined) return false;
      const attachments = parseNetworkSelections(networks, namespace);
      return attachments.ok && attachments.value.some((attachment) => attachment.key === key);
    };
    if (inStatus() || inSelection()) users.push(podKey);
  }
  return users.sort();
}

function listPods(pods: readonly string[]): string {
  const shown = pods.slice(0, MAX_PODS_NAMED).join(", ");
  return pods.length > MAX_PODS_NAMED ? `${shown} and ${pods.length - MAX_PODS_NAMED} more` : shown;
}
