// The worker thread that runs the first pass of webhook/json-body.ts (the syntax and every limit
// checked over the whole body, nothing built) for large request bodies, so that the event loop
// that answers every review does not carry it, and at the lowest CPU priority (nice 19: on Linux
// this thread only), so that small reviews are answered first when the CPU is short. Started and
// fed by webhook/body-check.ts, one body at a time; answers with the first pass's verdict.
import { setPriority } from "node:os";
import { parentPort } from "node:worker_threads";
import { type Envelope, JsonBodyError, type JsonBodyErrorCode, type JsonLimits, checkJsonBody } from "./json-body.js";

/** One body to check: its bytes (transferred), the limits, and the review's deadline as epoch milliseconds. */
export interface CheckRequest {
  readonly id: number;
  readonly body: Uint8Array;
  readonly limits: JsonLimits;
  readonly deadlineEpochMs: number;
}

/** A JsonBodyError as it crosses threads. */
export interface CheckRefusal {
  readonly code: JsonBodyErrorCode;
  readonly message: string;
  readonly path: string;
  readonly offset: number;
  readonly envelope: Envelope;
}

/**
 * The verdict: within every limit, refused (with the error the first pass threw), or failed
 * unexpectedly; with the body's bytes, transferred back (the worker keeps nothing of a body).
 */
export type CheckAnswer = { readonly id: number; readonly body: Uint8Array } & ({ readonly ok: true } | { readonly ok: false; readonly refusal?: CheckRefusal; readonly failure?: string });

async function check(request: CheckRequest): Promise<CheckAnswer> {
  // performance.now() has its own origin in each thread: the deadline crosses as wall-clock time.
  const deadline = request.deadlineEpochMs - performance.timeOrigin;
  const { id, body } = request;
  try {
    await checkJsonBody(body, { limits: request.limits, deadline });
    return { id, body, ok: true };
  } catch (error) {
    if (!(error instanceof JsonBodyError)) return { id, body, ok: false, failure: error instanceof Error ? error.message : String(error) };
    const { code, message, path, offset, envelope } = error;
    return { id, body, ok: false, refusal: { code, message, path, offset, envelope } };
  }
}

const port = parentPort;
if (port) {
  try {
    setPriority(19);
  } catch {
    // Not allowed to change it: the check still runs off the event loop.
  }
  port.on("message", (request: CheckRequest) => {
    void check(request).then((answer) => port.postMessage(answer, [answer.body.buffer as ArrayBuffer]));
  });
}
