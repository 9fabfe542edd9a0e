// The pod decision: checks the networks annotation against the NADs that exist and against who
// may use them, then computes the mutation the pod needs. A pure function of
// (request, snapshot, config); access questions go through env.access (offline RBAC or SAR).
import type { AdmissionRequest } from "../api/admission-review.js";
import { formatProblem, type Problem } from "../api/errors.js";
import {
  ANNOTATION_DEFAULT_NETWORK,
  ANNOTATION_NETWORKS,
  type NetworkAttachmentDefinition,
  Pod,
  objectKey,
} from "../api/objects.js";
import { authorizeNadUse, type NadAccessDecision } from "../authz/nad-access.js";
import { missingObjectNote } from "../cluster/state-faults.js";
import { nadCniInfo } from "../networks/nad-config.js";
import { describeSelection, parseDefaultNetwork, parseNetworkSelections, type NetworkSelection } from "../networks/index.js";
import { ALLOW, type AdmissionEnv, type Decision, type ResolvedAttachment, deny } from "./decision.js";
import { diff } from "./json-patch.js";
import { countResources, draftPod, injectDownwardApi, injectNodeSelectors, injectResources, resourceNameOf } from "./pod-mutations.js";

export type Endpoint = "mutate" | "validate";

/** One reference to a NAD, from the networks annotation or the default-network annotation. */
interface Reference {
  readonly selection: NetworkSelection;
  readonly interfaceName: string;
  /** How the reference reads in messages, e.g. `element 2 ("tenant-b/sriov")`. */
  readonly label: string;
}

const describePod = (namespace: string, pod: Pod): string =>
  `pod ${namespace}/${pod.metadata.name ?? `${pod.metadata.generateName ?? ""}<generated>`}`;

/** Reads an annotation without parsing the pod, so that pods without networks cost nothing. */
function peekAnnotation(object: unknown, key: string): unknown {
  const annotations = (object as { metadata?: { annotations?: Record<string, unknown> } } | null)?.metadata?.annotations;
  return annotations && typeof annotations === "object" ? annotations[key] : undefined;
}

export async function admitPod(request: AdmissionRequest, env: AdmissionEnv, endpoint: Endpoint): Promise<Decision> {
  // Multus reads the annotations once, when the sandbox is created: only CREATE matters.
  if (request.operation !== "CREATE") return ALLOW;
  const networks = peekAnnotation(request.object, ANNOTATION_NETWORKS);
  const defaultNetwork = peekAnnotation(request.object, ANNOTATION_DEFAULT_NETWORK);
  if (networks === undefined && defaultNetwork === undefined) return ALLOW;

  const parsed = Pod.safeParse(request.object);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".") || "(object)"}: ${i.message}`);
    return deny("invalid-object", `the pod cannot be read: ${lines.join("; ")}`);
  }
  const pod = parsed.data;
  const namespace = request.namespace || pod.metadata.namespace || "default";
  const who = describePod(namespace, pod);

  const references = parseReferences(networks, defaultNetwork, namespace, env.config.multus.namespace);
  if (!references.ok) {
    return deny("invalid-network-selection", explain(who, references.problems.map(formatProblem)));
  }

  const resolved = await resolveReferences(references.value, namespace, pod, request, env);
  if (resolved.problems.length > 0) {
    const reason = resolved.forbidden ? "network-forbidden" : "network-not-found";
    return deny(reason, explain(who, resolved.problems));
  }
  return mutate(request.object, resolved.nads, references.value, env, endpoint);
}

/** `pod ns/name: problem`, or one problem per line under the pod when there are several. */
function explain(who: string, lines: readonly string[]): string {
  return lines.length === 1 ? `${who}: ${lines[0]}` : `${who}:${lines.map((line) => `\n- ${line}`).join("")}`;
}

type ReferencesResult = { ok: true; value: Reference[] } | { ok: false; problems: Problem[] };

/**
 * A bare name in the default-network annotation resolves in Multus's own namespace (Multus's
 * tryLoadK8sPodDefaultNetwork uses multusNamespace), not the pod's; the networks annotation's do.
 */
function parseReferences(networks: unknown, defaultNetwork: unknown, namespace: string, multusNamespace: string): ReferencesResult {
  const problems: Problem[] = [];
  const references: Reference[] = [];
  if (defaultNetwork !== undefined) {
    if (typeof defaultNetwork !== "string") {
      problems.push({ code: "selection.not-string", path: `annotation ${ANNOTATION_DEFAULT_NETWORK}`, message: "must be a string" });
    } else {
      const result = parseDefaultNetwork(defaultNetwork, multusNamespace);
      if (result.ok) references.push({ selection: result.value, interfaceName: "eth0", label: `annotation ${ANNOTATION_DEFAULT_NETWORK}` });
      else problems.push(...result.error);
    }
  }
  if (networks !== undefined) {
    if (typeof networks !== "string") {
      problems.push({ code: "selection.not-string", path: `annotation ${ANNOTATION_NETWORKS}`, message: "must be a string" });
    } else {
      const result = parseNetworkSelections(networks, namespace);
      if (result.ok) {
        for (const attachment of result.value) {
          references.push({
            selection: attachment.selection,
            interfaceName: attachment.interfaceName,
            label: describeSelection(attachment.selection),
          });
        }
      } else problems.push(...result.error);
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: references };
}

interface Resolution {
  /** One NAD per reference, in reference order (the same NAD twice appears twice). */
  readonly nads: NetworkAttachmentDefinition[];
  readonly access: Map<string, NadAccessDecision>;
  readonly problems: string[];
  readonly forbidden: boolean;
}

/**
 * Authorizes, then looks up, each distinct NAD. Authorization comes first so that a tenant who may
 * not use another namespace's NADs learns nothing about which of them exist.
 */
async function resolveReferences(
  references: readonly Reference[],
  namespace: string,
  pod: Pod,
  request: AdmissionRequest,
  env: AdmissionEnv,
): Promise<Resolution> {
  const { snapshot, config } = env;
  const serviceAccountName = pod.spec.serviceAccountName || pod.spec.serviceAccount || "default";
  const access = new Map<string, NadAccessDecision>();
  const problems: string[] = [];
  const nads: NetworkAttachmentDefinition[] = [];
  let forbidden = false;
  const reported = new Set<string>();
  for (const reference of references) {
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
      problems.push(`${reference.label}: ${decision.message}${decision.remedy ? `\n${decision.remedy}` : ""}`);
      continue;
    }
    const nad = snapshot.nads.get(key);
    if (!nad) {
      reported.add(key);
      problems.push(`${reference.label}: NetworkAttachmentDefinition ${key} does not exist${missingObjectNote(snapshot, "NetworkAttachmentDefinition", nadNamespace)}; ${listExisting(snapshot.nadNamesByNamespace.get(namespace), namespace)}`);
      continue;
    }
    nads.push(nad);
  }
  return { nads, access, problems, forbidden };
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
): Decision {
  const { config } = env;
  const pod = draftPod(original as Pod);
  const warnings: string[] = [];
  const resources = injectResources(pod, countResources(nads, config.resources.resourceNameKeys), config.resources.honorExistingResources);
  if (!resources.ok) return deny("resource-container-missing", resources.message);
  warnings.push(...resources.warnings);
  if (config.injection.nodeSelector) {
    const selectors = injectNodeSelectors(pod, nads);
    if (!selectors.ok) return deny("node-selector-conflict", selectors.message);
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
