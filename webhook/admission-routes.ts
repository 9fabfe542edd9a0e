// POST /mutate and POST /validate: AdmissionReview v1 in, AdmissionReview v1 out. A body that is
// not an AdmissionReview is the caller's mistake and gets a 4xx naming where it is wrong; a
// well-formed review always gets HTTP 200 with a response, whatever the handler does.
import type {
  FastifyError,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  RawServerBase,
  RouteGenericInterface,
} from "fastify";
import { type AdmissionRequest, type AdmissionResponse, parseAdmissionReview } from "../src/api/admission-review.js";
import { type Problem, type ProblemCode, formatProblem, problemsFromZod } from "../src/api/errors.js";
import { BodyChecker } from "./body-check.js";
import { BodyError, reviewBodyParser } from "./body-parser.js";
import type { Endpoint, Outcome, ReviewHandler } from "./contract.js";
import type { JsonLimits } from "./json-body.js";
import { RefusedReview, annotationsProblem, refusalResponse } from "./limits.js";
import type { WebhookMetrics } from "./metrics.js";
import { serializeReview, timeoutResponse } from "./response.js";
import { runReview } from "./review.js";
import { type ReviewBudget, budgetCache } from "./timeout.js";
import { REASON_ANNOTATION } from "../src/admission/decision.js";

declare module "fastify" {
  interface FastifyRequest {
    /** performance.now() when the request arrived: a review's time budget runs from here. */
    receivedAt: number;
    /** The review's budget, from its ?timeout (read once: the body parser and the route both need it). */
    budget: ReviewBudget | undefined;
  }
}

/** Problems listed in a 400 answer; the rest are counted. */
const MAX_PROBLEMS = 20;

export interface AdmissionRoutesOptions {
  handlers: Record<Endpoint, ReviewHandler>;
  defaultTimeoutMs: number;
  /** What a body may hold (REVIEW_BODY_LIMITS, with the webhook's options applied). */
  limits: JsonLimits;
}

/** The JSON body of every 4xx answer of these routes. */
export interface RequestErrorBody {
  code: ProblemCode;
  message: string;
  problems: Problem[];
}

type Request = FastifyRequest<RouteGenericInterface, RawServerBase>;
type Reply = FastifyReply<RouteGenericInterface, RawServerBase>;

export const admissionRoutes: FastifyPluginAsync<AdmissionRoutesOptions, RawServerBase> = async (app, options) => {
  // kube-apiserver sends application/json only; without this, a text/plain body would be parsed
  // as a string and reported as a schema problem instead of the wrong media type it is.
  app.removeContentTypeParser("text/plain");
  app.decorateRequest("receivedAt", 0);
  app.decorateRequest("budget", undefined);
  // A callback hook: an async one costs a promise and its resolution on every request.
  app.addHook("onRequest", (request, _reply, done) => {
    request.receivedAt = performance.now();
    done();
  });
  const budgets = budgetCache(options.defaultTimeoutMs);
  const budgetOf = (request: Request): ReviewBudget => (request.budget ??= budgets(queryParam(request.query, "timeout")));
  // In place of fastify's JSON.parse of the whole body at once (webhook/json-body.ts says why).
  app.removeContentTypeParser("application/json");
  const checker = new BodyChecker();
  app.addHook("onClose", async () => checker.close());
  app.addContentTypeParser(
    "application/json",
    reviewBodyParser({ limits: options.limits, checker, deadlineOf: (request) => request.receivedAt + budgetOf(request).budgetMs }),
  );
  app.setErrorHandler(answerRequestError);

  for (const endpoint of ["mutate", "validate"] as const) {
    app.post(`/${endpoint}`, reviewRoute(app.webhookMetrics, endpoint, options.handlers[endpoint], budgetOf));
  }
};

function reviewRoute(metrics: WebhookMetrics, endpoint: Endpoint, handler: ReviewHandler, budgetOf: (request: Request) => ReviewBudget) {
  return async (request: Request, reply: Reply): Promise<Reply> => {
    const started = performance.now();
    const budget = budgetOf(request);
    if (request.body instanceof RefusedReview) {
      const refused = request.body;
      const deadline = refused.error.code === "deadline";
      const response = deadline ? timeoutResponse(refused.uid, budget.budgetMs, budget.timeoutMs) : refusalResponse(refused);
      return answer({ reply, metrics, endpoint, log: new ReviewLog(request.log, { uid: refused.uid }), started, budget }, { response, outcome: deadline ? "timeout" : "denied" });
    }
    const parsed = parseAdmissionReview(request.body);
    if (!parsed.success) {
      metrics.observeMalformed(endpoint);
      const problems = problemsFromZod(parsed.error, "", "review.schema");
      return sendRequestError(request, reply, { status: 400, code: "review.malformed", summary: "the body is not an AdmissionReview admission.k8s.io/v1", problems });
    }
    const review = parsed.data.request;
    const log = new ReviewLog(request.log, reviewLogBindings(review));
    const refused = annotationsProblem(review);
    const result = refused
      ? { response: refused, outcome: "denied" as const }
      : await runReview(handler, review, endpoint, {
          budget,
          get log() {
            return log.child;
          },
          receivedAt: request.receivedAt,
        });
    return answer({ reply, metrics, endpoint, log, started, budget }, result);
  };
}

