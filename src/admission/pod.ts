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
import { formatProblem, type Problem } from "../api/errors.js";
import {
  ANNOTATION_DEFAULT_NETWORK,
  ANNOTATION_NETWORKS,
  ANNOTATION_RESOURCE_CONTAINER,
  type NetworkAttachmentDefinition,
  Pod,
  objectKey,
} from "../api/objects.js";
import { authorizeNadUse, type NadAccessDecision } from "../authz/nad-access.js";
import { missingObjectNote } from "../cluster/state-faults.js";
import { nadCniInfo } from "../networks/nad-config.js";
import {
  DEFAULT_NETWORK_ANNOTATION_PATH,
  NETWORKS_ANNOTATION_PATH,
  describeSelection,
  parseDefaultNetwork,
  parseNetworkSelections,
  type NetworkSelection,
} from "../networks/index.js";
import { ALLOW, type AdmissionEnv, type Decision, type ResolvedAttachment, deny } from "./decision.js";
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

export type Endpoint = "mutate" | "validate";

/** Creating a pod, or changing the networks of one that exists. */
type Change = "create" | "update";

/** One reference to a NAD, from the networks annotation or the default-network annotation. */
interface Reference {
  readonly selection: NetworkSelection;
  readonly interfaceName: string;
  /** How the reference reads in messages, e.g. `element 2 ("tenant-b/sriov")`. */
  readonly label: string;
  /** A name without namespace in the default-network annotation: looked up in Multus's namespace. */
  readonly bareDefaultNetwork: boolean;
}

/**
 * kube-apiserver refuses a pod whose annotations hold more than 256 KiB in all
 * (TotalAnnotationSizeLimitB), but only after the mutating webhooks ran: nadguard refuses larger
 * network annotations before parsing them, so no review parses more than this.
 */
const MAX_ANNOTATIONS_SIZE = 256 * 1024;

const describePod = (namespace: string, name: string | undefined, generateName: string | undefined): string =>
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

export async function admitPod(request: AdmissionRequest, env: AdmissionEnv, endpoint: Endpoint): Promise<Decision> {
  if (request.operation !== "CREATE" && request.operation !== "UPDATE") return ALLOW;
  const networks = peekAnnotation(request.object, ANNOTATION_NETWORKS);
  const defaultNetwork = peekAnnotation(request.object, ANNOTATION_DEFAULT_NETWORK);
  if (networks === undefined && defaultNetwork === undefined) return ALLOW;
  // Whatever else an update changes (labels, other annotations, the image) is none of nadguard's
  // business; the webhook configurations' matchConditions only save this call.
  if (request.operation === "UPDATE" && !networksChanged(request)) return ALLOW;
  const change: Change = request.operation === "UPDATE" ? "update" : "create";

  const parsed = Pod.safeParse(request.object);
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

  const size = (typeof networks === "string" ? networks.length : 0) + (typeof defaultNetwork === "string" ? defaultNetwork.length : 0);
  if (size > MAX_ANNOTATIONS_SIZE) {
    return deny(
      "invalid-network-selection",
      `${who}: metadata.annotations: the network annotations hold ${formatCount(size)} characters; kube-apiserver ` +
        `accepts at most ${formatCount(MAX_ANNOTATIONS_SIZE)} bytes of annotations per object`,
    );
  }

  const references = parseReferences(networks, defaultNetwork, namespace, env.config.multus.namespace);
  if (!references.ok) {
    const unlisted: Unlisted[] = [{ count: references.omitted, one: "problem", many: "problems" }];
    return deny("invalid-network-selection", explainProblems(who, references.problems, formatProblem, { unlisted }));
  }

  const resolved = await resolveReferences(references.value, namespace, pod, request, env, change);
  if (resolved.problems.length > 0) {
    const reason = resolved.forbidden ? "network-forbidden" : "network-not-found";
    const unlisted: Unlisted[] = [
      { count: resolved.unchecked, one: "network not checked: the pod is denied already", many: "networks not checked: the pod is denied already" },
    ];
    return deny(reason, explainProblems(who, resolved.problems, (line) => line, { unlisted }));
  }
  if (change === "update") return judgeUpdate(pod, resolved.nads, references.value, env, who);
  return mutate(request.object, resolved.nads, references.value, env, endpoint, who);
}

type ReferencesResult = { ok: true; value: Reference[] } | { ok: false; problems: Problem[]; omitted: number };

