// The outcome of one admission decision, independent of the wire: the webhook and
// `nadguard admit` both turn it into an AdmissionReview response with `toAdmissionResponse`.
import type { AdmissionResponse } from "../api/admission-review.js";
import type { Snapshot } from "../api/snapshot.js";
import type { AccessReviewer } from "../authz/nad-access.js";
import type { AccessTrail } from "../authz/network-access.js";
import type { Config } from "../config/config.js";
import { cutText } from "../api/text.js";
import type { JsonPatchOp } from "./json-patch.js";

/** The two webhook endpoints a decision is made for; also the `endpoint` label of the webhook's metrics. */
export type Endpoint = "mutate" | "validate";

/** Why a request was denied: a stable code, also the label of the denials metric. */
export type DenialReason =
  | "invalid-object"
  | "invalid-network-selection"
  | "network-not-found"
  | "network-forbidden"
  | "node-selector-conflict"
  | "resource-container-missing"
  | "recreate-required"
  | "invalid-nad"
  | "nad-in-use"
  | "invalid-policy";

/** One resolved entry of the pod's networks annotation, for people reading the verdict. */
export interface ResolvedAttachment {
  readonly interfaceName: string;
  /** `namespace/name` of the NAD. */
  readonly network: string;
  readonly cniType?: string;
  readonly resourceName?: string;
  /** What granted the pod `use` of the NAD; its `summary` reads `allowed by RoleBinding tenant-b/x → ClusterRole y, granted to …`. */
  readonly access?: AccessTrail;
}

/** A reference a pod was denied: the grant it lacked, or a NAD that does not exist. */
export interface RefusedAttachment {
  readonly interfaceName: string;
  /** `namespace/name` of the NAD. */
  readonly network: string;
  /** Allowed with `notFound` (the NAD does not exist), else what was missing (`access.missing`). */
  readonly access: AccessTrail;
  readonly notFound: boolean;
  /** What was missing, in one clause: the grant, or `NetworkAttachmentDefinition ns/name does not exist` (and why it may). */
  readonly missing: string;
}

export interface Decision {
  readonly allowed: boolean;
  readonly reason?: DenialReason;
  /** The denial, one problem per line, each naming the element or field it is about. */
  readonly message?: string;
  readonly patch: readonly JsonPatchOp[];
  readonly warnings: readonly string[];
  readonly attachments: readonly ResolvedAttachment[];
  /** Pods denied because of their networks (forbidden, not found): the references refused, in order. */
  readonly refused?: readonly RefusedAttachment[];
}

/** What every decision reads: the snapshot, the config and who answers access questions. */
export interface AdmissionEnv {
  readonly snapshot: Snapshot;
  readonly config: Config;
  readonly access: AccessReviewer;
}

/**
 * The deadline of one review (the webhook's ReviewContext fits): aborted when the review's time is
 * up. Read `signal` only where it is used: reading it may allocate an AbortController.
 */
export interface Deadline {
  readonly signal: AbortSignal;
}

export const ALLOW: Decision = { allowed: true, patch: [], warnings: [], attachments: [] };

export function deny(reason: DenialReason, message: string, extra: Partial<Decision> = {}): Decision {
  return { ...ALLOW, ...extra, allowed: false, reason, message, patch: [] };
}

/** kube-apiserver may cut a long warning; keep each under 120 characters (Kubernetes docs, Dynamic Admission Control, "Response"). */
export const MAX_WARNING = 119;

/** A warning cut to MAX_WARNING characters (cutText, src/api/text.ts). */
export function clampWarning(warning: string): string {
  return cutText(warning, MAX_WARNING);
}

export const REASON_ANNOTATION = "nadguard.io/reason";

/** The AdmissionReview v1 response body for a decision: denial in `status`, patch with its type. */
export function toAdmissionResponse(uid: string, decision: Decision): AdmissionResponse {
  const response: AdmissionResponse = { uid, allowed: decision.allowed };
  if (!decision.allowed) {
    response.status = { code: 403, reason: "Forbidden", message: decision.message ?? "denied by nadguard" };
    response.auditAnnotations = { [REASON_ANNOTATION]: decision.reason ?? "unknown" };
  } else if (decision.patch.length > 0) {
    response.patch = Buffer.from(JSON.stringify(decision.patch)).toString("base64");
    response.patchType = "JSONPatch";
  }
  if (decision.warnings.length > 0) response.warnings = decision.warnings.map(clampWarning);
  return response;
}
