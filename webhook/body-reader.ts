// Reads a review's request body in place of fastify's `parseAs: "buffer"`, for the review routes'
// JSON parser (webhook/body-parser.ts). A large body (over SMALL_BODY_BYTES by its Content-Length)
// is read only once a share of a fixed budget of bytes is free for it (ByteBudget), and straight
// into one buffer of its announced length: the bytes of all large bodies being read, checked and
// built at once stay under the budget however many arrive together, and a body is never held twice
// (a list of chunks and their concatenation) on the event loop. The stream stays paused while a
// body waits, so that its sender is held back by TCP rather than by the webhook's memory. Large
// bodies are read into slabs of the body limit that are kept and reused (SlabPool) rather than into
// new memory each: a stream of hostile bodies then neither grows the process's memory (glibc keeps
// much of what multi-MiB buffers leave behind) nor adds to the external memory that makes V8 collect
// the event loop's heap. The errors for a body over the size limit or of the wrong length are
// fastify's own.
import type { Readable } from "node:stream";
import { errorCodes } from "fastify";

/** Bytes shared by waiters first come first served; a waiter gives up at its deadline. */
export class ByteBudget {
  readonly capacity: number;
  #free: number;
  readonly #waiting: Array<{ bytes: number; grant: () => void }> = [];

  constructor(capacity: number) {
    this.capacity = capacity;
    this.#free = capacity;
  }

  /**
   * Resolves to the bytes taken (`bytes`, or the whole budget for a larger request) once they are
   * free, or to 0 when `deadline` (performance.now() time) passes first.
   */
  async take(bytes: number, deadline: number): Promise<number> {
    const wanted = Math.min(bytes, this.capacity);
    if (this.#waiting.length === 0 && wanted <= this.#free) {
      this.#free -= wanted;
      return wanted;
    }
    return new Promise<number>((resolve) => {
      const waiter = {
        bytes: wanted,
        grant: (): void => {
          clearTimeout(timer);
          resolve(wanted);
        },
      };
      const timer = setTimeout(() => {
        const index = this.#waiting.indexOf(waiter);
        if (index >= 0) this.#waiting.splice(index, 1);
        resolve(0);
        this.#grant();
      }, Math.max(0, deadline - performance.now()));
      this.#waiting.push(waiter);
    });
  }

  give(bytes: number): void {
    this.#free += bytes;
    this.#grant();
  }

  #grant(): void {
    while (this.#waiting.length > 0 && this.#waiting[0]!.bytes <= this.#free) {
      const next = this.#waiting.shift()!;
      this.#free -= next.bytes;
      next.grant();
    }
  }
}

/**
 * Up to `slabs` buffers of `slabBytes` for large bodies: a body is read into the start of a slab,
 * and the slab comes back to the pool when the body is done with. When every slab is out, a body
 * gets memory of its own as before. A slab whose memory was moved away (to the worker thread,
 * which did not give it back in time) is replaced by a new one when next needed.
 */
export class SlabPool {
  readonly slabBytes: number;
  readonly #slabs: number;
  readonly #free: ArrayBuffer[] = [];
  #out = 0;

  constructor(slabBytes: number, slabs: number) {
    this.slabBytes = slabBytes;
    this.#slabs = slabs;
  }

