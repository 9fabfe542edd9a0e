// Which NADs a pod's network annotations name, and whether the pod may use each of them: the one
// decision that pod admission (src/admission/pod.ts) and the node's CNI daemon (src/cni) both make,
// so that a pod is attached to exactly what it was admitted with. It keeps the access trail: each
// network records what granted `use` (the pod's own namespace, a global namespace, the RoleBinding
// and role found offline, the SubjectAccessReview's answer) or, when refused, what was missing.
//
// Usage (one function, no state; the reviewer carries the SubjectAccessReview cache):
//
//   const result = await resolveNetworks(
//     {
//       namespace: "tenant-a",                          // the pod's namespace
//       serviceAccountName: pod.spec.serviceAccountName, // "" or absent: `default`
//       requester: { username, groups },                 // who creates the pod; absent: only the service account counts
//       networks: annotations["k8s.v1.cni.cncf.io/networks"],         // as found: string, absent, or anything (a problem)
//       defaultNetwork: annotations["v1.multus-cni.io/default-network"],
//     },
//     { snapshot, authorization: config.authorization, multusNamespace: config.multus.namespace, reviewer, signal },
//   );
//   result.ok  → result.attachments: one per reference, in annotation order (default network first),
//                each { interfaceName, network: "ns/name", nad, selection, access }
//   !result.ok → result.reason ("invalid-network-selection" | "network-forbidden" | "network-not-found"),
//                result.problems (each naming its annotation element), result.unlisted (counted, not
//                listed), result.refused (the references refused, each with its access trail)
//
// It rejects only when `signal` aborts (with the signal's reason); a reviewer that fails is a
// refusal that says so. Authorization comes before lookup, so a refusal never tells whether a NAD of
// another namespace exists.
import type { Problem } from "../api/errors.js";
import { ANNOTATION_DEFAULT_NETWORK, type NetworkAttachmentDefinition, objectKey } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { missingObjectNote } from "../api/state-faults.js";
import {
  DEFAULT_NETWORK_ANNOTATION_PATH,
  NETWORKS_ANNOTATION_PATH,
  type NetworkSelection,
  describeSelection,
  parseDefaultNetwork,
  parseNetworkSelections,
} from "../networks/index.js";
import {
  type AccessReviewer,
  type AuthorizationMode,
  type NadAccessDecision,
  type NadAccessOptions,
  type NadGrant,
  authorizeNadUse,
} from "./nad-access.js";
import { serviceAccountUsername } from "./rbac.js";

export interface NetworkRequest {
  /** The pod's namespace: bare names in the networks annotation resolve here. */
  readonly namespace: string;
  /** The pod's service account (spec.serviceAccountName); `""` or absent means `default`. */
  readonly serviceAccountName?: string | undefined;
  /** The user creating or changing the pod (AdmissionReview userInfo); absent: only the service account is checked. */
  readonly requester?: { readonly username?: string | undefined; readonly groups?: readonly string[] | undefined } | undefined;
  /** `either` the requester or the service account holds `use` (a new pod, the default), or `both` (a change of a running pod's networks). */
  readonly grantee?: "either" | "both";
  /** The value of k8s.v1.cni.cncf.io/networks as found: a string, undefined when absent, anything else is a problem. */
  readonly networks: unknown;
  /** The value of v1.multus-cni.io/default-network, likewise. */
  readonly defaultNetwork: unknown;
}

export interface NetworkAccessContext {
  readonly snapshot: Snapshot;
  /** config.authorization: the mode and the global namespaces. */
  readonly authorization: NadAccessOptions;
  /** config.multus.namespace: where a bare name in the default-network annotation resolves, as in Multus. */
  readonly multusNamespace: string;
  readonly reviewer: AccessReviewer;
  /** The deadline of the decision: aborts pending access reviews (their HTTP requests included). */
  readonly signal?: AbortSignal | undefined;
  /** Refused references listed before the rest are only counted; default 10. */
  readonly maxProblems?: number;
}

