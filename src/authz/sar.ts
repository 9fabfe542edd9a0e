// The `rbac` authorization mode in a cluster: an AccessReviewer that asks
// kube-apiserver through SubjectAccessReview (authorization.k8s.io/v1), so that every authorizer
// of the cluster (RBAC, webhook, Node…) decides, not nadguard's offline copy of RBAC. It runs on
// the admission hot path: answers are cached briefly, keyed on every attribute sent (user,
// groups, uid, extra, verb, group, resource, subresource, name, namespace), concurrent
// identical questions share one request, and a cache hit answers synchronously. When the API
// cannot answer, the configured failure policy decides (default fail-closed), and the failure
// is logged and counted; failures are never cached. A review's caller passes the deadline of its
// decision: once every caller waiting on a request has given up, the HTTP request is aborted, so
// no SubjectAccessReview outlives the admission review that asked it.
import type { KubeConfig, V1SubjectAccessReview } from "@kubernetes/client-node";
import { Counter, Histogram, type Registry } from "prom-client";
import type { AccessReviewer } from "./nad-access.js";
import type { AccessAttributes, AccessResult } from "./rbac.js";
import { kubeRequest } from "./kube-http.js";

export type FailurePolicy = "fail-closed" | "fail-open";
export const FAILURE_POLICIES: readonly FailurePolicy[] = ["fail-closed", "fail-open"];

/** AccessAttributes plus what a SubjectAccessReview also carries about the user, when known. */
export interface SarAttributes extends AccessAttributes {
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** What the API server answered (SubjectAccessReview.status). */
export interface SarStatus {
  readonly allowed: boolean;
  readonly denied?: boolean;
  readonly reason?: string;
  readonly evaluationError?: string;
}

/** Sends one SubjectAccessReview; the seam between the cache and the API. */
export type SarSender = (review: V1SubjectAccessReview, signal: AbortSignal) => Promise<SarStatus>;

export interface SarReviewerOptions {
  /** What an API failure means; default `fail-closed` (the review counts as not granted). */
  readonly failurePolicy?: FailurePolicy;
  /** How long an allow is reused; default 10 s (RBAC revocations take effect within it). */
  readonly allowedTtlMs?: number;
  /** How long a denial is reused; default 3 s (a fresh grant takes effect within it). */
  readonly deniedTtlMs?: number;
  /** Cached answers at most, least recently used evicted first; default 10,000. */
  readonly maxEntries?: number;
  /** Limit of one request; default 3 s (a whole webhook call gets 10 s by default: `timeoutSeconds`, Kubernetes docs, Dynamic Admission Control). */
  readonly timeoutMs?: number;
  readonly registry?: Registry;
  readonly log?: (line: string) => void;
  /** Clock, for tests. */
  readonly now?: () => number;
}

export interface SarReviewer extends AccessReviewer {
  /**
   * A cached answer synchronously, else a promise of the API's (or the failure policy's). When
   * `signal` aborts the promise rejects with its reason, and the request is aborted once no other
   * caller waits for the same answer.
   */
  review(attrs: AccessAttributes, signal?: AbortSignal): AccessResult | Promise<AccessResult>;
  /** Cached answers (expired ones included until evicted or looked up). */
  size(): number;
  clear(): void;
}

/** Where SubjectAccessReviews are created. */
const SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

export const SAR_DEFAULTS = {
  failurePolicy: "fail-closed" as FailurePolicy,
  allowedTtlMs: 10_000,
  deniedTtlMs: 3_000,
  maxEntries: 10_000,
  timeoutMs: 3_000,
};

/** The SubjectAccessReview asked for a set of attributes. */
export function subjectAccessReviewFor(attrs: SarAttributes): V1SubjectAccessReview {
  const extra = attrs.extra && Object.keys(attrs.extra).length > 0
    ? Object.fromEntries(Object.entries(attrs.extra).map(([key, values]) => [key, [...values]]))
    : undefined;
  return {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: attrs.user,
      groups: [...attrs.groups],
      ...(attrs.uid !== undefined && { uid: attrs.uid }),
      ...(extra !== undefined && { extra }),
      resourceAttributes: {
        verb: attrs.verb,
        group: attrs.apiGroup,
        resource: attrs.resource,
        ...(attrs.subresource !== undefined && { subresource: attrs.subresource }),
        ...(attrs.name !== undefined && { name: attrs.name }),
        ...(attrs.namespace !== undefined && { namespace: attrs.namespace }),
      },
    },
  } as V1SubjectAccessReview;
}

/**
 * The cache key: every attribute the review sends. Groups and extra are sets for an authorizer,
 * so their order does not split the cache; JSON keeps values with separators apart.
 */
