// Reading review bodies (webhook/body-reader.ts): the bytes read whole into one buffer, fastify's
// errors for a body over the limit or of the wrong length, large bodies waiting for their share
// of the budget of bytes (and given up at their deadline), and slabs reused across bodies, also
// after a trip through the worker thread that checks them.
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { hostileBody } from "../test/support/hostile-reviews.js";
import { BodyChecker } from "./body-check.js";
import { BudgetExhausted, ByteBudget, type ReadOptions, ReadTooSlow, SlabPool, readBody } from "./body-reader.js";
import { REVIEW_BODY_LIMITS } from "./limits.js";

const later = (): number => performance.now() + 60_000;
const options = (over: Partial<ReadOptions> = {}): ReadOptions => ({ limit: 1000, largeBytes: 100, budget: new ByteBudget(400), slabs: new SlabPool(1000, 2), deadline: later(), ...over });
/** A request stream of `bytes` in chunks of 64, paused as Node gives it. */
const stream = (bytes: Buffer): Readable => Readable.from(Array.from({ length: Math.ceil(bytes.length / 64) }, (_, i) => bytes.subarray(i * 64, (i + 1) * 64)), { objectMode: false });
const bytes = (n: number, fill = 0x61): Buffer => Buffer.alloc(n, fill);
const failure = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => "read", (error: { code?: string; statusCode?: number } | Error) => (error instanceof BudgetExhausted ? "budget" : error instanceof ReadTooSlow ? "too slow" : { code: (error as { code?: string }).code, status: (error as { statusCode?: number }).statusCode }));

const checkers: BodyChecker[] = [];
afterEach(async () => {
  await Promise.all(checkers.splice(0).map((checker) => checker.close()));
});

describe("ByteBudget", () => {
  it("grants bytes first come first served, and gives up on a waiter at its deadline", async () => {
    const budget = new ByteBudget(400);
    expect(await budget.take(300, later())).toBe(300);
    const second = budget.take(300, later());
    const third = budget.take(50, later());
    const late = await budget.take(100, performance.now() + 20);
    expect(late).toBe(0);
    budget.give(300);
    expect(await second).toBe(300);
    expect(await third).toBe(50);
    // More than the whole budget takes the whole budget (once everything else is given back).
    budget.give(350);
    expect(await budget.take(10_000, later())).toBe(400);
  });
});

describe("readBody", () => {
  it("reads a small and a large body whole, and refuses what fastify refuses", async () => {
    for (const n of [0, 50, 700]) {
      const body = bytes(n, 0x30 + (n % 10));
      const read = await readBody(stream(body), String(n), options());
      expect(read.body.equals(body)).toBe(true);
      read.release(read.body);
    }
    // Without a Content-Length (chunked), joined at the end.
    expect((await readBody(stream(bytes(700)), undefined, options())).body.length).toBe(700);
    expect(await failure(readBody(stream(bytes(10)), "1001", options()))).toEqual({ code: "FST_ERR_CTP_BODY_TOO_LARGE", status: 413 });
    expect(await failure(readBody(stream(bytes(1001)), undefined, options()))).toEqual({ code: "FST_ERR_CTP_BODY_TOO_LARGE", status: 413 });
    expect(await failure(readBody(stream(bytes(300)), "200", options()))).toEqual({ code: "FST_ERR_CTP_INVALID_CONTENT_LENGTH", status: 400 });
    expect(await failure(readBody(stream(bytes(150)), "200", options()))).toEqual({ code: "FST_ERR_CTP_INVALID_CONTENT_LENGTH", status: 400 });
  });

  it("holds a large body unread until its bytes fit in the budget, and gives up at the deadline", async () => {
    const shared = options();
    const first = await readBody(stream(bytes(300)), "300", shared);
    const waiting = readBody(stream(bytes(300, 0x62)), "300", shared);
    // Small bodies never wait.
    expect((await readBody(stream(bytes(100)), "100", shared)).body.length).toBe(100);
    expect(await failure(readBody(stream(bytes(200)), "200", { ...shared, deadline: performance.now() + 20 }))).toBe("budget");
    first.release(first.body);
    const second = await waiting;
    expect(second.body.equals(bytes(300, 0x62))).toBe(true);
  });

  it("gives the budget back when a body's sender goes away or does not finish by the deadline", async () => {
    const shared = options();
    // The client goes away after half of its 300 bytes.
    const gone = new Readable({ read() {} });
    gone.push(bytes(150));
    setTimeout(() => gone.destroy(), 10);
    expect(await failure(readBody(gone, "300", shared))).toEqual({ code: undefined, status: 400 });
    // The client sends half and then nothing more.
    const stalled = new Readable({ read() {} });
    stalled.push(bytes(150));
    expect(await failure(readBody(stalled, "300", { ...shared, deadline: performance.now() + 30 }))).toBe("too slow");
    // Neither holds its bytes: the whole budget is free again.
    expect(await shared.budget.take(400, performance.now() + 20)).toBe(400);
  });

  it("reads large bodies into the same slab, also when the body went to the worker thread and back", async () => {
    const shared = options({ limit: 8 * 1024 * 1024, largeBytes: 64 * 1024, budget: new ByteBudget(16 * 1024 * 1024), slabs: new SlabPool(8 * 1024 * 1024, 1) });
    const checker = new BodyChecker();
    checkers.push(checker);
    const first = hostileBody("long-string", 512 * 1024, "uid-first").body;
    const read = await readBody(stream(first), String(first.length), shared);
    let back: Buffer = read.body;
    const checked = await checker.check(read.body, REVIEW_BODY_LIMITS, later(), { owned: true, returned: (body) => (back = body) });
    expect(checked.equals(first)).toBe(true);
    expect(back.buffer.byteLength).toBe(8 * 1024 * 1024);
    read.release(back);
    // The next body is read into the start of the same memory: the first body's bytes follow it.
    const next = await readBody(stream(bytes(100 * 1024, 0x7a)), String(100 * 1024), shared);
    expect(Buffer.from(next.body.buffer, 100 * 1024, 1000).equals(first.subarray(100 * 1024, 100 * 1024 + 1000))).toBe(true);
    // While the only slab is out, a large body gets memory of its own.
    const other = await readBody(stream(bytes(70 * 1024)), String(70 * 1024), shared);
    expect(other.body.buffer.byteLength).toBe(70 * 1024);
  });
});
