// Who may use a NetworkAttachmentDefinition: the decision behind every cross-namespace reference
// in a pod's selection annotation. Secure by default: mode `rbac` lets a pod be created with a NAD
// of another namespace only when the user creating it or the pod's own service account is granted
// verb `use` on that NAD — the PodSecurityPolicy model, so pods made by controllers (requester
// `system:serviceaccount:kube-system:replicaset-controller`) work through their service account.
// A change of a running pod's networks needs both: the user making the change (the pod did not
// ask) and the pod's service account (the identity the network is attached for whenever the
// sandbox is re-created).
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

/** Who answers: nadguard's evaluator over the snapshot's RBAC objects, or kube-apiserver. */
export type ReviewerKind = "offline-rbac" | "subjectaccessreview";

/** Answers access reviews: offline over RbacObjects, or by SubjectAccessReview (sar.ts). */
export interface AccessReviewer {
  /**
   * `signal` is the deadline of the decision that asks: once it aborts, the answer is no longer
   * wanted and a reviewer that waits on the network stops waiting (and rejects).
   */
  review(attrs: AccessAttributes, signal?: AbortSignal): AccessResult | Promise<AccessResult>;
  /** How access trails name the grant; absent counts as `offline-rbac`. */
  readonly kind?: ReviewerKind;
}

/** A reviewer over the RBAC objects of a snapshot; answers synchronously. */
export function offlineReviewer(rbac: RbacObjects): AccessReviewer {
  return { kind: "offline-rbac", review: (attrs) => checkAccess(rbac, attrs) };
}

export interface NadUseRequest {
  readonly podNamespace: string;
  readonly nadNamespace: string;
  readonly nadName: string;
  /** The user creating the pod (AdmissionReview userInfo); absent when unknown, e.g. offline checks. */
  readonly requester: { readonly username?: string; readonly groups?: readonly string[] };
  /** The pod's service account; `default` when the pod names none. */
  readonly serviceAccountName: string;
  /**
   * Who must hold the grant under `rbac`: `either` the requester or the pod's service account
   * (creating a pod), or `both` (changing the networks of an existing pod). Default `either`.
   */
  readonly grantee?: "either" | "both";
}

export interface NadAccessOptions {
  readonly mode: AuthorizationMode;
  /** Namespaces whose NADs every pod may use (e.g. where cluster admins keep shared networks). */
  readonly globalNamespaces: readonly string[];
}

/** One holder of `use` under `rbac`: who holds it and what granted it. */
export interface NadGrant {
  /** The user name: the requester, or the pod's service account `system:serviceaccount:<ns>:<name>`. */
  readonly subject: string;
  /**
   * What the reviewer said granted it: `RoleBinding ns/name → ClusterRole role` offline, the
   * SubjectAccessReview's reason (or `SubjectAccessReview` when it gave none) in a cluster.
   */
  readonly grantedBy?: string | undefined;
}

export type NadAccessDecision =
  | {
      readonly allowed: true;
      readonly reason: "own-namespace" | "global-namespace" | "mode-none" | "rbac";
      /** For `rbac`: the binding and role that granted `use` (several joined by `; `). */
      readonly grantedBy?: string;
      /** For `rbac`: the user name that holds the grant (the requester or the pod's service account). */
      readonly subject?: string;
      /** For `rbac`: each grant that was needed, in the order checked (two when the grantee is `both`). */
      readonly grants?: readonly NadGrant[];
    }
  | {
      readonly allowed: false;
      readonly reason: "namespace-isolation" | "rbac";
      /** Starts with `may not use NetworkAttachmentDefinition <ns>/<name>: `. */
      readonly message: string;
      /** For `rbac`: the `kubectl create rolebinding` command(s) that would allow the use, one per line. */
      readonly remedy?: string;
      /** What was missing, in one clause: `a grant of verb "use" on … to the requesting user bob or …`. */
      readonly missing: string;
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
  signal?: AbortSignal,
): Promise<NadAccessDecision> {
  if (options.mode === "none") return { allowed: true, reason: "mode-none" };
  if (request.nadNamespace === request.podNamespace) return { allowed: true, reason: "own-namespace" };
  if (options.globalNamespaces.includes(request.nadNamespace)) return { allowed: true, reason: "global-namespace" };
  if (options.mode === "namespace-isolation") return isolationDenial(request, options);
  return reviewRbac(request, reviewer, signal);
}

/** The ClusterRole manifests/rbac/nad-user.yaml ships: verb `use` on every NAD of the namespace it is bound in. */
export const NAD_USER_CLUSTER_ROLE = "nadguard:nad-user";

interface Candidate {
  /** How messages name it: `the requesting user bob (groups …)` or `the pod's service account …`. */
  readonly who: string;
  readonly user: string;
  readonly groups: readonly string[];
  /** Whom `kubectl create rolebinding` binds: `--serviceaccount` `ns:name`, or `--user` `name`. */
  readonly subject: { readonly flag: "--serviceaccount" | "--user"; readonly value: string };
}

interface Review {
  readonly candidate: Candidate;
  readonly allowed: boolean;
  readonly grantedBy?: string;
  readonly failure?: string;
}