export function cacheKey(attrs: SarAttributes): string {
  const extra = Object.entries(attrs.extra ?? {})
    .map(([key, values]) => [key, [...values].sort()] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([
    attrs.user,
    [...attrs.groups].sort(),
    attrs.uid ?? null,
    extra,
    attrs.verb,
    attrs.apiGroup,
    attrs.resource,
    attrs.subresource ?? "",
    attrs.name ?? null,
    attrs.namespace ?? "",
  ]);
}

/**
 * Sends reviews as one POST each (kube-http.ts: the kubeconfig's credentials, plain JSON), not
 * through client-node's AuthorizationV1Api, whose serializer loads every generated model class
 * (about 28 MiB of the webhook's RSS); the signal aborts the request.
 */
export function apiSender(kubeConfig: KubeConfig): SarSender {
  return async (review, signal) => {
    let answer: V1SubjectAccessReview;
    try {
      answer = await kubeRequest<V1SubjectAccessReview>(kubeConfig, { method: "POST", path: SAR_PATH, body: review, signal });
    } catch (error) {
      // The abort's own reason (a TimeoutError for the deadline), not the transport's AbortError.
      if (signal.aborted) throw signal.reason;
      throw error;
    }
    const status = answer.status;
    if (!status || typeof status.allowed !== "boolean") throw new Error("the SubjectAccessReview answer has no status.allowed");
    return {
      allowed: status.allowed,
      ...(status.denied !== undefined && { denied: status.denied }),
      ...(status.reason !== undefined && { reason: status.reason }),
      ...(status.evaluationError !== undefined && { evaluationError: status.evaluationError }),
    };
  };
}

interface Entry {
  readonly result: AccessResult;
  readonly expiresAt: number;
}

/** A request in flight and the callers waiting for it. */
interface Inflight {
  readonly answer: Promise<AccessResult>;
  /** Aborts the HTTP request. */
  readonly controller: AbortController;
  /** Callers still waiting; one without a signal never gives up (counts as Infinity). */
  waiting: number;
}

interface SarMetrics {
  request(outcome: "allowed" | "denied" | "error" | "abandoned", seconds: number): void;
  lookup(result: "hit" | "miss" | "shared"): void;
}

function reuse<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function sarMetrics(registry: Registry | undefined): SarMetrics | undefined {
  if (!registry) return undefined;
  const requests = reuse(registry, "nadguard_subjectaccessreview_requests_total", () =>
    new Counter({
      name: "nadguard_subjectaccessreview_requests_total",
      help: "SubjectAccessReviews sent, by outcome: allowed, denied, error (the failure policy decided), abandoned (aborted: every review that asked ran out of time).",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
  );
  const duration = reuse(registry, "nadguard_subjectaccessreview_duration_seconds", () =>
    new Histogram({
      name: "nadguard_subjectaccessreview_duration_seconds",
      help: "Time of one SubjectAccessReview request, by outcome.",
      labelNames: ["outcome"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  );
  const lookups = reuse(registry, "nadguard_subjectaccessreview_cache_total", () =>
    new Counter({
      name: "nadguard_subjectaccessreview_cache_total",
      help: "Access reviews by cache result: hit, miss (a request was sent), shared (joined a request in flight).",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
  );
  return {
    request: (outcome, seconds) => {
      requests.inc({ outcome });
      duration.observe({ outcome }, seconds);
    },
    lookup: (result) => lookups.inc({ result }),
  };
}

/** Why a request failed, in one line: the Status message when the API sent one. */
export function describeFailure(error: unknown): string {
  const e = error as { code?: unknown; body?: unknown; name?: string; message?: string } | null;
  if (e && typeof e.code === "number" && e.body !== undefined) {
    const body = typeof e.body === "string" ? safeJson(e.body) : e.body;
    const message = (body as { message?: unknown } | null)?.message;
    return `HTTP ${e.code}${typeof message === "string" && message ? `: ${message}` : ""}`;
  }
  if (e?.name === "TimeoutError") return "no answer in time";
  const cause = (error as { cause?: { message?: string; code?: string } } | null)?.cause;
  const base = e?.message ?? String(error);
  return cause?.code || cause?.message ? `${base} (${cause.code ?? cause.message})` : base;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}

/**
 * An AccessReviewer over SubjectAccessReview. `send` defaults to the API of `kubeConfig`; tests
 * and embedders may give their own.
 */
export function sarReviewer(source: KubeConfig | SarSender, options: SarReviewerOptions = {}): SarReviewer {
  const send = typeof source === "function" ? source : apiSender(source);
  const settings = {
    failurePolicy: options.failurePolicy ?? SAR_DEFAULTS.failurePolicy,
    allowedTtlMs: options.allowedTtlMs ?? SAR_DEFAULTS.allowedTtlMs,
    deniedTtlMs: options.deniedTtlMs ?? SAR_DEFAULTS.deniedTtlMs,
    maxEntries: Math.max(1, options.maxEntries ?? SAR_DEFAULTS.maxEntries),
    timeoutMs: options.timeoutMs ?? SAR_DEFAULTS.timeoutMs,
  };
  const now = options.now ?? Date.now;
  const log = options.log ?? ((): void => undefined);
  const metrics = sarMetrics(options.registry);
  const cache = new Map<string, Entry>();
  const inflight = new Map<string, Inflight>();

  const remember = (key: string, result: AccessResult): void => {
    const ttl = result.allowed ? settings.allowedTtlMs : settings.deniedTtlMs;
    if (ttl <= 0) return;
    cache.delete(key);
    cache.set(key, { result, expiresAt: now() + ttl });
    // Map iteration order is insertion order: the first key is the least recently used.
    while (cache.size > settings.maxEntries) cache.delete(cache.keys().next().value as string);
  };

  const lookup = (key: string): AccessResult | undefined => {
    const entry = cache.get(key);
    if (!entry) return undefined;
    cache.delete(key);
    if (entry.expiresAt <= now()) return undefined;
    cache.set(key, entry);
    return entry.result;
  };

  const ask = async (key: string, attrs: SarAttributes, abandoned: AbortSignal): Promise<AccessResult> => {
    const started = performance.now();
    const seconds = (): number => (performance.now() - started) / 1000;
    try {
      const signal = AbortSignal.any([abandoned, AbortSignal.timeout(settings.timeoutMs)]);
      const status = await send(subjectAccessReviewFor(attrs), signal);
      if (status.evaluationError) log(`SubjectAccessReview for ${describe(attrs)}: evaluation error: ${status.evaluationError}`);
      const result: AccessResult = status.allowed ? { allowed: true, grantedBy: status.reason || "SubjectAccessReview" } : { allowed: false };
      metrics?.request(status.allowed ? "allowed" : "denied", seconds());
      remember(key, result);
      return result;
    } catch (error) {
      metrics?.request(abandoned.aborted ? "abandoned" : "error", seconds());
      if (abandoned.aborted) {
        // Nobody waits for it any more: no failure policy applies, and nothing is wrong with the API.
        log(`SubjectAccessReview abandoned after ${Math.round(seconds() * 1000)} ms: the reviews that asked ran out of time (for ${describe(attrs)})`);
        throw abandoned.reason;
      }
      const reason = `SubjectAccessReview failed: ${describeFailure(error)}`;
      log(`${reason} (for ${describe(attrs)}; ${settings.failurePolicy})`);
      if (settings.failurePolicy === "fail-open") return { allowed: true, grantedBy: `failure policy fail-open (${reason})` };
      throw new Error(`${reason} (failure policy fail-closed)`);
    }
  };

  /** The shared answer for this caller: rejects when its own signal aborts, and gives up the request when it was the last one waiting. */
  const wait = (key: string, entry: Inflight, signal: AbortSignal | undefined): Promise<AccessResult> => {
    if (!signal) {
      entry.waiting = Infinity;
      return entry.answer;
    }
    entry.waiting += 1;
    return new Promise<AccessResult>((resolve, reject) => {
      const onAbort = (): void => {
        entry.waiting -= 1;
        if (entry.waiting === 0) {
          // A caller arriving now asks anew rather than join a request being aborted.
          if (inflight.get(key) === entry) inflight.delete(key);
          entry.controller.abort(signal.reason);
        }
        reject(signal.reason as Error);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      entry.answer.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  };

  return {
    kind: "subjectaccessreview",
    review(attrs, signal) {
      const key = cacheKey(attrs);
      const cached = lookup(key);
      if (cached) {
        metrics?.lookup("hit");
        return cached;
      }
      // The review that asks is over: no request for it.
      if (signal?.aborted) return Promise.reject(signal.reason as Error);
      const running = inflight.get(key);
      if (running) {
        metrics?.lookup("shared");
        return wait(key, running, signal);
      }
      metrics?.lookup("miss");
      const controller = new AbortController();
      const entry: Inflight = {
        answer: ask(key, attrs, controller.signal).finally(() => {
          if (inflight.get(key) === entry) inflight.delete(key);
        }),
        controller,
        waiting: 0,
      };
      // A caller that gave up has its own rejection; the request's is handled here.
      entry.answer.catch(() => undefined);
      inflight.set(key, entry);
      return wait(key, entry, signal);
    },
    size: () => cache.size,
    clear: () => cache.clear(),
  };
}

function describe(attrs: SarAttributes): string {
  const target = attrs.namespace ? `${attrs.namespace}/${attrs.name ?? "*"}` : (attrs.name ?? "*");
  return `${attrs.user} ${attrs.verb} ${attrs.resource}.${attrs.apiGroup} ${target}`;
}