/**
 * A bare name in the default-network annotation resolves in Multus's own namespace (Multus's
 * tryLoadK8sPodDefaultNetwork uses multusNamespace), not the pod's; the networks annotation's do.
 */
function parseReferences(networks: unknown, defaultNetwork: unknown, namespace: string, multusNamespace: string): ReferencesResult {
  const problems: Problem[] = [];
  let omitted = 0;
  const references: Reference[] = [];
  if (defaultNetwork !== undefined) {
    if (typeof defaultNetwork !== "string") {
      problems.push({ code: "selection.not-string", path: DEFAULT_NETWORK_ANNOTATION_PATH, message: "must be a string" });
    } else {
      const result = parseDefaultNetwork(defaultNetwork, multusNamespace);
      if (result.ok) {
        references.push({
          selection: result.value,
          interfaceName: "eth0",
          label: `annotation ${ANNOTATION_DEFAULT_NETWORK}`,
          bareDefaultNetwork: !result.value.namespaceExplicit,
        });
      } else {
        problems.push(...result.error);
        omitted += result.omittedProblems ?? 0;
      }
    }
  }
  if (networks !== undefined) {
    if (typeof networks !== "string") {
      problems.push({ code: "selection.not-string", path: NETWORKS_ANNOTATION_PATH, message: "must be a string" });
    } else {
      const result = parseNetworkSelections(networks, namespace);
      if (result.ok) {
        for (const attachment of result.value) {
          references.push({
            selection: attachment.selection,
            interfaceName: attachment.interfaceName,
            label: describeSelection(attachment.selection),
            bareDefaultNetwork: false,
          });
        }
      } else {
        problems.push(...result.error);
        omitted += result.omittedProblems ?? 0;
      }
    }
  }
  return problems.length > 0 ? { ok: false, problems, omitted } : { ok: true, value: references };
}

interface Resolution {
  /** One NAD per reference, in reference order (the same NAD twice appears twice). */
  readonly nads: NetworkAttachmentDefinition[];
  readonly access: Map<string, NadAccessDecision>;
  /** At most MAX_LISTED_PROBLEMS, one per distinct NAD. */
  readonly problems: string[];
  readonly forbidden: boolean;
  /** Distinct NADs left unchecked once MAX_LISTED_PROBLEMS problems made the verdict. */
  readonly unchecked: number;
}

/**
 * Authorizes, then looks up, each distinct NAD. Authorization comes first so that a tenant who may
 * not use another namespace's NADs learns nothing about which of them exist. Once
 * MAX_LISTED_PROBLEMS problems are found the pod is denied whatever the rest says: the remaining
 * NADs are counted, not authorized (each could cost two SubjectAccessReviews).
 */
async function resolveReferences(
  references: readonly Reference[],
  namespace: string,
  pod: Pod,
  request: AdmissionRequest,
  env: AdmissionEnv,
  change: Change,
): Promise<Resolution> {
  const { snapshot, config } = env;
  const serviceAccountName = pod.spec.serviceAccountName || pod.spec.serviceAccount || "default";
  const access = new Map<string, NadAccessDecision>();
  const problems: string[] = [];
  const nads: NetworkAttachmentDefinition[] = [];
  let forbidden = false;
  const reported = new Set<string>();
  for (let i = 0; i < references.length; i++) {
    if (problems.length === MAX_LISTED_PROBLEMS) {
      return { nads, access, problems, forbidden, unchecked: countUnchecked(references, i, access) };
    }
    const reference = references[i]!;
    const { namespace: nadNamespace, name } = reference.selection;
    const key = objectKey(nadNamespace, name);
    let decision = access.get(key);
    if (!decision) {
      decision = await authorizeNadUse(
        {
          podNamespace: namespace,
          nadNamespace,
          nadName: name,
          requester: { username: request.userInfo.username, groups: request.userInfo.groups ?? [] },
          serviceAccountName,
          grantee: change === "update" ? "both" : "either",
        },
        config.authorization,
        env.access,
      );
      access.set(key, decision);
    }
    if (reported.has(key)) continue;
    if (!decision.allowed) {
      forbidden = true;
      reported.add(key);
      problems.push(
        reference.bareDefaultNetwork && nadNamespace !== namespace
          ? `${reference.label}: ${bareDefaultNetworkDenial(reference.selection, namespace, env)}`
          : `${reference.label}: ${decision.message}${decision.remedy ? `\n${decision.remedy}` : ""}`,
      );
      continue;
    }
    const nad = snapshot.nads.get(key);
    if (!nad) {
      reported.add(key);
      const where = reference.bareDefaultNetwork ? ` (${bareDefaultNetworkRule(nadNamespace)})` : "";
      problems.push(
        `${reference.label}: NetworkAttachmentDefinition ${key} does not exist${where}${missingObjectNote(snapshot, "NetworkAttachmentDefinition", nadNamespace)}; ${listExisting(snapshot.nadNamesByNamespace.get(namespace), namespace)}`,
      );
      continue;
    }
    nads.push(nad);
  }
  return { nads, access, problems, forbidden, unchecked: 0 };
}

