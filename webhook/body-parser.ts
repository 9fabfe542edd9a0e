// The application/json parser of the review routes, in place of fastify's: bodies are parsed
// within REVIEW_BODY_LIMITS (webhook/json-body.ts), a small body at once and a large one in slices,
// one large body at a time, so that the reviews of others are answered between the slices and at
// most one large object is being built in memory. A large body's limits are checked in a worker
// thread (webhook/body-check.ts) before it is built here. A body refused by a limit whose envelope can be
// read becomes a RefusedReview (answered as a denial with its uid); any other refusal is a 4xx.
// The body is read by webhook/body-reader.ts: large bodies within a budget of bytes in flight.
import type { Readable } from "node:stream";
import type { FastifyRequest, RawServerBase, RouteGenericInterface } from "fastify";
import type { ProblemCode } from "../src/api/errors.js";
import type { BodyChecker } from "./body-check.js";
import { BudgetExhausted, ByteBudget, ReadTooSlow, SlabPool, readBody } from "./body-reader.js";
import { JsonBodyError, type JsonLimits, buildJsonBody, parseJsonBody } from "./json-body.js";
import { BODY_LIMIT, SMALL_BODY_BYTES, refusedReview } from "./limits.js";

/** A parse error in the shape fastify's error handler reads: a 4xx status and a code. */
export class BodyError extends Error {
  readonly statusCode: number;
  readonly code: ProblemCode;
  readonly path: string;
  constructor(statusCode: number, code: ProblemCode, message: string, path: string) {
    super(message);
    this.name = "BodyError";
    this.statusCode = statusCode;
    this.code = code;
    this.path = path;
  }
}

/** Runs one task at a time, first come first served; a waiter gives up at its deadline. */
export class Lane {
  #busy = false;
  readonly #waiting: Array<() => void> = [];

  /** Resolves to true when it is the caller's turn, false when `deadline` (performance.now()) passes first. */
  async enter(deadline: number): Promise<boolean> {
    if (!this.#busy) {
      this.#busy = true;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      const turn = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const index = this.#waiting.indexOf(turn);
        if (index >= 0) this.#waiting.splice(index, 1);
        resolve(false);
      }, Math.max(0, deadline - performance.now()));
      this.#waiting.push(turn);
    });
  }

  leave(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#busy = false;
  }
}

type Request = FastifyRequest<RouteGenericInterface, RawServerBase>;

export interface BodyParserOptions {
  limits: JsonLimits;
  /** When the review must be answered by (performance.now() time), from its arrival and ?timeout. */
  deadlineOf: (request: Request) => number;
  /** Checks the limits of bodies over SMALL_BODY_BYTES off the event loop. */
  checker: BodyChecker;
}

/**
 * The bytes of large bodies (over SMALL_BODY_BYTES) being read, checked or built at once: two at
 * the body limit. A large body waits, unread, until its bytes fit; so a burst of hostile bodies
 * costs the process at most this much memory for their bytes, not their number times the limit.
 */
export const LARGE_BODY_BUDGET = 2 * BODY_LIMIT;
/** Slabs of the body limit kept for large bodies: as many as the budget lets be read at once at the limit. */
const SLABS_KEPT = 2;

const overloaded = (): BodyError => new BodyError(429, "review.overloaded", "nadguard could not read the body before the review's deadline: larger bodies were ahead of it", "");

/** fastify's content-type parser signature without `parseAs`: the body's stream. */
export function reviewBodyParser(options: BodyParserOptions): (request: Request, payload: Readable) => Promise<unknown> {
  const lane = new Lane();
  const budget = new ByteBudget(LARGE_BODY_BUDGET);
  const slabs = new SlabPool(BODY_LIMIT, SLABS_KEPT);
  return async (request, payload) => {
    const deadline = options.deadlineOf(request);
    let read;
    try {
      read = await readBody(payload, request.headers["content-length"], { limit: BODY_LIMIT, largeBytes: SMALL_BODY_BYTES, budget, slabs, deadline });
    } catch (error) {
      if (error instanceof ReadTooSlow) throw new BodyError(429, "review.overloaded", "nadguard could not read the body before the review's deadline: it had not all arrived", "");
      throw error instanceof BudgetExhausted ? overloaded() : error;
    }
    // The body as it is once parsed: moved to the worker and back, it is in another Buffer.
    let body: Buffer = read.body;
    try {
      return await parseBody(body, deadline, (checked) => (body = checked));
    } finally {
      read.release(body);
    }
  };

  async function parseBody(body: Buffer, deadline: number, returned: (body: Buffer) => void): Promise<unknown> {
    const large = body.length > SMALL_BODY_BYTES;
    if (large && !(await lane.enter(deadline))) throw overloaded();
    try {
      if (!large) return await parseJsonBody(body, { limits: options.limits, deadline });
      const checked = await options.checker.check(body, options.limits, deadline, { owned: true, returned });
      return await buildJsonBody(checked, { limits: options.limits, deadline });
    } catch (error) {
      if (!(error instanceof JsonBodyError)) throw error;
      // Not JSON is not a review: a 4xx. A limit broken by what claims to be a review: a denial.
      const refused = error.code === "invalid-json" || error.code === "forbidden-key" ? undefined : refusedReview(error);
      if (refused) return refused;
      throw toBodyError(error);
    } finally {
      if (large) lane.leave();
    }
  }
}

const CODES: Record<JsonBodyError["code"], { status: number; code: ProblemCode }> = {
  "invalid-json": { status: 400, code: "review.invalid-json" },
  "forbidden-key": { status: 400, code: "review.invalid-json" },
  "too-deep": { status: 400, code: "review.too-deep" },
  "string-too-long": { status: 400, code: "review.string-too-long" },
  "too-many-containers": { status: 400, code: "review.too-many-containers" },
  "too-many-members": { status: 400, code: "review.too-many-members" },
  "too-many-values": { status: 400, code: "review.too-many-values" },
  deadline: { status: 429, code: "review.overloaded" },
};

function toBodyError(error: JsonBodyError): BodyError {
  const { status, code } = CODES[error.code];
  return new BodyError(status, code, error.message, error.path);
}