/** What granted a pod `use` of one NAD, or what it lacked. */
export interface AccessTrail {
  readonly allowed: boolean;
  readonly mode: AuthorizationMode;
  /**
   * - `own-namespace`, `global-namespace`, `mode-none`: no grant needed;
   * - `rbac`: a grant (offline RBAC or SubjectAccessReview, see `reviewer`);
   * - `namespace-isolation`: refused by that mode.
   */
  readonly reason: NadAccessDecision["reason"];
  /** For `rbac`: who decided. */
  readonly reviewer?: "offline-rbac" | "subjectaccessreview";
  /** For an `rbac` allow: each grant needed (two for a change of a running pod's networks). */
  readonly grants?: readonly NadGrant[];
  /** For a refusal: what was missing, in one clause. */
  readonly missing?: string;
  /** One line for people: `allowed by RoleBinding shared-networks/x → ClusterRole nadguard:nad-user, granted to …`. */
  readonly summary: string;
}

/** One reference of the annotations, resolved to a NAD the pod may use. */
export interface NetworkAttachment {
  readonly selection: NetworkSelection;
  readonly interfaceName: string;
  /** `namespace/name` of the NAD. */
  readonly network: string;
  readonly nad: NetworkAttachmentDefinition;
  /** How messages name the reference: `element 2 ("tenant-b/sriov")` or `annotation v1.multus-cni.io/default-network`. */
  readonly label: string;
  readonly access: AccessTrail;
}

/** A reference that was refused: the pod may not use its NAD, or the NAD does not exist. */
export interface RefusedNetwork {
  readonly interfaceName: string;
  readonly network: string;
  readonly label: string;
  readonly access: AccessTrail;
  /** True when access was granted but the NAD does not exist. */
  readonly notFound: boolean;
  /** What was missing, in one clause: the grant (`access.missing`), or `NetworkAttachmentDefinition ns/name does not exist` (with why it may, when state files are unreadable). */
  readonly missing: string;
}

export type NetworkResolution =
  | { readonly ok: true; readonly attachments: readonly NetworkAttachment[] }
  | {
      readonly ok: false;
      readonly reason: "invalid-network-selection" | "network-forbidden" | "network-not-found";
      /** Each names its reference in `path`; one per distinct NAD, at most `maxProblems` refusals. */
      readonly problems: readonly Problem[];
      /** Problems the parser counted without keeping them (invalid selection), or distinct NADs left unchecked once `maxProblems` refusals made the verdict. */
      readonly unlisted: number;
      readonly refused: readonly RefusedNetwork[];
    };

const DEFAULT_MAX_PROBLEMS = 10;

/** One reference to a NAD, from the networks annotation or the default-network annotation. */
interface Reference {
  readonly selection: NetworkSelection;
  readonly interfaceName: string;
  readonly label: string;
  /** A name without namespace in the default-network annotation: looked up in Multus's namespace. */
  readonly bareDefaultNetwork: boolean;
}

/**
 * Resolves and authorizes every NAD the annotations name (see the top of this file). Each distinct
 * NAD is authorized once, then looked up. Once `maxProblems` refusals are found the pod is refused
 * whatever the rest says: the remaining NADs are counted, not authorized (each could cost two
 * SubjectAccessReviews).
 */
