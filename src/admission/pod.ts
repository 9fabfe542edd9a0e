// The pod decision: checks the networks annotation against the NADs that exist and against who
// may use them, then computes the mutation the pod needs. A pure function of
// (request, snapshot, config); access questions go through env.access (offline RBAC or SAR).
//
// CREATE and UPDATE are judged. The annotations matter after creation too: kubelet re-creates a
// pod's sandbox with the pod's current annotations (node reboot, sandbox death) and Multus then
// attaches what they say, and Multus's dynamic-networks controller attaches and detaches networks
// of a running pod as soon as they change. So an UPDATE that changes either annotation is decided
// as a CREATE of the new value, except that the user making the change and the pod's service
// account must both hold a grant, and that nothing is mutated (a pod's resources cannot change).
import type { AdmissionRequest } from "../api/admission-review.js";
import { formatProblem } from "../api/errors.js";
import {
  ANNOTATION_DEFAULT_NETWORK,
  ANNOTATION_NETWORKS,
  ANNOTATION_RESOURCE_CONTAINER,
  type NetworkAttachmentDefinition,
  type Pod,
  readPod,
} from "../api/objects.js";
import { type NetworkAttachment, type NetworkResolution, resolveNetworks } from "../authz/network-access.js";
import { nadCniInfo } from "../networks/nad-config.js";
import { ALLOW, type AdmissionEnv, type Deadline, type Decision, type Endpoint, type ResolvedAttachment, deny } from "./decision.js";
import { MAX_LISTED_PROBLEMS, type Unlisted, explainProblems, formatCount } from "./denial.js";
import { diff } from "./json-patch.js";
import {
  PODNETINFO_VOLUME,
  countResources,
  draftPod,
  injectDownwardApi,
  injectNodeSelectors,
  injectResources,
  missingDevices,
  resourceNameOf,
} from "./pod-mutations.js";

/** What resolveNetworks answers when it refuses. */
export type NetworkRefusal = Extract<NetworkResolution, { ok: false }>;

/** Creating a pod, or changing the networks of one that exists. */
type Change = "create" | "update";

/**
 * kube-apiserver refuses a pod whose annotations hold more than 256 KiB in all
 * (TotalAnnotationSizeLimitB), but only after the mutating webhooks ran: nadguard refuses larger
 * network annotations before parsing them, so no review parses more than this.
 */
const MAX_ANNOTATIONS_SIZE = 256 * 1024;

/** How a denial names the pod: `pod tenant-a/web`, or `pod tenant-a/web-<generated>` before it has a name. */
export const describePod = (namespace: string, name: string | undefined, generateName: string | undefined): string =>
  `pod ${namespace}/${name ?? `${generateName ?? ""}<generated>`}`;

/** Reads an annotation without parsing the pod, so that pods without networks cost nothing. */
function peekAnnotation(object: unknown, key: string): unknown {
  const annotations = (object as { metadata?: { annotations?: Record<string, unknown> } } | null)?.metadata?.annotations;
  return annotations && typeof annotations === "object" ? annotations[key] : undefined;
}

/** Whether an UPDATE changes either network annotation (added, removed or edited). */
function networksChanged(request: AdmissionRequest): boolean {
  return [ANNOTATION_NETWORKS, ANNOTATION_DEFAULT_NETWORK].some(
    (key) => peekAnnotation(request.object, key) !== peekAnnotation(request.oldObject, key),
  );
}