/** One review being answered: where the answer goes, what it is counted and logged under, when it started. */
interface ReviewCall {
  reply: Reply;
  metrics: WebhookMetrics;
  endpoint: Endpoint;
  log: ReviewLog;
  /** performance.now() when the route started. */
  started: number;
  budget: ReviewBudget;
}

function answer({ reply, metrics, endpoint, log, started, budget }: ReviewCall, { response, outcome }: { response: AdmissionResponse; outcome: Outcome }): Reply {
  const seconds = (performance.now() - started) / 1000;
  metrics.observeReview(endpoint, outcome, seconds, response);
  log.line(() => ({
      endpoint,
      outcome,
      allowed: response.allowed,
      code: response.status?.code,
      reason: response.auditAnnotations?.[REASON_ANNOTATION] ?? response.status?.reason,
      patched: response.patch !== undefined,
      durationMs: Math.round(seconds * 1e6) / 1e3,
      timeoutMs: budget.timeoutMs,
    }),
  );
  return reply.code(200).type("application/json").send(serializeReview(response));
}

/**
 * The log of one review: its bindings (uid, kind, operation…) on every line. The one line every
 * review writes carries them itself; the child logger that would bind them is made only when a
 * handler or the review's own error path logs more (a child per review is a measurable share of the
 * hot path).
 */
class ReviewLog {
  readonly #parent: Request["log"];
  readonly #bindings: Record<string, unknown>;
  #child: Request["log"] | undefined;
  constructor(parent: Request["log"], bindings: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  /** The logger with the review's bindings. */
  get child(): Request["log"] {
    return (this.#child ??= this.#parent.child(this.#bindings));
  }

  /** The review's info line; `fields` is called only when info lines are written. */
  line(fields: () => Record<string, unknown>): void {
    const parent = this.#parent as Request["log"] & { isLevelEnabled?: (level: string) => boolean };
    if (parent.isLevelEnabled && !parent.isLevelEnabled("info")) return;
    if (this.#child) this.#child.info(fields(), "admission review");
    else parent.info({ ...this.#bindings, ...fields() }, "admission review");
  }
}

function reviewLogBindings(review: AdmissionRequest): Record<string, unknown> {
  const { group, version, kind } = review.kind;
  return {
    uid: review.uid,
    kind: group ? `${group}/${version}/${kind}` : `${version}/${kind}`,
    operation: review.operation,
    namespace: review.namespace,
    name: review.name,
    dryRun: review.dryRun,
  };
}

function queryParam(query: unknown, name: string): unknown {
  return typeof query === "object" && query !== null ? (query as Record<string, unknown>)[name] : undefined;
}

/** Body-parser errors (too large, not JSON, over a limit, wrong media type) in the same shape as schema problems. */
function answerRequestError(error: FastifyError | BodyError, request: Request, reply: Reply): Reply {
  const status = error.statusCode ?? 500;
  if (status >= 500) {
    request.log.error({ err: error }, "admission route failed");
    return sendRequestError(request, reply, { status: 500, code: "review.internal", summary: "nadguard could not process the request", problems: [] });
  }
  const code = error instanceof BodyError ? error.code : (REQUEST_ERROR_CODES[error.code] ?? "review.bad-request");
  const path = error instanceof BodyError ? error.path : "";
  return sendRequestError(request, reply, { status, code, summary: error.message, problems: [{ code, path, message: error.message }] });
}

const REQUEST_ERROR_CODES: Record<string, ProblemCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "review.too-large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "review.unsupported-media-type",
  FST_ERR_CTP_EMPTY_JSON_BODY: "review.invalid-json",
  FST_ERR_CTP_INVALID_JSON_BODY: "review.invalid-json",
};

/** A request refused before any review: its HTTP status, problem code, one-line summary and the problems found. */
interface RequestError {
  status: number;
  code: ProblemCode;
  summary: string;
  problems: Problem[];
}

function sendRequestError(request: Request, reply: Reply, { status, code, summary, problems }: RequestError): Reply {
  // However many problems a hostile body has, the answer and the log line stay small.
  const listed = problems.slice(0, MAX_PROBLEMS);
  const more = problems.length > listed.length ? `; and ${(problems.length - listed.length).toLocaleString("en-US")} more` : "";
  const message = listed.length > 0 && code === "review.malformed" ? `${summary}: ${listed.map(formatProblem).join("; ")}${more}` : summary;
  request.log.warn({ status, code, problems: listed, url: request.url }, "rejected a request that is not an admission review");
  const body: RequestErrorBody = { code, message, problems: listed };
  return reply.code(status).type("application/json").send(body);
}