/** Distinct NADs named from `from` on that were not decided yet. */
function countUnchecked(references: readonly Reference[], from: number, decided: ReadonlyMap<string, unknown>): number {
  const unchecked = new Set<string>();
  for (let i = from; i < references.length; i++) {
    const { namespace, name } = references[i]!.selection;
    const key = objectKey(namespace, name);
    if (!decided.has(key)) unchecked.add(key);
  }
  return unchecked.size;
}

const bareDefaultNetworkRule = (multusNamespace: string): string =>
  `a name without a namespace in ${ANNOTATION_DEFAULT_NETWORK} is looked up in the Multus namespace ${multusNamespace}, as Multus does`;

/**
 * A bare default-network name that resolved to a NAD of Multus's namespace the pod may not use.
 * The tenant almost always meant a NAD of the pod's own namespace: say so, and suggest no grant in
 * the Multus namespace (following that advice would open its networks to the tenant). Whether the
 * pod's own namespace has such a NAD may be said; nothing about the Multus namespace is.
 */
function bareDefaultNetworkDenial(selection: NetworkSelection, podNamespace: string, env: AdmissionEnv): string {
  const own = objectKey(podNamespace, selection.name);
  const meant = env.snapshot.nads.has(own)
    ? `You probably meant ${own}: write the namespace, ${JSON.stringify(own)}.`
    : `Namespace ${podNamespace} has no NetworkAttachmentDefinition ${selection.name} either; to use one of its NADs, write ${podNamespace}/<name>.`;
  return (
    `may not use NetworkAttachmentDefinition ${objectKey(selection.namespace, selection.name)}: ` +
    `${bareDefaultNetworkRule(selection.namespace)}, not in the pod's namespace. ${meant} ` +
    `A grant of the NADs of ${selection.namespace} to this namespace is rarely what is wanted, so none is suggested.`
  );
}

/** Lists the NADs of the pod's own namespace only: naming another namespace's NADs would leak them. */
function listExisting(names: readonly string[] | undefined, namespace: string): string {
  if (!names || names.length === 0) return `namespace ${namespace} has no NetworkAttachmentDefinitions`;
  const shown = names.slice(0, 20).join(", ");
  const more = names.length > 20 ? ` and ${names.length - 20} more` : "";
  return `NetworkAttachmentDefinitions in namespace ${namespace}: ${shown}${more}`;
}

function mutate(
  original: unknown,
  nads: readonly NetworkAttachmentDefinition[],
  references: readonly Reference[],
  env: AdmissionEnv,
  endpoint: Endpoint,
  who: string,
): Decision {
  const { config } = env;
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

  const attachments = references.map((reference, i) => describeAttachment(reference, nads[i]!, env));
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
function judgeUpdate(pod: Pod, nads: readonly NetworkAttachmentDefinition[], references: readonly Reference[], env: AdmissionEnv, who: string): Decision {
  const { config } = env;
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
  const attachments = references.map((reference, i) => describeAttachment(reference, nads[i]!, env));
  const warnings = softWarnings(attachments, nads, env);
  if (config.injection.downwardApi && !(pod.spec.volumes ?? []).some((volume) => volume.name === PODNETINFO_VOLUME)) {
    warnings.push(`the pod has no ${PODNETINFO_VOLUME} volume (it gets one when created with networks)`);
  }
  return { allowed: true, patch: [], warnings, attachments };
}

function describeAttachment(reference: Reference, nad: NetworkAttachmentDefinition, env: AdmissionEnv): ResolvedAttachment {
  const cniType = nadCniInfo(nad).types[0];
  const resourceName = resourceNameOf(nad, env.config.resources.resourceNameKeys);
  return {
    interfaceName: reference.interfaceName,
    network: objectKey(nad.metadata.namespace!, nad.metadata.name!),
    ...(cniType !== undefined && { cniType }),
    ...(resourceName !== undefined && { resourceName }),
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