/** When `deadline` aborts, the access reviews still pending are aborted and admitPod rejects. */
export async function admitPod(request: AdmissionRequest, env: AdmissionEnv, endpoint: Endpoint, deadline?: Deadline): Promise<Decision> {
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return ALLOW;
  const networks = peekAnnotation(request.object, ANNOTATION_NETWORKS);
  const defaultNetwork = peekAnnotation(request.object, ANNOTATION_DEFAULT_NETWORK);
  if (networks === undefined && defaultNetwork === undefined) return ALLOW;
  // Whatever else an update changes (labels, other annotations, the image) is none of nadguard's
  // business; the webhook configurations' matchConditions only save this call.
  if (request.operation === "UPDATE" && !networksChanged(request)) return ALLOW;
  const change: Change = request.operation === "UPDATE" ? "update" : "create";

  const parsed = readPod(request.object);
  if (!parsed.success) {
    const meta = (request.object as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
    const name = request.name || (typeof meta?.name === "string" ? meta.name : undefined);
    const who = describePod(request.namespace || (typeof meta?.namespace === "string" ? meta.namespace : "default"), name, undefined);
    const issues = parsed.error.issues;
    return deny("invalid-object", explainProblems(`${who}: the pod cannot be read`, issues, (i) => `${i.path.join(".") || "(object)"}: ${i.message}`));
  }
  const pod = parsed.data;
  const namespace = request.namespace || pod.metadata.namespace || "default";
  const who = describePod(namespace, pod.metadata.name, pod.metadata.generateName);

  const oversized = oversizedAnnotations(who, networks, defaultNetwork);
  if (oversized) return oversized;

  const resolved = await resolveNetworks(
    {
      namespace,
      serviceAccountName: pod.spec.serviceAccountName || pod.spec.serviceAccount,
      requester: { username: request.userInfo.username, groups: request.userInfo.groups ?? [] },
      grantee: change === "update" ? "both" : "either",
      networks,
      defaultNetwork,
    },
    {
      snapshot: env.snapshot,
      authorization: env.config.authorization,
      multusNamespace: env.config.multus.namespace,
      reviewer: env.access,
      // Read only when an access review is asked (reading the review's signal allocates).
      get signal() {
        return deadline?.signal;
      },
      maxProblems: MAX_LISTED_PROBLEMS,
    },
  );
  if (!resolved.ok) return networkDenial(who, resolved);
  if (change === "update") return judgeUpdate(pod, resolved.attachments, env, who);
  return mutate(request.object, resolved.attachments, env, endpoint, who);
}

/**
 * The denial of network annotations larger than kube-apiserver accepts, refused before they are
 * parsed; undefined when they fit. Shared with the node daemon (src/cli/node.ts).
 */
export function oversizedAnnotations(who: string, networks: unknown, defaultNetwork: unknown): Decision | undefined {
  const size = (typeof networks === "string" ? networks.length : 0) + (typeof defaultNetwork === "string" ? defaultNetwork.length : 0);
  if (size <= MAX_ANNOTATIONS_SIZE) return undefined;
  return deny(
    "invalid-network-selection",
    `${who}: metadata.annotations: the network annotations hold ${formatCount(size)} characters; kube-apiserver ` +
      `accepts at most ${formatCount(MAX_ANNOTATIONS_SIZE)} bytes of annotations per object`,
  );
}

/**
 * The denial of a pod whose networks `resolveNetworks` refused, worded for people: the webhook's
 * and `nadguard admit`'s, and the node daemon's word for word (src/cli/node.ts).
 */
export function networkDenial(who: string, resolved: NetworkRefusal): Decision {
  const refused = resolved.refused.map(({ interfaceName, network, access, notFound, missing }) => ({ interfaceName, network, access, notFound, missing }));
  if (resolved.reason === "invalid-network-selection") {
    const unlisted: Unlisted[] = [{ count: resolved.unlisted, one: "problem", many: "problems" }];
    return deny(resolved.reason, explainProblems(who, resolved.problems, formatProblem, { unlisted }));
  }
  const unlisted: Unlisted[] = [
    { count: resolved.unlisted, one: "network not checked: the pod is denied already", many: "networks not checked: the pod is denied already" },
  ];
  return deny(resolved.reason, explainProblems(who, resolved.problems, formatProblem, { unlisted }), { refused });
}

function mutate(original: unknown, resolved: readonly NetworkAttachment[], env: AdmissionEnv, endpoint: Endpoint, who: string): Decision {
  const { config } = env;
  const nads = resolved.map((attachment) => attachment.nad);
  const pod = draftPod(original as Pod);
  const warnings: string[] = [];
  const resources = injectResources(pod, countResources(nads, config.resources.resourceNameKeys), config.resources.honorExistingResources);
  if (!resources.ok) return deny("resource-container-missing", `${who}: ${resources.path}: ${resources.message}`);
  warnings.push(...resources.warnings);
  if (config.injection.nodeSelector) {
    const selectors = injectNodeSelectors(pod, nads);
    if (!selectors.ok) return deny("node-selector-conflict", `${who}: ${selectors.path}: ${selectors.message}`);
  }
  if (config.injection.downwardApi) injectDownwardApi(pod);

  const attachments = resolved.map((attachment) => describeAttachment(attachment, env));
  warnings.push(...softWarnings(attachments, nads, env));
  const patch = diff(original, pod);
  if (endpoint === "validate") {
    // The mutating webhook should already have done this; say so when it did not run.
    if (patch.length > 0) warnings.push("the pod lacks mutations nadguard would make (was the mutating webhook skipped?)");
    return { allowed: true, patch: [], warnings, attachments };
  }
  return { allowed: true, patch, warnings, attachments };
}

const RECREATE = "delete the pod and create it again with these networks (nadguard then adds what they need)";

/**
 * An update of a pod's networks, already authorized: allowed without a patch when the pod has what
 * the new networks need (devices, node selector), else denied: kube-apiserver refuses a change of a
 * pod's container resources, and a scheduled pod does not move to a node the networks need.
 */
function judgeUpdate(pod: Pod, resolved: readonly NetworkAttachment[], env: AdmissionEnv, who: string): Decision {
  const { config } = env;
  const nads = resolved.map((attachment) => attachment.nad);
  const missing = missingDevices(pod, countResources(nads, config.resources.resourceNameKeys));
  if (missing.length > 0) {
    const wanted = pod.metadata.annotations?.[ANNOTATION_RESOURCE_CONTAINER];
    const index = wanted === undefined ? 0 : pod.spec.containers.findIndex((c) => c.name === wanted);
    const path = index >= 0 ? `spec.containers[${index}].resources` : "spec.containers";
    const lacking = missing.map((m) => `${m.needed} ${m.resource} (the pod requests ${m.requested})`).join(", ");
    return deny("recreate-required", `${who}: ${path}: the new networks need ${lacking}, and a pod's resources cannot change once it exists; ${RECREATE}`);
  }
  if (config.injection.nodeSelector) {
    const draft = draftPod(pod);
    const selectors = injectNodeSelectors(draft, nads);
    if (!selectors.ok) return deny("node-selector-conflict", `${who}: ${selectors.path}: ${selectors.message}`);
    const have = pod.spec.nodeSelector ?? {};
    const lacking = Object.entries(draft.spec.nodeSelector ?? {}).filter(([key, value]) => have[key] !== value);
    if (lacking.length > 0) {
      const labels = lacking.map(([key, value]) => `${key}=${value}`).join(", ");
      return deny(
        "recreate-required",
        `${who}: spec.nodeSelector: the new networks need node labels ${labels}, which spec.nodeSelector lacks, and a ` +
          `scheduled pod does not move to another node; ${RECREATE}`,
      );
    }
  }
  const attachments = resolved.map((attachment) => describeAttachment(attachment, env));
  const warnings = softWarnings(attachments, nads, env);
  if (config.injection.downwardApi && !(pod.spec.volumes ?? []).some((volume) => volume.name === PODNETINFO_VOLUME)) {
    warnings.push(`the pod has no ${PODNETINFO_VOLUME} volume (it gets one when created with networks)`);
  }
  return { allowed: true, patch: [], warnings, attachments };
}

function describeAttachment({ interfaceName, network, nad, access }: NetworkAttachment, env: AdmissionEnv): ResolvedAttachment {
  const cniType = nadCniInfo(nad).types[0];
  const resourceName = resourceNameOf(nad, env.config.resources.resourceNameKeys);
  return {
    interfaceName,
    network,
    ...(cniType !== undefined && { cniType }),
    ...(resourceName !== undefined && { resourceName }),
    access,
  };
}

function softWarnings(attachments: readonly ResolvedAttachment[], nads: readonly NetworkAttachmentDefinition[], env: AdmissionEnv): string[] {
  const warnings: string[] = [];
  const enforced = new Set(env.config.enforcement.networkPlugins);
  const seen = new Set<string>();
  attachments.forEach((attachment, i) => {
    if (seen.has(attachment.network)) return;
    seen.add(attachment.network);
    const info = nadCniInfo(nads[i]!);
    if (info.problem) warnings.push(`${attachment.network}: ${info.problem}`);
    else if (attachment.cniType && !enforced.has(attachment.cniType)) {
      warnings.push(`${attachment.interfaceName} (${attachment.network}): CNI type ${attachment.cniType} is not enforced by MultiNetworkPolicy`);
    }
  });
  return warnings;
}