export async function resolveNetworks(request: NetworkRequest, context: NetworkAccessContext): Promise<NetworkResolution> {
  const parsed = parseReferences(request, context.multusNamespace);
  if (!parsed.ok) return { ok: false, reason: "invalid-network-selection", problems: parsed.problems, unlisted: parsed.omitted, refused: [] };
  const references = parsed.value;
  const maxProblems = context.maxProblems ?? DEFAULT_MAX_PROBLEMS;
  // Object spread and rest are runtime calls in V8: on this hot path the objects are built field by field.
  const decisions = new Map<string, { readonly decision: NadAccessDecision; readonly access: AccessTrail }>();
  const attachments: NetworkAttachment[] = [];
  const problems: Problem[] = [];
  const refused: RefusedNetwork[] = [];
  const reported = new Set<string>();
  let forbidden = false;
  // The offline evaluator answers at once: its callers need not produce a signal (that may allocate).
  const signal = context.reviewer.kind === "offline-rbac" ? undefined : context.signal;
  for (let i = 0; i < references.length; i++) {
    if (problems.length === maxProblems) {
      return { ok: false, reason: refusalReason(forbidden), problems, unlisted: countUnchecked(references, i, decisions), refused };
    }
    signal?.throwIfAborted();
    const reference = references[i]!;
    const key = objectKey(reference.selection.namespace, reference.selection.name);
    let decided = decisions.get(key);
    if (!decided) {
      const decision = await authorize(reference, request, context, signal);
      decided = { decision, access: accessTrail(decision, request, reference, context) };
      decisions.set(key, decided);
    }
    const { decision, access } = decided;
    if (reported.has(key)) continue;
    const { interfaceName, label } = reference;
    if (!decision.allowed) {
      forbidden = true;
      reported.add(key);
      problems.push({ code: "network.forbidden", path: label, message: forbiddenMessage(decision, reference, request, context) });
      refused.push({ interfaceName, network: key, label, access, notFound: false, missing: decision.missing });
      continue;
    }
    const nad = context.snapshot.nads.get(key);
    if (!nad) {
      reported.add(key);
      const note = missingObjectNote(context.snapshot, "NetworkAttachmentDefinition", reference.selection.namespace);
      problems.push({ code: "network.not-found", path: reference.label, message: notFoundMessage(reference, key, note, request.namespace, context.snapshot) });
      refused.push({ interfaceName, network: key, label, access, notFound: true, missing: `NetworkAttachmentDefinition ${key} does not exist${note}` });
      continue;
    }
    attachments.push({ interfaceName, network: key, label, selection: reference.selection, nad, access });
  }
  if (problems.length > 0) return { ok: false, reason: refusalReason(forbidden), problems, unlisted: 0, refused };
  return { ok: true, attachments };
}

const NO_REQUESTER = {};

const refusalReason = (forbidden: boolean): "network-forbidden" | "network-not-found" => (forbidden ? "network-forbidden" : "network-not-found");

function authorize(reference: Reference, request: NetworkRequest, context: NetworkAccessContext, signal: AbortSignal | undefined): Promise<NadAccessDecision> {
  return authorizeNadUse(
    {
      podNamespace: request.namespace,
      nadNamespace: reference.selection.namespace,
      nadName: reference.selection.name,
      requester: request.requester ?? NO_REQUESTER,
      serviceAccountName: request.serviceAccountName || "default",
      grantee: request.grantee ?? "either",
    },
    context.authorization,
    context.reviewer,
    signal,
  );
}

type ReferencesResult = { ok: true; value: Reference[] } | { ok: false; problems: Problem[]; omitted: number };

/**
 * A bare name in the default-network annotation resolves in Multus's own namespace (Multus's
 * tryLoadK8sPodDefaultNetwork uses multusNamespace), not the pod's; the networks annotation's do.
 */
