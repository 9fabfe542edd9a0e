// AdmissionReview v1 (admission.k8s.io/v1), written from the Go json tags of k8s.io/api/admission/v1:
// @kubernetes/client-node has no types for it. The envelope is strict (kube-apiserver rejects a
// response that does not echo it exactly), and bounded: every string and list in it has a
// length no review from kube-apiserver comes near, so that a hostile body cannot make its parse,
// its problems or its log line large. The objects inside are passed through as unknown and parsed
// by whoever decides on them.
import { z } from "zod";

export const ADMISSION_API_VERSION = "admission.k8s.io/v1";
export const ADMISSION_KIND = "AdmissionReview";

/** Bounds of the envelope's strings and lists (README, "Limits"). */
export const ENVELOPE_LIMITS = {
  /** kube-apiserver's request uids are UUIDs (36 characters). */
  uid: 128,
  /** Names, namespaces, groups, versions, kinds and resources: a DNS subdomain is at most 253. */
  name: 253,
  /** User names, user uids, group names and extra values, as an authenticator gives them. */
  userString: 4096,
  /** Groups of the requesting user. */
  groups: 10_000,
  /** Keys of userInfo.extra, and values per key. */
  extra: 1_000,
} as const;

const name = z.string().max(ENVELOPE_LIMITS.name);
const GroupVersionKind = z.object({ group: name, version: name, kind: name });
const GroupVersionResource = z.object({ group: name, version: name, resource: name });

/**
 * A list of strings of at most `maxItems` items of at most `maxLength` characters. Reports only the
 * first bad item: a list of a million numbers is one problem, not a million.
 */
function stringList(maxItems: number, maxLength: number) {
  return z
    .array(z.unknown())
    .max(maxItems)
    .transform((items, ctx): string[] => {
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        if (typeof item !== "string" || item.length > maxLength) {
          const message = typeof item === "string" ? `Too big: expected string to have <=${maxLength} characters` : `Invalid input: expected string, received ${item === null ? "null" : typeof item}`;
          ctx.issues.push({ code: "custom", path: [i], message, input: item });
          return z.NEVER;
        }
      }
      return items as string[];
    });
}

/** At most `maxKeys` keys, counted before the values are parsed. */
function hasAtMostKeys(value: unknown, maxKeys: number): boolean {
  if (typeof value !== "object" || value === null) return true;
  let keys = 0;
  for (const _ in value) if (++keys > maxKeys) return false;
  return true;
}

const userString = z.string().max(ENVELOPE_LIMITS.userString);

export const UserInfo = z.object({
  username: userString.optional(),
  uid: userString.optional(),
  groups: stringList(ENVELOPE_LIMITS.groups, ENVELOPE_LIMITS.userString).nullish(),
  extra: z
    .unknown()
    .refine((value) => hasAtMostKeys(value, ENVELOPE_LIMITS.extra), { message: `Too big: expected at most ${ENVELOPE_LIMITS.extra} keys`, abort: true })
    .pipe(z.record(userString, stringList(ENVELOPE_LIMITS.extra, ENVELOPE_LIMITS.userString)))
    .nullish(),
});
export type UserInfo = z.infer<typeof UserInfo>;

export const Operation = z.enum(["CREATE", "UPDATE", "DELETE", "CONNECT"]);
export type Operation = z.infer<typeof Operation>;

export const AdmissionRequest = z.object({
  uid: z.string().min(1).max(ENVELOPE_LIMITS.uid),
  kind: GroupVersionKind,
  resource: GroupVersionResource,
  subResource: name.optional(),
  requestKind: GroupVersionKind.optional(),
  requestResource: GroupVersionResource.optional(),
  requestSubResource: name.optional(),
  name: name.optional(),
  namespace: name.optional(),
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
