// The AdmissionReview response as kube-apiserver accepts it. It rejects a response whose uid
// differs from the request's, whose apiVersion/kind are not admission.k8s.io/v1 AdmissionReview, or
// that has `patch` without `patchType` or the reverse; it wants warnings under 120 characters and
// reads a denial's message from `status` (Kubernetes docs, Dynamic Admission Control, "Response").
// Handlers are trusted with the decision only: the envelope is built here.
import {
  ADMISSION_API_VERSION,
  ADMISSION_KIND,
  type AdmissionResponse,
  type AdmissionStatus,
} from "../src/api/admission-review.js";
import { MAX_WARNING } from "../src/admission/decision.js";
import { MAX_DENIAL_LENGTH } from "../src/admission/denial.js";
import { cutText } from "../src/api/text.js";
import type { Endpoint } from "./contract.js";

/** Each warning is cut to fewer than 120 characters (Kubernetes docs, Dynamic Admission Control, "Response"). */
export const MAX_WARNING_LENGTH = MAX_WARNING;
/**
 * The decisions build their denials within this size already (src/admission/denial.ts); the cap
 * here guards the envelope against any other handler's runaway text.
 */
const MAX_MESSAGE_LENGTH = MAX_DENIAL_LENGTH;

const ENVELOPE_HEAD = `{"apiVersion":${JSON.stringify(ADMISSION_API_VERSION)},"kind":${JSON.stringify(ADMISSION_KIND)},"response":`;

/** The AdmissionReview (AdmissionReviewResponse) carrying `response`, as JSON, with the constant envelope written once. */
export function serializeReview(response: AdmissionResponse): string {
  return `${ENVELOPE_HEAD}${JSON.stringify(response)}}`;
}

export function internalErrorResponse(uid: string, detail: string): AdmissionResponse {
  return {
    uid,
    allowed: false,
    status: { code: 500, reason: "InternalError", message: truncate(`nadguard internal error: ${detail}`, MAX_MESSAGE_LENGTH) },
  };
}

export function timeoutResponse(uid: string, budgetMs: number, timeoutMs: number): AdmissionResponse {
  return {
    uid,
    allowed: false,
    status: {
      code: 504,
      reason: "Timeout",
      message:
        `nadguard: the review timed out inside nadguard after ${budgetMs} ms ` +
        `(the API server allows ${timeoutMs} ms); denied rather than admitted unchecked`,
    },
  };
}

export type Finalized =
  | { ok: true; response: AdmissionResponse; notes: string[] }
  | { ok: false; error: string };

/**
 * Turns what a handler returned into a response kube-apiserver accepts: the request's uid,
 * `patch` only with `patchType` and only on an allowed mutation, warnings cut short. `notes` say
 * what was dropped or cut (worth a log line). Fails, so that the caller denies, when the value is
 * not a response or carries a patch that could not be applied: admitting the object without the
 * mutation the handler meant would be worse than a denial.
 */
export function finalizeResponse(uid: string, endpoint: Endpoint, value: unknown): Finalized {
  if (typeof value !== "object" || value === null) return { ok: false, error: `the ${endpoint} handler returned ${typeof value}, not a response` };
  const raw = value as Partial<AdmissionResponse>;
  if (typeof raw.allowed !== "boolean") return { ok: false, error: `the ${endpoint} handler returned a response without a boolean "allowed"` };

  const notes: string[] = [];
  const response: AdmissionResponse = { uid, allowed: raw.allowed };
  if (raw.uid !== undefined && raw.uid !== uid) notes.push(`replaced uid "${String(raw.uid)}" by the request's`);
  const status = normalizeStatus(raw.status);
  if (status) response.status = status;

  const patch = checkPatch(raw, endpoint);
  if (!patch.ok) return patch;
  if (patch.note) notes.push(patch.note);
  if (patch.patch !== undefined) {
    response.patch = patch.patch;
    response.patchType = "JSONPatch";
  }

  const warnings = normalizeWarnings(raw.warnings);
  if (warnings.cut > 0) notes.push(`cut ${warnings.cut} warning(s) to ${MAX_WARNING_LENGTH} characters`);
  if (warnings.list.length > 0) response.warnings = warnings.list;
  if (raw.auditAnnotations && Object.keys(raw.auditAnnotations).length > 0) response.auditAnnotations = raw.auditAnnotations;
  return { ok: true, response, notes };
}

type PatchCheck = { ok: true; patch?: string; note?: string } | { ok: false; error: string };

function checkPatch(raw: Partial<AdmissionResponse>, endpoint: Endpoint): PatchCheck {
  const hasPatch = raw.patch !== undefined && raw.patch !== "";
  if (!hasPatch) return raw.patchType === undefined ? { ok: true } : { ok: true, note: "dropped patchType without a patch" };
  if (!raw.allowed) return { ok: true, note: "dropped the patch of a denial" };
  if (endpoint === "validate") return { ok: true, note: "dropped a patch returned by the validate handler" };
  if (raw.patchType !== "JSONPatch") return { ok: false, error: `the mutate handler returned a patch with patchType ${JSON.stringify(raw.patchType)}, not "JSONPatch"` };
  if (!isBase64JsonArray(raw.patch)) return { ok: false, error: "the mutate handler returned a patch that is not base64 of a JSON Patch array" };
  return { ok: true, patch: raw.patch as string };
}

function isBase64JsonArray(patch: unknown): boolean {
  if (typeof patch !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(patch)) return false;
  try {
    return Array.isArray(JSON.parse(Buffer.from(patch, "base64").toString("utf8")));
  } catch {
    return false;
  }
}

function normalizeStatus(status: AdmissionStatus | undefined): AdmissionStatus | undefined {
  if (!status || typeof status !== "object") return undefined;
  const out: AdmissionStatus = {
    code: typeof status.code === "number" ? status.code : 403,
    message: truncate(String(status.message ?? ""), MAX_MESSAGE_LENGTH),
  };
  if (typeof status.reason === "string" && status.reason !== "") out.reason = status.reason;
  return out;
}

function normalizeWarnings(warnings: unknown): { list: string[]; cut: number } {
  if (!Array.isArray(warnings)) return { list: [], cut: 0 };
  let cut = 0;
  const list = warnings
    .filter((warning): warning is string => typeof warning === "string" && warning !== "")
    .map((warning) => {
      const short = truncate(warning, MAX_WARNING_LENGTH);
      if (short !== warning) cut += 1;
      return short;
    });
  return { list, cut };
}

/** cutText (src/api/text.ts) under the name the webhook's tests and callers know. */
export const truncate = cutText;
