// A bounded-frequency runner in the shape of Kubernetes' async.BoundedFrequencyRunner (kube-proxy,
// kube-network-policies): requests are coalesced, a run starts no sooner than `minIntervalMs`
// after the previous one started, a periodic run happens at least every `maxIntervalMs` (the full
// resync), and a failed run is retried with exponential backoff. Runs never overlap.

/** Why a run happens: a request, the periodic timer (or the very first run), or a retry after a failure. */
export type RunReason = "request" | "periodic" | "retry";

/** What a run reports: `retry` schedules another run after the backoff. Throwing counts as `retry`. */
export type RunOutcome = "done" | "retry";

export interface RunnerOptions {
  /** Least time between the starts of two runs; requests in between are coalesced. Default 100 ms. */
  readonly minIntervalMs?: number;
  /** Most time between two runs: a periodic run when nothing was requested. Default 60 s. */
  readonly maxIntervalMs?: number;
  /** First retry delay after a failed run, doubled per consecutive failure. Default 500 ms. */
  readonly retryInitialMs?: number;
  /** Largest retry delay. Default 30 s (never above maxIntervalMs). */
  readonly retryMaxMs?: number;
  /** Called with what a run threw (it is retried); default: ignored. */
  readonly onError?: (error: unknown) => void;
  /** Clock, for tests. Default `Date.now`. */
  readonly now?: () => number;
}

export interface Runner {
  /** Starts the runner: the first run (reason `periodic`) happens at once. */
  start(): void;
  /** Asks for a run; coalesced with other requests; bounded by minIntervalMs. No-op once stopped. */
  request(): void;
  /** Stops timers, lets a run in progress finish, and resolves when it has. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when no run is in progress (immediately when idle). */
  idle(): Promise<void>;
  readonly stats: { readonly runs: number; readonly failures: number; readonly consecutiveFailures: number };
}

/**
 * Creates a runner around `fn`. `fn` gets the reason of the run; the runner never calls it twice at
 * once. A request that arrives during a run causes one more run after it (bounded by minIntervalMs).
 */
export function boundedFrequencyRunner(fn: (reason: RunReason) => Promise<RunOutcome | void>, options: RunnerOptions = {}): Runner {
  const minInterval = options.minIntervalMs ?? 100;
  const maxInterval = options.maxIntervalMs ?? 60_000;
  const retryInitial = options.retryInitialMs ?? 500;
  const retryMax = Math.min(options.retryMaxMs ?? 30_000, maxInterval);
  const now = options.now ?? Date.now;

  let started = false;
  let stopped = false;
  let running: Promise<void> | undefined;
  let lastStart = -Infinity;
  let requested = false;
  let retryDue: number | undefined;
  let periodicDue = 0;
  let timer: NodeJS.Timeout | undefined;
  const stats = { runs: 0, failures: 0, consecutiveFailures: 0 };

  // The next reason to run and when: a request (no sooner than minInterval after the last start),
  // a retry at its time (also bounded by minInterval), or the periodic run.
  const next = (): { reason: RunReason; at: number } => {
    const earliest = lastStart + minInterval;
    const candidates: { reason: RunReason; at: number }[] = [{ reason: "periodic", at: Math.max(periodicDue, earliest) }];
    if (requested) candidates.push({ reason: "request", at: earliest });
    if (retryDue !== undefined) candidates.push({ reason: "retry", at: Math.max(retryDue, earliest) });
    return candidates.reduce((a, b) => (b.at < a.at ? b : a));
  };

  const schedule = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (stopped || !started || running) return;
    const { reason, at } = next();
    timer = setTimeout(() => void runOnce(reason), Math.max(0, at - now()));
  };

  const runOnce = async (reason: RunReason): Promise<void> => {
    if (stopped || running) return;
    timer = undefined;
    requested = false;
    retryDue = undefined;
    lastStart = now();
    periodicDue = lastStart + maxInterval;
    let release!: () => void;
    running = new Promise((resolve) => (release = resolve));
    let outcome: RunOutcome | void;
    try {
      outcome = await fn(reason);
    } catch (error) {
      options.onError?.(error);
      outcome = "retry";
    }
    stats.runs += 1;
    if (outcome === "retry") {
      stats.failures += 1;
      stats.consecutiveFailures += 1;
      const delay = Math.min(retryMax, retryInitial * 2 ** (stats.consecutiveFailures - 1));
      retryDue = now() + delay;
    } else {
      stats.consecutiveFailures = 0;
    }
    running = undefined;
    release();
    schedule();
  };

  return {
    start() {
      if (started || stopped) return;
      started = true;
      periodicDue = now();
      schedule();
    },
    request() {
      if (stopped) return;
      requested = true;
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await running;
    },
    async idle() {
      await running;
    },
    stats,
  };
}