function requesterCandidate(request: NadUseRequest): Candidate | undefined {
  const username = request.requester.username;
  if (!username) return undefined;
  const serviceAccount = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username);
  return {
    who: describeRequester(request),
    user: username,
    groups: request.requester.groups ?? [],
    subject: serviceAccount ? { flag: "--serviceaccount", value: `${serviceAccount[1]}:${serviceAccount[2]}` } : { flag: "--user", value: username },
  };
}

function serviceAccountCandidate(request: NadUseRequest): Candidate {
  const sa = serviceAccountOf(request);
  const identity = serviceAccountUser(request.podNamespace, sa);
  return { who: `the pod's service account ${identity.user}`, ...identity, subject: { flag: "--serviceaccount", value: `${request.podNamespace}:${sa}` } };
}

function serviceAccountOf(request: NadUseRequest): string {
  return request.serviceAccountName || "default";
}

async function reviewCandidate(candidate: Candidate, request: NadUseRequest, reviewer: AccessReviewer, signal: AbortSignal | undefined): Promise<Review> {
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
    const result = await reviewer.review(attrs, signal);
    return result.allowed ? { candidate, allowed: true, grantedBy: result.grantedBy } : { candidate, allowed: false };
  } catch (error) {
    // The decision's deadline passed: its outcome no longer matters, and "denied" would be a lie.
    if (signal?.aborted) throw signal.reason;
    return { candidate, allowed: false, failure: `${candidate.user}: ${error instanceof Error ? error.message : String(error)}` };
  }
}

const grantOf = (review: Review): NadGrant => ({ subject: review.candidate.user, grantedBy: review.grantedBy });

async function reviewRbac(request: NadUseRequest, reviewer: AccessReviewer, signal: AbortSignal | undefined): Promise<NadAccessDecision> {
  const requester = requesterCandidate(request);
  const serviceAccount = serviceAccountCandidate(request);
  if (request.grantee === "both") {
    const reviews = [
      ...(requester ? [await reviewCandidate(requester, request, reviewer, signal)] : []),
      await reviewCandidate(serviceAccount, request, reviewer, signal),
    ];
    if (requester && reviews.every((review) => review.allowed)) {
      const grants = reviews.map((review) => review.grantedBy).filter((grant) => grant !== undefined);
      return {
        allowed: true,
        reason: "rbac",
        ...(grants.length > 0 && { grantedBy: grants.join("; ") }),
        subject: reviews.map((r) => r.candidate.user).join(" and "),
        grants: reviews.map(grantOf),
      };
    }
    return bothDenial(request, reviews, requester === undefined);
  }
  const reviews: Review[] = [];
  for (const candidate of requester ? [requester, serviceAccount] : [serviceAccount]) {
    const review = await reviewCandidate(candidate, request, reviewer, signal);
    if (review.allowed) return { allowed: true, reason: "rbac", grantedBy: review.grantedBy, subject: candidate.user, grants: [grantOf(review)] };
    reviews.push(review);
  }
  return eitherDenial(request, reviews);
}

function nadRef(request: NadUseRequest): string {
  return objectKey(request.nadNamespace, request.nadName);
}

function describeRequester(request: NadUseRequest): string {
  const { username, groups = [] } = request.requester;
  const role = request.grantee === "both" ? "updating" : "requesting";
  if (!username) return `no ${role} user was given`;
  if (groups.length === 0) return `the ${role} user ${username} (no groups)`;
  const shown = groups.slice(0, MAX_GROUPS_SHOWN).join(", ");
  const more = groups.length > MAX_GROUPS_SHOWN ? ` and ${groups.length - MAX_GROUPS_SHOWN} more` : "";
  return `the ${role} user ${username} (groups ${shown}${more})`;
}

const grantWanted = (request: NadUseRequest): string =>
  `verb "${NAD_USE_VERB}" on ${NAD_RESOURCE}.${NAD_GROUP} "${request.nadName}" in namespace ${request.nadNamespace}`;

/** `a grant of verb "use" on … to A or to B`, and why a review gave no answer. */
function missingGrant(request: NadUseRequest, lacking: readonly Review[], joiner: "or" | "and", noRequester: boolean): string {
  const to = lacking.map((review) => `to ${review.candidate.who}`);
  if (noRequester) to.unshift(`to the updating user (none was given)`);
  const failures = lacking.flatMap((review) => (review.failure ? [review.failure] : []));
  const failed = failures.length > 0 ? ` (the access review failed for ${failures.join("; ")})` : "";
  return `a grant of ${grantWanted(request)} ${to.join(` ${joiner} `)}${failed}`;
}

const failuresOf = (reviews: readonly Review[]): string => {
  const failures = reviews.flatMap((review) => (review.failure ? [review.failure] : []));
  return failures.length > 0 ? ` The access review failed for ${failures.join("; ")}.` : "";
};

/**
 * A misspelt namespace looks exactly like a missing grant: say so without telling whether the
 * namespace, or a NAD in it, exists (that would let a tenant probe other namespaces).
 */
