// The time a review may take. kube-apiserver appends `?timeout=Ns` to every webhook call: the time
// left before it gives up, rounded UP to whole seconds (k8s.io/apiserver, the webhook dispatchers),
// so the real time left can be almost a second shorter than N. nadguard answers a little before
// that deadline with a denial of its own (fail closed) rather than let the API server time out.

/** timeoutSeconds of a webhook configuration is 1–30 (admissionregistration.k8s.io/v1); a longer budget is not believed. */
export const MAX_TIMEOUT_MS = 30_000;
/** kube-apiserver's default timeoutSeconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Answer this share of the budget early, to cover the rounding up and the way back. */
const MARGIN_SHARE = 0.1;
/** ...and never less than this. */
const MIN_MARGIN_MS = 100;

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const GO_DURATION = /^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const GO_DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * Parses a Go duration as kube-apiserver formats it (`10s`, `1m30s`, `500ms`, `1.5s`, `0`) into
 * milliseconds. Returns undefined for anything else, including a negative or empty value.
 */
export function parseGoDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (!GO_DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(GO_DURATION_PART)) {
    total += Number(amount) * (UNIT_MS[unit ?? ""] ?? Number.NaN);
  }
  return Number.isFinite(total) ? total : undefined;
}

export interface ReviewBudget {
  /** What the caller allows, clamped to 30 s. */
  timeoutMs: number;
  /** When nadguard stops waiting for the handler and answers with a timeout denial. */
  budgetMs: number;
  /** Where the timeout came from, for the log and the denial message. */
  source: "query" | "default";
}

/**
 * The budget of one review from its `timeout` query parameter (a string, or absent / malformed →
 * the default): the timeout minus max(10 %, 100 ms), never negative.
 */
export function reviewBudget(timeoutParam: unknown, defaultTimeoutMs: number = DEFAULT_TIMEOUT_MS): ReviewBudget {
  const parsed = typeof timeoutParam === "string" ? parseGoDuration(timeoutParam) : undefined;
  const timeoutMs = Math.min(parsed ?? defaultTimeoutMs, MAX_TIMEOUT_MS);
  const margin = Math.max(timeoutMs * MARGIN_SHARE, MIN_MARGIN_MS);
  return { timeoutMs, budgetMs: Math.max(0, Math.floor(timeoutMs - margin)), source: parsed === undefined ? "default" : "query" };
}

/**
 * reviewBudget for a webhook with this default, remembering the last `?timeout` it read:
 * kube-apiserver sends the same one (the configuration's timeoutSeconds) on every call.
 */
export function budgetCache(defaultTimeoutMs: number = DEFAULT_TIMEOUT_MS): (timeoutParam: unknown) => ReviewBudget {
  let lastParam: unknown;
  let last: ReviewBudget | undefined;
  return (timeoutParam) => {
    if (last === undefined || timeoutParam !== lastParam) {
      last = reviewBudget(timeoutParam, defaultTimeoutMs);
      lastParam = timeoutParam;
    }
    return last;
  };
}
