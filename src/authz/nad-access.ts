// Who may use a NetworkAttachmentDefinition: the decision behind every cross-namespace reference
// in a pod's selection annotation. Secure by default: mode `rbac` lets a pod use a NAD of another
// namespace only when the user creating it or the pod's own service account is granted verb `use`
// on that NAD — the PodSecurityPolicy model, so pods made by controllers (requester
// `system:serviceaccount:kube-system:replicaset-controller`) work through their service account.
import { NAD_GROUP, NAD_RESOURCE, objectKey } from "../api/objects.js";
import type { RbacObjects } from "../api/snapshot.js";
import type { AccessAttributes, AccessResult } from "./rbac.js";
import { checkAccess, serviceAccountUser } from "./rbac.js";

/**
 * - `rbac` (default): own namespace and globalNamespaces; otherwise RBAC verb `use` on the NAD.
 * - `namespace-isolation`: own namespace and globalNamespaces only.
 * - `none`: any NAD that exists.
 */
export type AuthorizationMode = "rbac" | "namespace-isolation" | "none";
export const AUTHORIZATION_MODES: readonly AuthorizationMode[] = ["rbac", "namespace-isolation", "none"];
export const DEFAULT_AUTHORIZATION_MODE: AuthorizationMode = "rbac";

/** The verb a NAD user needs, as Multus and the NPWG spec name it for cross-namespace use. */
export const NAD_USE_VERB = "use";

/** Answers access reviews: offline over RbacObjects, or (later) by SubjectAccessReview. */
export interface AccessReviewer {
  review(attrs: AccessAttributes): AccessResult | Promise<AccessResult>;
}

/** A reviewer over the RBAC objects of a snapshot; answers synchronously. */
export function offlineReviewer(rbac: RbacObjects): AccessReviewer {
  return { review: (attrs) => checkAccess(rbac, attrs) };
}

export interface NadUseRequest {
  readonly podNamespace: string;
  readonly nadNamespace: string;
  readonly nadName: string;
  /** The user creating the pod (AdmissionReview userInfo); absent when unknown, e.g. offline checks. */
  readonly requester: { readonly username?: string; readonly groups?: readonly string[] };
  /** The pod's service account; `default` when the pod names none. */
  readonly serviceAccountName: string;
}

export interface NadAccessOptions {
  readonly mode: AuthorizationMode;
  /** Namespaces whose NADs every pod may use (e.g. where cluster admins keep shared networks). */
  readonly globalNamespaces: readonly string[];
}

export type NadAccessDecision =
  | {
      readonly allowed: true;
      readonly reason: "own-namespace" | "global-namespace" | "mode-none" | "rbac";
      /** For `rbac`: the binding and role that granted `use`. */
      readonly grantedBy?: string;
      /** For `rbac`: the user name that holds the grant (the requester or the pod's service account). */
      readonly subject?: string;
    }
  | {
      readonly allowed: false;
      readonly reason: "namespace-isolation" | "rbac";
      /** Starts with `may not use NetworkAttachmentDefinition <ns>/<name>: `. */
      readonly message: string;
      /** For `rbac`: Role and RoleBinding YAML that would allow the use. */
      readonly remedy?: string;
    };

/** How many groups a message lists before it says "and N more". */
const MAX_GROUPS_SHOWN = 4;

/**
 * Decides whether a pod in `podNamespace` may attach to NAD `nadNamespace/nadName`. Whether the NAD
 * exists is checked elsewhere. A reviewer that fails counts as a denial (the message says so),
 * never as an allow.
 */
export async function authorizeNadUse(
  request: NadUseRequest,
  options: NadAccessOptions,
  reviewer: AccessReviewer,
): Promise<NadAccessDecision> {
  if (options.mode === "none") return { allowed: true, reason: "mode-none" };
  if (request.nadNamespace === request.podNamespace) return { allowed: true, reason: "own-namespace" };
  if (options.globalNamespaces.includes(request.nadNamespace)) return { allowed: true, reason: "global-namespace" };
  if (options.mode === "namespace-isolation") return isolationDenial(request, options);
  return reviewRbac(request, reviewer);
}

interface Candidate {
  readonly user: string;
  readonly groups: readonly string[];
}

function candidatesOf(request: NadUseRequest): Candidate[] {
  const candidates: Candidate[] = [];
  const username = request.requester.username;
  if (username) candidates.push({ user: username, groups: request.requester.groups ?? [] });
  candidates.push(serviceAccountUser(request.podNamespace, serviceAccountOf(request)));
  return candidates;
}

function serviceAccountOf(request: NadUseRequest): string {
  return request.serviceAccountName || "default";
}