const misspeltHint = (request: NadUseRequest): string =>
  ` If namespace ${request.nadNamespace} is misspelt, correct it: nadguard does not say which NADs other namespaces hold.`;

function eitherDenial(request: NadUseRequest, reviews: readonly Review[]): NadAccessDecision {
  const [first, second] = reviews;
  const checked = second
    ? `neither ${first!.candidate.who} nor ${second.candidate.who} is`
    : `${describeRequester(request)} and ${first!.candidate.who} is not`;
  const message =
    `may not use NetworkAttachmentDefinition ${nadRef(request)}: it is not in the pod's namespace ${request.podNamespace}, ` +
    `and under authorization mode "rbac" ${checked} granted ${grantWanted(request)}.${failuresOf(reviews)}` +
    `${misspeltHint(request)} Otherwise a cluster admin allows it by binding the ClusterRole ${NAD_USER_CLUSTER_ROLE} ` +
    `(every NAD of ${request.nadNamespace}) to the pod's service account there:`;
  const missing = missingGrant(request, reviews, "or", false);
  return { allowed: false, reason: "rbac", message, remedy: bindingCommand(request, serviceAccountCandidate(request)), missing };
}

function bothDenial(request: NadUseRequest, reviews: readonly Review[], noRequester: boolean): NadAccessDecision {
  const lacking = reviews.filter((review) => !review.allowed);
  const holding = reviews.filter((review) => review.allowed);
  let clause: string;
  if (noRequester) clause = `no updating user was given${lacking.length > 0 ? `, and ${lacking[0]!.candidate.who} is not granted it either` : ""}`;
  else if (lacking.length === 2) clause = `neither ${lacking[0]!.candidate.who} nor ${lacking[1]!.candidate.who} is`;
  else clause = `${lacking[0]!.candidate.who} is not (${holding[0]!.candidate.who} is)`;
  const message =
    `may not use NetworkAttachmentDefinition ${nadRef(request)}: it is not in the pod's namespace ${request.podNamespace}, ` +
    `and under authorization mode "rbac" a change of a pod's networks needs both the user making it and the pod's ` +
    `service account to be granted ${grantWanted(request)}; ${clause}.${failuresOf(reviews)}` +
    (lacking.length > 0
      ? `${misspeltHint(request)} Otherwise a cluster admin allows it by binding the ClusterRole ${NAD_USER_CLUSTER_ROLE} ` +
        `(every NAD of ${request.nadNamespace}) there:`
      : "");
  const remedy = lacking.map((review) => bindingCommand(request, review.candidate)).join("\n");
  const missing = missingGrant(request, lacking, "and", noRequester);
  return { allowed: false, reason: "rbac", message, ...(remedy !== "" && { remedy }), missing };
}

function isolationDenial(request: NadUseRequest, options: NadAccessOptions): NadAccessDecision {
  const globals = options.globalNamespaces.length > 0 ? options.globalNamespaces.join(", ") : "none configured";
  const message =
    `may not use NetworkAttachmentDefinition ${nadRef(request)}: under authorization mode "namespace-isolation" ` +
    `a pod in namespace ${request.podNamespace} may use only NADs in its own namespace and in the global ` +
    `namespaces (${globals}).${misspeltHint(request)} Otherwise a cluster admin adds ${request.nadNamespace} to ` +
    `globalNamespaces (every namespace may then use its NADs) or switches to authorization mode "rbac" and grants ` +
    `verb "${NAD_USE_VERB}" on this NAD.`;
  const missing = `authorization mode "namespace-isolation" allows only NADs of the pod's namespace ${request.podNamespace} and of the global namespaces (${globals})`;
  return { allowed: false, reason: "namespace-isolation", message, missing };
}

const SHELL_PLAIN = /^[A-Za-z0-9][-A-Za-z0-9_.:=@/]*$/;

/**
 * A word a shell reads back as exactly `value`. The service account name comes from the pod,
 * which kube-apiserver validates only after the mutating webhooks: never paste it unquoted into a
 * command an admin is told to run.
 */
function shellWord(value: string): string {
  return SHELL_PLAIN.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The binding's name: the role's and the grantee's (`nadguard-nad-user-tenant-a-default`), made
 * of the characters every object name allows (user names may hold `:`, `/`, `@`).
 */
function bindingName(candidate: Candidate): string {
  return `${NAD_USER_CLUSTER_ROLE}-${candidate.subject.value}`.toLowerCase().replace(/[^a-z0-9.-]+/g, "-").replace(/-+$/, "").slice(0, 253);
}

/** `kubectl -n NS create rolebinding NAME --clusterrole=nadguard:nad-user --serviceaccount=NS:SA`. */
function bindingCommand(request: NadUseRequest, candidate: Candidate): string {
  return [
    "kubectl -n",
    shellWord(request.nadNamespace),
    "create rolebinding",
    shellWord(bindingName(candidate)),
    `--clusterrole=${NAD_USER_CLUSTER_ROLE}`,
    `${candidate.subject.flag}=${shellWord(candidate.subject.value)}`,
  ].join(" ");
}
