// What the rest of nadguard gives the webhook server and gets back: the review handlers, the
// options of buildWebhook/startWebhook, and the app type. The handlers are the pure admission
// decisions (src/admission); everything about HTTP, TLS, deadlines and the AdmissionReview
// envelope stays in webhook/.
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
} from "fastify";
import type { Registry } from "prom-client";
import type { AdmissionRequest, AdmissionResponse } from "../src/api/admission-review.js";

export interface ReviewContext {
  /** Aborted a little before kube-apiserver's deadline; after that the answer is a 504 denial. */
  signal: AbortSignal;
  /** Carries the review's uid, kind and operation on every line. */
  log: FastifyBaseLogger;
}

/**
 * Decides one admission request. The returned uid is ignored (the server echoes the request's);
 * `patch` must come with `patchType`. Throwing denies the request with a 500 status, it never
 * turns into an HTTP error.
 */
export type ReviewHandler = (
  request: AdmissionRequest,
  ctx: ReviewContext,
) => Promise<AdmissionResponse> | AdmissionResponse;

export interface WebhookOptions {
  mutate: ReviewHandler;
  validate: ReviewHandler;
  /** Readiness beyond "the process serves", e.g. "the cluster state is loaded". */
  isReady: () => boolean;
  /** PEM files, reloaded when they change. Absent: plain HTTP/1.1 (tests with app.inject()). */
  tls?: { certFile: string; keyFile: string };
  /** fastify's logger option: true for JSON logs at info, or pino options; default false. */
  logger?: boolean | object;
  /** Metrics go here; default a fresh registry per app (never prom-client's global one). */
  registry?: Registry;
  /** Time budget of a review when the request has no `?timeout=`; default 10 s (kube-apiserver's default timeoutSeconds). */
  defaultTimeoutMs?: number;
  /** Members and elements of one request body, all together (`--max-body-values`); default REVIEW_BODY_LIMITS.maxValues. */
  maxBodyValues?: number;
  /** Interval of the certificate files' stat fallback beside fs.watch; default 30 s. */
  tlsPollIntervalMs?: number;
}

/** The two review endpoints, also the `endpoint` label of the metrics (one type with the decisions'). */
export type { Endpoint } from "../src/admission/decision.js";

/** How a review ended; the `outcome` label of the metrics. */
export type Outcome = "allowed" | "denied" | "error" | "timeout";

/**
 * The app as buildWebhook returns it. The raw server is HTTP/2 over TLS in production and plain
 * HTTP/1.1 without TLS, so the type admits every fastify server kind.
 */
export type WebhookApp = FastifyInstance<
  RawServerBase,
  RawRequestDefaultExpression<RawServerBase>,
  RawReplyDefaultExpression<RawServerBase>,
  FastifyBaseLogger
>;
