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

type Obj = Record<string, unknown>;

const isPlainObject = (value: unknown): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value);
const isName = (value: unknown): value is string => typeof value === "string" && value.length <= ENVELOPE_LIMITS.name;
const isUserString = (value: unknown): value is string => typeof value === "string" && value.length <= ENVELOPE_LIMITS.userString;
const OPERATIONS: ReadonlySet<unknown> = new Set(Operation.options);

function isStringList(value: unknown, maxItems: number): value is string[] {
  if (!Array.isArray(value) || value.length > maxItems) return false;
  for (let i = 0; i < value.length; i++) if (!isUserString(value[i])) return false;
  return true;
}

/** A GroupVersionKind or GroupVersionResource (`last` is "kind" or "resource"), without its other keys; undefined when not one. */
function groupVersion(value: unknown, last: "kind" | "resource"): Obj | undefined {
  if (!isPlainObject(value) || !isName(value.group) || !isName(value.version) || !isName(value[last])) return undefined;
  return { group: value.group, version: value.version, [last]: value[last] };
}

/** The keys `keys` of `from` that are present, copied to `to` when each passes `valid`; false when one does not. */
function copyPresent(from: Obj, to: Obj, keys: readonly string[], valid: (value: unknown) => boolean): boolean {
  for (const key of keys) {
    const value = from[key];
    if (value === undefined) continue;
    if (!valid(value)) return false;
    to[key] = value;
  }
  return true;
}

/** userInfo.extra copied, null kept; undefined when it breaks a rule. */
function readExtra(extra: unknown): Record<string, string[]> | null | undefined {
  if (extra === null || !isPlainObject(extra)) return extra === null ? null : undefined;
  const copy: Record<string, string[]> = {};
  let keys = 0;
  for (const key in extra) {
    const values = extra[key];
    if (++keys > ENVELOPE_LIMITS.extra || key.length > ENVELOPE_LIMITS.userString || key === "__proto__" || !isStringList(values, ENVELOPE_LIMITS.extra)) return undefined;
    copy[key] = values;
  }
  return copy;
}

function readUserInfo(value: unknown): UserInfo | undefined {
  if (!isPlainObject(value)) return undefined;
  const out: Obj = {};
  if (!copyPresent(value, out, ["username", "uid"], isUserString)) return undefined;
  const { groups, extra } = value;
  if (groups !== undefined && groups !== null && !isStringList(groups, ENVELOPE_LIMITS.groups)) return undefined;
  if (groups !== undefined) out.groups = groups;
  if (extra !== undefined) {
    const read = readExtra(extra);
    if (read === undefined) return undefined;
    out.extra = read;
  }
  return out as UserInfo;
}

const OPTIONAL_NAMES = ["requestSubResource", "name", "namespace"] as const;

/** requestKind and requestResource, when present, copied to `to` (in the schema's order of keys); false when one is not valid. */
function copyOptionalGroupVersions(from: Obj, to: Obj): boolean {
  for (const [key, last] of [["requestKind", "kind"], ["requestResource", "resource"]] as const) {
    if (from[key] === undefined) continue;
    const read = groupVersion(from[key], last);
    if (!read) return false;
    to[key] = read;
  }
  return true;
}

const isUid = (value: unknown): value is string => typeof value === "string" && value.length >= 1 && value.length <= ENVELOPE_LIMITS.uid;
const isOptional = (value: unknown, type: "boolean"): boolean => value === undefined || typeof value === type;

/** The request of a review as AdmissionRequest parses it, or undefined when anything is off (the schema then says what). */
function readRequest(value: unknown): AdmissionRequest | undefined {
  if (!isPlainObject(value)) return undefined;
  const { uid, operation } = value;
  if (!isUid(uid) || !OPERATIONS.has(operation) || !isOptional(value.dryRun, "boolean")) return undefined;
  const kind = groupVersion(value.kind, "kind");
  const resource = groupVersion(value.resource, "resource");
  const userInfo = readUserInfo(value.userInfo);
  if (!kind || !resource || !userInfo) return undefined;
  const out: Obj = { uid, kind, resource };
  if (!copyPresent(value, out, ["subResource"], isName) || !copyOptionalGroupVersions(value, out)) return undefined;
  if (!copyPresent(value, out, OPTIONAL_NAMES, isName)) return undefined;
  out.operation = operation;
  out.userInfo = userInfo;
  for (const key of ["object", "oldObject", "dryRun", "options"]) if (key in value) out[key] = value[key];
  return out as AdmissionRequest;
}

/**
 * AdmissionReviewRequest.safeParse with a fast path: a review as kube-apiserver sends it is read
 * by hand, checked against every rule of the schema and copied without the keys the schema strips
 * (what the schema's parse returns, at a fraction of its cost on the webhook's hot path). Anything
 * the fast path does not accept goes through the schema itself, so that a bad body gets the
 * schema's problems, word for word.
 */
export function parseAdmissionReview(body: unknown): z.ZodSafeParseResult<AdmissionReviewRequest> {
  if (isPlainObject(body) && body.apiVersion === ADMISSION_API_VERSION && body.kind === ADMISSION_KIND) {
    const request = readRequest(body.request);
    if (request) return { success: true, data: { apiVersion: ADMISSION_API_VERSION, kind: ADMISSION_KIND, request } };
  }
  return AdmissionReviewRequest.safeParse(body);
}
