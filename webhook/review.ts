// One admission review, transport aside: runs the handler under the review's deadline and turns
// whatever happens (an answer, a throw, a hang) into a response kube-apiserver accepts. It never
// fails: a well-formed review always gets an AdmissionReview back (fail closed on nadguard's side
// instead of leaving the outcome to the webhook's failurePolicy).
import type { FastifyBaseLogger } from "fastify";
import type { AdmissionRequest, AdmissionResponse } from "../src/api/admission-review.js";
import type { Endpoint, Outcome, ReviewHandler } from "./contract.js";
import { finalizeResponse, internalErrorResponse, timeoutResponse } from "./response.js";
import type { ReviewBudget } from "./timeout.js";

export interface ReviewResult {
  response: AdmissionResponse;
  outcome: Outcome;
}

type Settled = { kind: "value"; value: unknown } | { kind: "error"; error: unknown } | { kind: "timeout" };

export async function runReview(
  handler: ReviewHandler,
  request: AdmissionRequest,
  endpoint: Endpoint,
  context: { budget: ReviewBudget; log: FastifyBaseLogger; receivedAt?: number },
): Promise<ReviewResult> {
  const { budget } = context;
  // The budget runs from the request's arrival: reading and parsing its body took part of it.
  const left = Math.max(0, budget.budgetMs - (performance.now() - (context.receivedAt ?? performance.now())));
  // Created only when the handler asks for it: most never do, and an AbortController per review is
  // a measurable share of the hot path (allocation and GC). The log too (context.log may make it).
  let controller: AbortController | undefined;
  const reviewContext = {
    get log(): FastifyBaseLogger {
      return context.log;
    },
    get signal(): AbortSignal {
      controller ??= new AbortController();
      return controller.signal;
    },
  };
  const started = performance.now();
  // One promise settled by whichever comes first, the handler or the deadline (a Promise.race
  // would add three). A handler that throws synchronously is caught like one that rejects; after
  // a timeout, a late answer or rejection is logged, never unhandled.
  const settled = await new Promise<Settled>((resolve) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      resolve({ kind: "timeout" });
    }, left);
    const settle = (outcome: Settled): void => {
      if (timedOut) {
        context.log.warn({ lateMs: Math.round(performance.now() - started), late: outcome.kind }, "review handler finished after its timeout");
        return;
      }
      clearTimeout(timer);
      resolve(outcome);
    };
    let work: unknown;
    try {
      work = handler(request, reviewContext);
    } catch (error) {
      settle({ kind: "error", error });
      return;
    }
    Promise.resolve(work).then(
      (value) => settle({ kind: "value", value }),
      (error: unknown) => settle({ kind: "error", error }),
    );
  });

  const log = context.log;
  if (settled.kind === "timeout") {
    controller?.abort(new DOMException(`the review's ${budget.budgetMs} ms budget ran out`, "TimeoutError"));
    log.warn({ budgetMs: budget.budgetMs, timeoutMs: budget.timeoutMs }, "review handler did not answer in time; denied");
    return { response: timeoutResponse(request.uid, budget.budgetMs, budget.timeoutMs), outcome: "timeout" };
  }
  if (settled.kind === "error") {
    log.error({ err: settled.error }, "review handler threw; denied");
    return { response: internalErrorResponse(request.uid, describe(settled.error)), outcome: "error" };
  }

  const finalized = finalizeResponse(request.uid, endpoint, settled.value);
  if (!finalized.ok) {
    log.error({ problem: finalized.error }, "review handler returned an unusable response; denied");
    return { response: internalErrorResponse(request.uid, finalized.error), outcome: "error" };
  }
  if (finalized.notes.length > 0) log.warn({ notes: finalized.notes }, "review response corrected");
  return { response: finalized.response, outcome: finalized.response.allowed ? "allowed" : "denied" };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