  /** A buffer of `bytes` (at most slabBytes) at the start of a slab; undefined when every slab is out. */
  take(bytes: number): Buffer | undefined {
    if (this.#out >= this.#slabs) return undefined;
    this.#out++;
    const slab = this.#free.pop() ?? new ArrayBuffer(this.slabBytes);
    return Buffer.from(slab, 0, bytes);
  }

  /** Gives back a slab taken, under `body` as the body is now (perhaps moved to the worker and back). */
  give(body: Uint8Array): void {
    this.#out--;
    const slab = body.buffer;
    if (slab instanceof ArrayBuffer && slab.byteLength === this.slabBytes && !this.#free.includes(slab)) this.#free.push(slab);
  }
}

export interface ReadOptions {
  /** The body limit (fastify's bodyLimit). */
  readonly limit: number;
  /** Bodies over this many bytes by their Content-Length wait for their bytes in `budget`. */
  readonly largeBytes: number;
  readonly budget: ByteBudget;
  /** Where large bodies are read into. */
  readonly slabs: SlabPool;
  /** When the review must be answered by (performance.now() time). */
  readonly deadline: number;
}

/**
 * A body read, and the bytes of the budget it holds until `release(body)`, given the body as it is
 * then (the same bytes, perhaps moved to the worker and back in another Buffer): its slab is reused.
 */
export interface ReadBody {
  readonly body: Buffer;
  release(body: Uint8Array): void;
}

/** The budget ran out for this body before its deadline (answered as overloaded). */
export class BudgetExhausted extends Error {}

/** The body had not all arrived by its deadline (answered as overloaded): its bytes of the budget are given back. */
export class ReadTooSlow extends Error {}

/** The body's length by its Content-Length header; undefined without one (chunked) or when it is not a length. */
function announcedLength(header: string | string[] | undefined): number | undefined {
  const announced = typeof header === "string" && header !== "" ? Number(header) : Number.NaN;
  return Number.isInteger(announced) && announced >= 0 ? announced : undefined;
}

/** Reads `payload` whole; rejects with fastify's body errors, or BudgetExhausted. */
export async function readBody(payload: Readable, contentLengthHeader: string | string[] | undefined, options: ReadOptions): Promise<ReadBody> {
  const length = announcedLength(contentLengthHeader);
  if (length !== undefined && length > options.limit) throw new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE();
  const large = length !== undefined && length > options.largeBytes;
  const held = large ? await options.budget.take(length, options.deadline) : 0;
  if (large && held === 0) throw new BudgetExhausted();
  const slab = large && length <= options.slabs.slabBytes ? options.slabs.take(length) : undefined;
  let released = false;
  const release = (body: Uint8Array): void => {
    if (released) return;
    released = true;
    if (held > 0) options.budget.give(held);
    if (slab) options.slabs.give(body);
  };
  // A large body gets memory of its own (not a slice of Node's pool), so that it can be moved to
  // the worker thread; a small one, never moved, a slice of the pool (no allocation of its own).
  const into = slab ?? (length === undefined || length === 0 ? undefined : large ? Buffer.allocUnsafeSlow(length) : Buffer.allocUnsafe(length));
  try {
    const body = await collect(payload, length, into, options.limit, options.deadline);
    return { body, release };
  } catch (error) {
    release(into ?? Buffer.alloc(0));
    throw error;
  }
}

/**
 * The stream's bytes: into `whole` (of `length`) when the length is known, otherwise chunks joined
 * at the end. Settles however the stream ends: a stream closed before its end (the client went away)
 * is a 400, one still unfinished at `deadline` a ReadTooSlow, so that no read holds its budget and
 * slab for longer than its review lives.
 */
function collect(payload: Readable, length: number | undefined, whole: Buffer | undefined, limit: number, deadline: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => fail(new ReadTooSlow()), Math.max(0, deadline - performance.now()));
    const stop = (): void => {
      clearTimeout(timer);
      payload.removeListener("data", onData);
      payload.removeListener("end", onEnd);
      payload.removeListener("error", onEnd);
      payload.removeListener("close", onClose);
    };
    function fail(error: Error): void {
      stop();
      reject(error);
    }
    function onData(chunk: Buffer | string): void {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      const end = received + bytes.length;
      if (end > limit) return fail(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      if (length !== undefined && end > length) return fail(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      if (whole) bytes.copy(whole, received);
      else chunks.push(bytes);
      received = end;
    }
    function onEnd(error?: Error & { statusCode?: number }): void {
      if (error != null) {
        if (!(typeof error.statusCode === "number" && error.statusCode >= 400)) error.statusCode = 400;
        return fail(error);
      }
      if (length !== undefined && received !== length) return fail(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      stop();
      resolve(whole ?? Buffer.concat(chunks, received));
    }
    function onClose(): void {
      fail(Object.assign(new Error("the request was closed before its body ended"), { statusCode: 400 }));
    }
    payload.on("data", onData);
    payload.on("end", onEnd);
    payload.on("error", onEnd);
    payload.on("close", onClose);
    payload.resume();
  });
}