function parseReferences(request: NetworkRequest, multusNamespace: string): ReferencesResult {
  const { networks, defaultNetwork, namespace } = request;
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

/** The trail of one decision, with its one-line summary. */
function accessTrail(decision: NadAccessDecision, request: NetworkRequest, reference: Reference, context: NetworkAccessContext): AccessTrail {
  const mode = context.authorization.mode;
  const nadNamespace = reference.selection.namespace;
  const under = `authorization mode "${mode}"`;
  if (!decision.allowed) {
    return { allowed: false, mode, reason: decision.reason, missing: decision.missing, summary: `denied: missing ${decision.missing}` };
  }
  switch (decision.reason) {
    case "mode-none":
      return { allowed: true, mode, reason: decision.reason, summary: `allowed: authorization mode "none" lets every pod use every NAD` };
    case "own-namespace":
      return { allowed: true, mode, reason: decision.reason, summary: `allowed: in the pod's own namespace ${request.namespace} (${under})` };
    case "global-namespace":
      return { allowed: true, mode, reason: decision.reason, summary: `allowed: ${nadNamespace} is a global namespace (${under})` };
    case "rbac": {
      const kind = context.reviewer.kind ?? "offline-rbac";
      const grants = decision.grants ?? [];
      const holder = holderOf(request);
      const summary = `allowed by ${grants.map((grant) => describeGrant(grant, kind, holder)).join("; and by ")}`;
      return { allowed: true, mode, reason: decision.reason, reviewer: kind, grants, summary };
    }
  }
}

/** Names a grant's subject: `the pod's service account system:serviceaccount:ns:sa` or `the requesting user alice`. */
function holderOf(request: NetworkRequest): (subject: string) => string {
  const serviceAccount = serviceAccountUsername(request.namespace, request.serviceAccountName || "default");
  const role = request.grantee === "both" ? "updating" : "requesting";
  return (subject) => (subject === serviceAccount ? `the pod's service account ${subject}` : `the ${role} user ${subject}`);
}

/**
 * `RoleBinding ns/x → ClusterRole y, granted to the requesting user alice`, or
 * `SubjectAccessReview for the requesting user alice: <the API server's reason>`.
 */
function describeGrant(grant: NadGrant, kind: "offline-rbac" | "subjectaccessreview", holder: (subject: string) => string): string {
  if (kind === "offline-rbac") return `${grant.grantedBy ?? "RBAC"}, granted to ${holder(grant.subject)}`;
  const reason = grant.grantedBy && grant.grantedBy !== "SubjectAccessReview" ? `: ${grant.grantedBy}` : "";
  return `SubjectAccessReview for ${holder(grant.subject)}${reason}`;
}

function forbiddenMessage(decision: NadAccessDecision & { allowed: false }, reference: Reference, request: NetworkRequest, context: NetworkAccessContext): string {
  if (reference.bareDefaultNetwork && reference.selection.namespace !== request.namespace) {
    return bareDefaultNetworkDenial(reference.selection, request.namespace, context.snapshot);
  }
  return `${decision.message}${decision.remedy ? `\n${decision.remedy}` : ""}`;
}

/** `note`: why the NAD may exist after all (unreadable state files), or `""`. */
function notFoundMessage(reference: Reference, key: string, note: string, podNamespace: string, snapshot: Snapshot): string {
  const where = reference.bareDefaultNetwork ? ` (${bareDefaultNetworkRule(reference.selection.namespace)})` : "";
  return `NetworkAttachmentDefinition ${key} does not exist${where}${note}; ${listExisting(snapshot.nadNamesByNamespace.get(podNamespace), podNamespace)}`;
}

const bareDefaultNetworkRule = (multusNamespace: string): string =>
  `a name without a namespace in ${ANNOTATION_DEFAULT_NETWORK} is looked up in the Multus namespace ${multusNamespace}, as Multus does`;

/**
 * A bare default-network name that resolved to a NAD of Multus's namespace the pod may not use.
 * The tenant almost always meant a NAD of the pod's own namespace: say so, and suggest no grant in
 * the Multus namespace (following that advice would open its networks to the tenant). Whether the
 * pod's own namespace has such a NAD may be said; nothing about the Multus namespace is.
 */
function bareDefaultNetworkDenial(selection: NetworkSelection, podNamespace: string, snapshot: Snapshot): string {
  const own = objectKey(podNamespace, selection.name);
  const meant = snapshot.nads.has(own)
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
