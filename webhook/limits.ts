// What the webhook refuses to work on, so that one request cannot stall or exhaust the process
// that answers every other tenant's reviews. Every number is above anything a review from
// kube-apiserver can carry for the kinds nadguard is registered for (Pods, NetworkAttachment-
// Definitions, MultiNetworkPolicies); README, "Limits", lists them with these reasons.
import type { AdmissionRequest, AdmissionResponse } from "../src/api/admission-review.js";
import { REASON_ANNOTATION } from "../src/admission/decision.js";
import type { JsonBodyError, JsonLimits } from "./json-body.js";

/**
 * A review carries object and oldObject, each up to kube-apiserver's 3 MiB request limit (its
 * DefaultMaxRequestSizeBytes); fastify's 1 MiB default would turn large objects into failed calls.
 */
export const BODY_LIMIT = 7 * 1024 * 1024;

export const REVIEW_BODY_LIMITS: JsonLimits = {
  // The deepest path in a Pod (an affinity term's matchExpressions values, and the same path in
  // metadata.managedFields' fieldsV1) is about 20 levels below the review's top; the CRDs of
  // NADs and MultiNetworkPolicies are shallower and prune unknown fields.
  maxDepth: 100,
  // No single string can be longer than the 3 MiB request that holds its object.
  maxStringBytes: 3 * 1024 * 1024,
  // One per 6 bytes of a 3 MiB object and its 3 MiB old version: Kubernetes objects have a
  // field name or a value in every object. Bounds the memory a body can make (~70 bytes each).
  maxContainers: 1_000_000,
  // One huge object or array is built in one piece at the end and, for an object, rehashed as it
  // grows: ~10 ms at this size. No list in a Pod, NAD or MultiNetworkPolicy comes near it (a
  // container cannot have more than 65,536 supplemental groups, Linux's NGROUPS_MAX; a policy of
  // /32 ipBlocks reaches ~45,000 peers at etcd's 1.5 MiB object limit).
  maxMembers: 100_000,
  // The default of `nadguard webhook --max-body-values`. The work of building a body grows with its
  // values far more than with its bytes (a 6 MiB body of small members costs over a second of CPU,
  // a 6 MiB string a few ms), so this is what bounds the work of a body that breaks no other limit.
  // Reviews from kube-apiserver hold 20 to 30 bytes per value (a Pod review of a few KiB has a few
  // hundred values, a large one with managedFields a few thousand): a Pod at etcd's 1.5 MiB object
  // limit has ~80,000, its object and oldObject on an UPDATE ~160,000.
  maxValues: 200_000,
};

/** Kubernetes' TotalAnnotationSizeLimitB: keys and values of an object's annotations together. */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** Bodies up to this size are parsed as soon as they arrive; larger ones one at a time. */
export const SMALL_BODY_BYTES = 64 * 1024;

/** A body refused by a limit, with the uid of the review it claims to be: answered as a denial. */
export class RefusedReview {
  readonly uid: string;
  readonly error: JsonBodyError;
  constructor(uid: string, error: JsonBodyError) {
    this.uid = uid;
    this.error = error;
  }
}

/**
 * kube-apiserver must get an AdmissionReview back whenever the body can be taken for one: the
 * envelope fields it writes first, read before the refusal, say so.
 */
export function refusedReview(error: JsonBodyError): RefusedReview | undefined {
  const { apiVersion, kind, uid } = error.envelope;
  const looksLikeReview = apiVersion === "admission.k8s.io/v1" && kind === "AdmissionReview" && typeof uid === "string" && uid.length > 0 && uid.length <= 128;
  return looksLikeReview ? new RefusedReview(uid, error) : undefined;
}

/** The denial of a review whose body broke a limit. */
export function refusalResponse(refused: RefusedReview): AdmissionResponse {
  return {
    uid: refused.uid,
    allowed: false,
    status: { code: 400, reason: "BadRequest", message: `nadguard refused the review: ${refused.error.message}` },
    auditAnnotations: { [REASON_ANNOTATION]: refused.error.code },
  };
}

/**
 * Kubernetes refuses an object whose annotations exceed 256 KiB (ValidateAnnotations), but only
 * after the mutating webhooks have seen it; nadguard refuses it before any decision reads them.
 * Counts bytes as Kubernetes does, and stops counting at the limit.
 */
export function annotationsProblem(request: AdmissionRequest): AdmissionResponse | undefined {
  const annotations = (request.object as { metadata?: { annotations?: unknown } } | null | undefined)?.metadata?.annotations;
  if (typeof annotations !== "object" || annotations === null) return undefined;
  let total = 0;
  for (const key in annotations) {
    const value = (annotations as Record<string, unknown>)[key];
    total += Buffer.byteLength(key) + (typeof value === "string" ? Buffer.byteLength(value) : 0);
    if (total > MAX_ANNOTATIONS_BYTES) {
      return {
        uid: request.uid,
        allowed: false,
        status: {
          code: 422,
          reason: "Invalid",
          message: `nadguard refused the review: metadata.annotations: Too long: must have at most ${MAX_ANNOTATIONS_BYTES} bytes (Kubernetes' limit for an object's annotations)`,
        },
        auditAnnotations: { [REASON_ANNOTATION]: "annotations-too-long" },
      };
    }
  }
  return undefined;
}
