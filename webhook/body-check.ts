// The first pass over large request bodies (webhook/json-body.ts checkJsonBody: every limit, nothing
// built) in a worker thread (webhook/json-worker.ts), so that a hostile body refused by a limit
// costs the event loop nothing but its reading, and a body within the limits is built on the event
// loop (in slices) only once it is known to be within them. The body's bytes are moved to the
// worker and back, not copied: the worker holds no body once it has answered. If the worker cannot
// be started, the check runs on the event loop as before; a body the worker held when it died is
// answered as one that could not be read in time.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { JsonBodyError, type JsonLimits, checkJsonBody } from "./json-body.js";
import type { CheckAnswer, CheckRequest } from "./json-worker.js";

/** How long after the review's deadline a check still unanswered by the worker is given up. */
const GRACE_MS = 20;
/**
 * The first pass keeps one frame per open object or array (at most the depth limit) and the
 * envelope's strings; what it allocates per container is garbage at once. A small heap keeps the
 * worker's memory small (tsx, when it runs from the sources, needs the most of it).
 */
const WORKER_HEAP = { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 4 };
/** Workers lost (crashed, or failed to load) before the checks stay on the event loop for good. */
const MAX_LOSSES = 3;

interface Pending {
  readonly limits: JsonLimits;
  readonly deadline: number;
  readonly resolve: (body: Buffer) => void;
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
  readonly returned: ((body: Buffer) => void) | undefined;
}

export interface CheckOptions {
  /** The whole memory under the body is the caller's to move to the worker. */
  readonly owned?: boolean;
  /** Called with the body when its bytes are back on this thread, whatever the verdict. */
  readonly returned?: (body: Buffer) => void;
}

const unread = (why: string): JsonBodyError => new JsonBodyError("deadline", `the body could not be read before the review's deadline${why}`, "", 0, {});

/**
 * The compiled worker; or, when nadguard runs from its TypeScript sources (bin/nadguard.js without a
 * current build, the tests, the benchmarks), the source with tsx loaded in the worker: a worker
 * thread does not inherit the loader its parent registered.
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./json-worker.js", import.meta.url), { resourceLimits: WORKER_HEAP });
  // tsx's ESM API (package export "tsx/esm/api", its `import` file beside the `require` one).
  const api = pathToFileURL(createRequire(import.meta.url).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
  const entry = new URL("./json-worker.ts", import.meta.url).href;
  const boot = `import(${JSON.stringify(api)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, execArgv: [], resourceLimits: WORKER_HEAP });
}

export class BodyChecker {
  #worker: Worker | undefined;
  /** The worker could not be started: every check runs on the event loop. */
  #unavailable = false;
  #nextId = 1;
  /** Workers that died; after MAX_LOSSES the checks stay on the event loop. */
  #losses = 0;
  readonly #pending = new Map<number, Pending>();

  /**
   * Resolves with the body when it is JSON within `limits` (the same bytes; `body` itself may be
   * left empty, its memory moved), rejects with a JsonBodyError otherwise (also "deadline" when
   * the answer has not come by `deadline`, a performance.now() time). With `owned`, the caller's
   * is the whole memory under `body` (a slab it reads bodies into): it is moved, not copied, and
   * `returned` gets the body back (in a new Buffer over the same memory) whatever the verdict.
   */
  check(body: Buffer, limits: JsonLimits, deadline: number, options: CheckOptions = {}): Promise<Buffer> {
    const worker = this.#start();
    if (!worker) {
      options.returned?.(body);
      return checkJsonBody(body, { limits, deadline }).then(() => body);
    }
    const id = this.#nextId++;
    // A body that is all of its memory (or whose memory is the caller's) is moved; one that shares it (a slice of a pool) is copied.
    const movable = body.buffer instanceof ArrayBuffer && (options.owned === true || (body.byteOffset === 0 && body.buffer.byteLength === body.length));
    const moved = movable ? body : new Uint8Array(body);
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(unread(""));
      }, Math.max(0, deadline - performance.now()) + GRACE_MS);
      this.#pending.set(id, { limits, deadline, resolve, reject, timer, returned: options.returned });
      const request: CheckRequest = { id, body: moved, limits, deadlineEpochMs: performance.timeOrigin + deadline };
      worker.postMessage(request, [moved.buffer as ArrayBuffer]);
    });
  }

  /** The worker thread's id while one runs; undefined when the checks run on the event loop. */
  get workerThreadId(): number | undefined {
    return this.#worker?.threadId;
  }

  /** Stops the worker; the checks it still held are refused as not read in time, later ones run on the event loop. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#unavailable = true;
    if (worker) await worker.terminate();
    this.#recover();
  }

  #start(): Worker | undefined {
    if (this.#worker || this.#unavailable) return this.#worker;
    let worker: Worker;
    try {
      worker = startWorker();
    } catch {
      this.#unavailable = true;
      return undefined;
    }
    // Never what keeps the process alive: a pending check has its own timer.
    worker.unref();
    worker.on("message", (answer: CheckAnswer) => this.#answer(answer));
    worker.on("error", () => this.#lost(worker));
    worker.on("exit", () => this.#lost(worker));
    this.#worker = worker;
    return worker;
  }

  #answer(answer: CheckAnswer): void {
    const pending = this.#pending.get(answer.id);
    if (!pending) return; // given up at its deadline
    this.#pending.delete(answer.id);
    clearTimeout(pending.timer);
    const body = Buffer.from(answer.body.buffer, answer.body.byteOffset, answer.body.byteLength);
    pending.returned?.(body);
    if (answer.ok) pending.resolve(body);
    else if (answer.refusal) {
      const { code, message, path, offset, envelope } = answer.refusal;
      pending.reject(new JsonBodyError(code, message, path, offset, envelope));
    } else {
      // The worker failed on this body without a verdict: decide it here.
      checkJsonBody(body, { limits: pending.limits, deadline: pending.deadline }).then(() => pending.resolve(body), pending.reject);
    }
  }

  /** The worker died: the next check starts another. */
  #lost(worker: Worker): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    if (++this.#losses >= MAX_LOSSES) this.#unavailable = true;
    this.#recover();
  }

  /** The bodies the worker held are gone with it. */
  #recover(): void {
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(unread(": the thread checking it stopped"));
    }
  }
}
