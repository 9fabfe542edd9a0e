// AdmissionReview v1 (admission.k8s.io/v1), written from the Go json tags of k8s.io/api/admission/v1:
// @kubernetes/client-node has no types for it. The envelope is strict (kube-apiserver rejects a
// response that does not echo it exactly); the objects inside are passed through as unknown and
// parsed by whoever decides on them.
import { z } from "zod";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";
export const ADMISSION_KIND = "AdmissionReview";

const GroupVersionKind = z.object({ group: z.string(), version: z.string(), kind: z.string() });
const GroupVersionResource = z.object({ group: z.string(), version: z.string(), resource: z.string() });

export const UserInfo = z.object({
  username: z.string().optional(),
  uid: z.string().optional(),
  groups: z.array(z.string()).nullish(),
  extra: z.record(z.string(), z.array(z.string())).nullish(),
});
export type UserInfo = z.infer<typeof UserInfo>;

export const Operation = z.enum(["CREATE", "UPDATE", "DELETE", "CONNECT"]);
export type Operation = z.infer<typeof Operation>;

export const AdmissionRequest = z.object({
  uid: z.string().min(1),
  kind: GroupVersionKind,
  resource: GroupVersionResource,
  subResource: z.string().optional(),
  requestKind: GroupVersionKind.optional(),
  requestResource: GroupVersionResource.optional(),
  requestSubResource: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  operation: Operation,
  userInfo: UserInfo,
  object: z.unknown().optional(),
  oldObject: z.unknown().optional(),
  dryRun: z.boolean().optional(),
  options: z.unknown().optional(),
});
export type AdmissionRequest = z.infer<typeof AdmissionRequest>;

export const AdmissionReviewRequest = z.object({
  apiVersion: z.literal(ADMISSION_API_VERSION),
  kind: z.literal(ADMISSION_KIND),
  request: AdmissionRequest,
});
export type AdmissionReviewRequest = z.infer<typeof AdmissionReviewRequest>;

export interface AdmissionStatus {
  code: number;
  message: string;
  reason?: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  /** The denial; the wire key is `status`, not `result`. */
  status?: AdmissionStatus;
  /** base64 of an RFC 6902 JSON Patch; always together with patchType. */
  patch?: string;
  patchType?: "JSONPatch";
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReviewResponse {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: typeof ADMISSION_KIND;
  response: AdmissionResponse;
}
