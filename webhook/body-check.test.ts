// The first pass of large bodies in a worker thread (webhook/body-check.ts) against the same pass
// on the event loop: the same verdict for every hostile shape (the limit, the message, the place,
// the envelope read before it), the deadline honoured, and answers still given once the worker is
// gone.
import { afterEach, describe, expect, it } from "vitest";
import { HOSTILE_SHAPES, hostileBody } from "../test/support/hostile-reviews.js";
import { BodyChecker } from "./body-check.js";
import { JsonBodyError, checkJsonBody } from "./json-body.js";
import { REVIEW_BODY_LIMITS } from "./limits.js";

const checkers: BodyChecker[] = [];
afterEach(async () => {
  await Promise.all(checkers.splice(0).map((checker) => checker.close()));
});

function checker(): BodyChecker {
  const made = new BodyChecker();
  checkers.push(made);
  return made;
}

/** What a check ends with, as plain data: "ok" (or the bytes it resolved with, when they differ from `sent`), or the refusal's fields. */
async function verdict(check: Promise<unknown>, sent?: Buffer): Promise<unknown> {
  return check.then(
    (body) => (sent === undefined || (Buffer.isBuffer(body) && body.equals(sent)) ? "ok" : body),
    (error: unknown) => (error instanceof JsonBodyError ? { code: error.code, message: error.message, path: error.path, offset: error.offset, envelope: error.envelope } : error),
  );
}

const limits = { ...REVIEW_BODY_LIMITS, maxValues: 20_000 };
const later = (): number => performance.now() + 60_000;

describe("BodyChecker", () => {
  it("gives the verdict of the first pass on the event loop for every hostile shape", async () => {
    const worker = checker();
    for (const shape of HOSTILE_SHAPES) {
      const { body } = hostileBody(shape, 256 * 1024, `uid-${shape}`);
      const expected = await verdict(checkJsonBody(body, { limits, deadline: later() }));
      // The body's memory is moved to the worker and back: a body within the limits comes back whole.
      const sent = Buffer.from(body);
      expect({ shape, verdict: await verdict(worker.check(body, limits, later()), sent) }).toEqual({ shape, verdict: expected });
    }
    // Decided by a worker thread, not by the fallback on the event loop.
    expect(worker.workerThreadId).toBeGreaterThan(0);
  });

  it("refuses a body whose deadline has passed, naming it", async () => {
    const { body } = hostileBody("dense-numbers", 2 * 1024 * 1024, "uid-late");
    const refused = await verdict(checker().check(body, REVIEW_BODY_LIMITS, performance.now() - 1));
    expect(refused).toMatchObject({ code: "deadline", message: "the body could not be read before the review's deadline" });
  });

  it("still answers, on the event loop, once its worker is stopped", async () => {
    const stopped = checker();
    const { body } = hostileBody("wide-object", 256 * 1024, "uid-wide");
    await stopped.close();
    expect(stopped.workerThreadId).toBeUndefined();
    expect(await verdict(stopped.check(body, limits, later()))).toMatchObject({ code: "too-many-values", envelope: { uid: "uid-wide" } });
    expect(await verdict(stopped.check(hostileBody("long-strings", 256 * 1024).body, limits, later()))).toBe("ok");
  });
});