async function reviewRbac(request: NadUseRequest, reviewer: AccessReviewer): Promise<NadAccessDecision> {
  const failures: string[] = [];
  for (const candidate of candidatesOf(request)) {
    const attrs: AccessAttributes = {
      user: candidate.user,
      groups: candidate.groups,
      verb: NAD_USE_VERB,
      apiGroup: NAD_GROUP,
      resource: NAD_RESOURCE,
      name: request.nadName,
      namespace: request.nadNamespace,
    };
    try {
      const result = await reviewer.review(attrs);
      if (result.allowed) return { allowed: true, reason: "rbac", grantedBy: result.grantedBy, subject: candidate.user };
    } catch (error) {
      failures.push(`${candidate.user}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return rbacDenial(request, failures);
}

function nadRef(request: NadUseRequest): string {
  return objectKey(request.nadNamespace, request.nadName);
}

function describeRequester(request: NadUseRequest): string {
  const { username, groups = [] } = request.requester;
  if (!username) return "no requesting user was given";
  if (groups.length === 0) return `the requesting user ${username} (no groups)`;
  const shown = groups.slice(0, MAX_GROUPS_SHOWN).join(", ");
  const more = groups.length > MAX_GROUPS_SHOWN ? ` and ${groups.length - MAX_GROUPS_SHOWN} more` : "";
  return `the requesting user ${username} (groups ${shown}${more})`;
}

function rbacDenial(request: NadUseRequest, failures: readonly string[]): NadAccessDecision {
  const sa = serviceAccountUser(request.podNamespace, serviceAccountOf(request)).user;
  const checked = request.requester.username
    ? `neither ${describeRequester(request)} nor the pod's service account ${sa} is`
    : `${describeRequester(request)} and the pod's service account ${sa} is not`;
  const failed = failures.length > 0 ? ` The access review failed for ${failures.join("; ")}.` : "";
  const message =
    `may not use NetworkAttachmentDefinition ${nadRef(request)}: it is not in the pod's namespace ${request.podNamespace}, ` +
    `and under authorization mode "rbac" ${checked} granted verb "${NAD_USE_VERB}" on ` +
    `${NAD_RESOURCE}.${NAD_GROUP} "${request.nadName}" in namespace ${request.nadNamespace}.${failed} ` +
    `To allow it, a cluster admin applies a Role and a RoleBinding in namespace ${request.nadNamespace} ` +
    `that grant it to the pod's service account.`;
  return { allowed: false, reason: "rbac", message, remedy: remedyYaml(request) };
}

function isolationDenial(request: NadUseRequest, options: NadAccessOptions): NadAccessDecision {
  const globals = options.globalNamespaces.length > 0 ? options.globalNamespaces.join(", ") : "none configured";
  const message =
    `may not use NetworkAttachmentDefinition ${nadRef(request)}: under authorization mode "namespace-isolation" ` +
    `a pod in namespace ${request.podNamespace} may use only NADs in its own namespace and in the global ` +
    `namespaces (${globals}). To allow it, a cluster admin adds ${request.nadNamespace} to globalNamespaces ` +
    `(every namespace may then use its NADs) or switches to authorization mode "rbac" and grants verb ` +
    `"${NAD_USE_VERB}" on this NAD.`;
  return { allowed: false, reason: "namespace-isolation", message };
}

const YAML_PLAIN = /^[a-z][-a-z0-9.]*$/;
const YAML_SPECIAL = new Set(["y", "n", "yes", "no", "on", "off", "true", "false", "null"]);

/** A YAML scalar: plain when it cannot be read as anything but that string, else double-quoted. */
function yamlScalar(value: string): string {
  return YAML_PLAIN.test(value) && !YAML_SPECIAL.has(value) ? value : JSON.stringify(value);
}

function remedyYaml(request: NadUseRequest): string {
  const sa = serviceAccountOf(request);
  const role = `use-nad-${request.nadName}`;
  const binding = `${role}-${request.podNamespace}-${sa}`;
  return [
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: Role",
    "metadata:",
    `  name: ${yamlScalar(role)}`,
    `  namespace: ${yamlScalar(request.nadNamespace)}`,
    "rules:",
    `  - apiGroups: [${JSON.stringify(NAD_GROUP)}]`,
    `    resources: [${JSON.stringify(NAD_RESOURCE)}]`,
    `    resourceNames: [${JSON.stringify(request.nadName)}]`,
    `    verbs: [${JSON.stringify(NAD_USE_VERB)}]`,
    "---",
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: RoleBinding",
    "metadata:",
    `  name: ${yamlScalar(binding)}`,
    `  namespace: ${yamlScalar(request.nadNamespace)}`,
    "roleRef:",
    "  apiGroup: rbac.authorization.k8s.io",
    "  kind: Role",
    `  name: ${yamlScalar(role)}`,
    "subjects:",
    "  - kind: ServiceAccount",
    `    name: ${yamlScalar(sa)}`,
    `    namespace: ${yamlScalar(request.podNamespace)}`,
    "",
  ].join("\n");
}
