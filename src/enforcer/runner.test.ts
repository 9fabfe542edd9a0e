import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { boundedFrequencyRunner, type RunOutcome, type RunReason } from "./runner.js";

describe("boundedFrequencyRunner", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function recorder(outcomes: RunOutcome[] = [], durationMs = 0) {
    const runs: { reason: RunReason; at: number }[] = [];
    const fn = async (reason: RunReason): Promise<RunOutcome> => {
      runs.push({ reason, at: Date.now() });
      if (durationMs > 0) await new Promise((resolve) => setTimeout(resolve, durationMs));
      return outcomes.shift() ?? "done";
    };
    return { runs, fn };
  }

  it("runs at once on start, then periodically at maxInterval", async () => {
    const { runs, fn } = recorder();
    const start = Date.now();
    const runner = boundedFrequencyRunner(fn, { minIntervalMs: 100, maxIntervalMs: 1000 });
    runner.start();
    await vi.advanceTimersByTimeAsync(2500);
    expect(runs.map((r) => [r.reason, r.at - start])).toEqual([
      ["periodic", 0],
      ["periodic", 1000],
      ["periodic", 2000],
    ]);
    await runner.stop();
  });

  it("coalesces a burst of requests into one run, no sooner than minInterval after the last", async () => {
    const { runs, fn } = recorder();
    const start = Date.now();
    const runner = boundedFrequencyRunner(fn, { minIntervalMs: 100, maxIntervalMs: 10_000 });
    runner.start();
    await vi.advanceTimersByTimeAsync(10);
    for (let i = 0; i < 50; i += 1) runner.request();
    await vi.advanceTimersByTimeAsync(500);
    expect(runs.map((r) => [r.reason, r.at - start])).toEqual([
      ["periodic", 0],
      ["request", 100],
    ]);
    await runner.stop();
  });

  it("runs a request that arrives during a run once more after it, never overlapping", async () => {
    const { runs, fn } = recorder([], 300);
    const start = Date.now();
    const runner = boundedFrequencyRunner(fn, { minIntervalMs: 100, maxIntervalMs: 10_000 });
    runner.start();
    await vi.advanceTimersByTimeAsync(50);
    runner.request();
    runner.request();
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs.map((r) => r.reason)).toEqual(["periodic", "request"]);
    expect(runs[1]!.at - start).toBeGreaterThanOrEqual(300);
    expect(runs[1]!.at - start).toBeLessThan(310);
    await runner.stop();
  });

  it("retries a failed run with exponential backoff, capped, and resets after a success", async () => {
    const { runs, fn } = recorder(["retry", "retry", "retry", "retry", "done"]);
    const start = Date.now();
    const runner = boundedFrequencyRunner(fn, { minIntervalMs: 10, maxIntervalMs: 100_000, retryInitialMs: 100, retryMaxMs: 300 });
    runner.start();
    await vi.advanceTimersByTimeAsync(2000);
    expect(runs.map((r) => [r.reason, r.at - start])).toEqual([
      ["periodic", 0],
      ["retry", 100],
      ["retry", 300],
      ["retry", 600],
      ["retry", 900],
    ]);
    expect(runner.stats).toEqual({ runs: 5, failures: 4, consecutiveFailures: 0 });
    await runner.stop();
  });

  it("treats a thrown error as a failure and reports it", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const runner = boundedFrequencyRunner(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error("boom");
      },
      { minIntervalMs: 10, maxIntervalMs: 100_000, retryInitialMs: 50, onError: (e) => errors.push(e) },
    );
    runner.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
    await runner.stop();
  });

  it("stop waits for the run in progress and ignores later requests", async () => {
    const { runs, fn } = recorder([], 200);
    const runner = boundedFrequencyRunner(fn, { minIntervalMs: 10, maxIntervalMs: 100 });
    runner.start();
    await vi.advanceTimersByTimeAsync(50);
    let stopped = false;
    const stopping = runner.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(100);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    await stopping;
    expect(stopped).toBe(true);
    runner.request();
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toHaveLength(1);
  });
});
