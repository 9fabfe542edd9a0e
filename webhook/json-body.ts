// JSON request bodies with the work per body bounded. A first pass over the raw bytes checks the
// syntax, the nesting depth, the length of every string, the number of objects and arrays and the
// number of values (members and elements) before anything is built (a body that breaks a limit costs that scan only), and a second pass
// builds the values with the native JSON.parse in pieces of at most CHUNK_BYTES: a small body is
// parsed in one call, a large one piece by piece with the event loop given back between slices
// (in both passes), so that a 7 MiB body never blocks the reviews of others for more than a slice. The envelope fields kube-apiserver writes first (apiVersion, kind,
// request.uid) are noted on the way, so that a refused review can still be answered with its uid.
//
// Same result as JSON.parse (the fuzz and unit tests compare them), and the same refusal of
// `__proto__` keys and of `constructor.prototype` as fastify's default parser (secure-json-parse).

export interface JsonLimits {
  /** Objects and arrays nested in one another, the outermost counting 1. */
  readonly maxDepth: number;
  /** Bytes between the quotes of one string (escapes counted as written), and of one number or literal. */
  readonly maxStringBytes: number;
  /** Objects and arrays in the whole body. */
  readonly maxContainers: number;
  /** Members of one object, elements of one array. */
  readonly maxMembers: number;
  /** Members of every object and elements of every array of the body, together. */
  readonly maxValues: number;
}

/** What the body says about itself before the point where it was refused. */
export interface Envelope {
  apiVersion?: string;
  kind?: string;
  uid?: string;
}

export type JsonBodyErrorCode = "invalid-json" | "forbidden-key" | "too-deep" | "string-too-long" | "too-many-containers" | "too-many-members" | "too-many-values" | "deadline";

/** Why a body was refused: a code, a sentence naming the limit, where in the body, and the envelope read so far. */
export class JsonBodyError extends Error {
  readonly code: JsonBodyErrorCode;
  /** A JSON path such as `request.object.spec`, empty at the top level. */
  readonly path: string;
  /** Byte offset in the body. */
  readonly offset: number;
  readonly envelope: Envelope;
  constructor(code: JsonBodyErrorCode, message: string, path: string, offset: number, envelope: Envelope) {
    super(message);
    this.name = "JsonBodyError";
    this.code = code;
    this.path = path;
    this.offset = offset;
    this.envelope = envelope;
  }
}

export interface ParseOptions {
  readonly limits: JsonLimits;
  /** Largest piece handed to JSON.parse at once (unless one string is longer); default CHUNK_BYTES. */
  readonly chunkBytes?: number;
  /** Work between two pauses; default SLICE_MS. A body parsed within it never pauses. */
  readonly sliceMs?: number;
  /** Gives the event loop back; default setImmediate. */
  readonly pause?: () => Promise<void>;
  /** performance.now() after which the parse gives up with `deadline`; default none. */
  readonly deadline?: number;
  /** Small bodies that cannot break a limit go straight to JSON.parse (quickParse); default true. */
  readonly quick?: boolean;
}

/**
 * 16 KiB parses natively in well under a millisecond whatever its shape; the slowest shape, an
 * object with thousands of keys (V8 stores it as a hash table), takes ~2 ms per 16 KiB on the
 * benchmark machine.
 */
export const CHUNK_BYTES = 16 * 1024;
/** How long the parse of one body holds the event loop at a time: a couple of small reviews' worth. */
export const SLICE_MS = 2;
/** How often (in bytes scanned) the clock is read. */
const CHECK_BYTES = 16 * 1024;

const pauseImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// Scanner states.
const VALUE = 0; // a value must come
const VALUE_OR_CLOSE = 1; // after `[`
const KEY_OR_CLOSE = 2; // after `{`
const KEY = 3; // after `,` in an object
const COLON = 4;
const AFTER = 5; // after a value: `,` or the container's close
const END = 6; // after the top-level value: whitespace only

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** One open object or array. */
interface Frame {
  readonly object: boolean;
  /** Offset of its `{` or `[`. */
  readonly start: number;
  /** Set once the frame is large enough to be built piece by piece: its members so far, or its elements in pieces. */
  members: Record<string, unknown> | undefined;
  pieces: unknown[][] | undefined;
  /** Children (members) started so far. */
  count: number;
  /** Offset where the current child starts (its key, for a member). */
  childStart: number;
  /** Complete children not yet built: [runStart, runEnd), or runStart -1. */
  runStart: number;
  runEnd: number;
  /** The current member's key, quotes excluded. */
  keyStart: number;
  keyEnd: number;
  /** 1: the top-level object; 2: the object under its `request` key; 0: anything else. */
  readonly role: 0 | 1 | 2;
  /** This object is the value of a `constructor` key (a `prototype` key in it is refused). */
  readonly constructorValue: boolean;
}

/**
 * Parses `body` as JSON within `limits`. Resolves to what JSON.parse would return for the same
 * text; rejects with a JsonBodyError (never anything else) when it is not JSON or breaks a limit.
 */
export async function parseJsonBody(body: Buffer, options: ParseOptions): Promise<unknown> {
  const quick = options.quick === false ? NOT_QUICK : quickParse(body, options.limits);
  if (quick !== NOT_QUICK) return quick;
  // Every limit is checked over the whole body before anything is built: a body that breaks one
  // costs one scan, not the objects built up to the point where it breaks it (a million empty
  // objects, a hundred thousand members, the garbage they leave).
  await checkJsonBody(body, options);
  return buildJsonBody(body, options);
}

/**
 * The first pass alone: resolves when `body` is JSON within `limits`, rejects with a JsonBodyError
 * otherwise. Builds nothing (webhook/json-worker.ts runs it off the event loop).
 */
export async function checkJsonBody(body: Uint8Array, options: ParseOptions): Promise<void> {
  await new BodyParser(asBuffer(body), options, false).run();
}

/** The second pass alone, for a body that checkJsonBody accepted with the same limits. */
export function buildJsonBody(body: Buffer, options: ParseOptions): Promise<unknown> {
  return new BodyParser(body, options).run();
}

function asBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

const NOT_QUICK = Symbol("not quick");
const QUICK_BYTES = 64 * 1024;

/**
 * A review as kube-apiserver sends it, a few KiB with a few dozen objects, needs none of the
 * scanner's checks: with no more `{` and `[` bytes in the whole body than the depth limit, and no
 * more bytes than any other limit, no limit can be broken. JSON.parse at once, then, unless a
 * forbidden key could hide in it (`__proto__`, `prototype`, or any \u escape) or it is not JSON: the
 * scanner decides those, with its messages.
 */
function quickParse(body: Buffer, limits: JsonLimits): unknown {
  const fits = body.length <= QUICK_BYTES && body.length <= limits.maxStringBytes && body.length / 2 < Math.min(limits.maxMembers, limits.maxContainers, limits.maxValues);
  if (!fits || body[0] === 0xef || countBrackets(body, limits.maxDepth) > limits.maxDepth) return NOT_QUICK;
  if (body.includes("__proto__") || body.includes("prototype") || body.includes("\\u")) return NOT_QUICK;
  try {
    return JSON.parse(body.toString("utf8"));
  } catch {
    return NOT_QUICK;
  }
}

/** `{` and `[` bytes in the body, counting stops past `max`. */
function countBrackets(body: Buffer, max: number): number {
  let count = 0;
  for (const bracket of [0x7b, 0x5b]) {
    for (let at = body.indexOf(bracket); at >= 0 && count <= max; at = body.indexOf(bracket, at + 1)) count++;
  }
  return count;
}

class BodyParser {
  readonly #buf: Buffer;
  readonly #limits: JsonLimits;
  readonly #chunk: number;
  readonly #sliceMs: number;
  readonly #pause: () => Promise<void>;
  readonly #deadline: number;
  /** false: check the syntax the scanner sees and every limit, build nothing. */
  readonly #build: boolean;
  readonly #stack: Frame[] = [];
  /** Frames below this index are built piece by piece; the ones above are still text. */
  #built = 0;
  /** The innermost open frame. */
  #topFrame: Frame | undefined = undefined;
  #containers = 0;
  /** Members and elements started so far, in the whole body. */
  #values = 0;
  #root: unknown = undefined;
  #rootStart = -1;
  readonly #envelope: Envelope = {};
  /** Offsets of the next quote and backslash at or after the last search (body length when none). */
  #nextQuote = -1;
  #nextBackslash = -1;
  /** Scan position and state between slices. */
  #at = 0;
  #state = VALUE;

  constructor(body: Buffer, options: ParseOptions, build = true) {
    this.#buf = body;
    this.#limits = options.limits;
    this.#chunk = options.chunkBytes ?? CHUNK_BYTES;
    this.#sliceMs = options.sliceMs ?? SLICE_MS;
    this.#pause = options.pause ?? pauseImmediate;
    this.#deadline = options.deadline ?? Number.POSITIVE_INFINITY;
    this.#build = build;
  }

  async run(): Promise<unknown> {
    const n = this.#buf.length;
    // A UTF-8 byte order mark, as secure-json-parse skips it.
    this.#at = this.#skipBom();
    let sliceStart = performance.now();
    while (this.#at < n) {
      // The scan itself is synchronous (an async loop keeps its variables out of registers).
      this.#scan(Math.min(n, this.#at + CHECK_BYTES));
      const now = performance.now();
      if (this.#at < n && now - sliceStart >= this.#sliceMs) {
        if (now > this.#deadline) throw this.#error("deadline", "the body could not be read before the review's deadline", this.#at);
        await this.#pause();
        sliceStart = performance.now();
      }
    }
    if (this.#state !== END) throw this.#syntax(n, n === 0 ? "the body is empty" : "the body ends before the JSON value does");
    return this.#root;
  }

  /** Scans from #at up to `until` (or a little past it, to the end of a token). */
  #scan(until: number): void {
    const buf = this.#buf;
    let i = this.#at;
    let state = this.#state;
    while (i < until) {
      const c = buf[i]!;
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
        i++;
        continue;
      }
      if (state === VALUE_OR_CLOSE || state === KEY_OR_CLOSE) {
        // Right after `[` or `{`: the close of an empty container, or the first child.
        if (c === (state === KEY_OR_CLOSE ? 0x7d : 0x5d)) {
          i = this.#close(i);
          state = this.#stack.length > 0 ? AFTER : END;
          continue;
        }
        state = state === KEY_OR_CLOSE ? KEY : VALUE;
      }
      switch (state) {
        case VALUE: {
          const frame = this.#topFrame;
          if (frame && !frame.object) this.#startChild(frame, i);
          if (c === 0x7b || c === 0x5b) {
            this.#open(i, c === 0x7b);
            state = c === 0x7b ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
            i++;
          } else if (c === QUOTE) {
            const end = this.#stringEnd(i);
            this.#noteEnvelope(i, end);
            i = this.#completed(end + 1);
            state = this.#stack.length > 0 ? AFTER : END;
          } else {
            i = this.#completed(this.#scalarEnd(i));
            state = this.#stack.length > 0 ? AFTER : END;
          }
          break;
        }
        case AFTER: {
          const frame = this.#topFrame!;
          if (c === 0x2c) {
            state = frame.object ? KEY : VALUE;
            i++;
          } else if (c === (frame.object ? 0x7d : 0x5d)) {
            i = this.#close(i);
            state = this.#stack.length > 0 ? AFTER : END;
          } else {
            throw this.#syntax(i, `expected ',' or '${frame.object ? "}" : "]"}'`);
          }
          break;
        }
        case KEY: {
          if (c !== QUOTE) throw this.#syntax(i, "expected a string key");
          const frame = this.#topFrame!;
          this.#startChild(frame, i);
          const end = this.#stringEnd(i);
          frame.keyStart = i + 1;
          frame.keyEnd = end;
          this.#checkKey(frame, i, end);
          state = COLON;
          i = end + 1;
          break;
        }
        case COLON:
          if (c !== 0x3a) throw this.#syntax(i, "expected ':'");
          state = VALUE;
          i++;
          break;
        default:
          throw this.#syntax(i, "unexpected data after the JSON value");
      }
    }
    this.#at = i;
    this.#state = state;
  }

  #startChild(frame: Frame, at: number): void {
    if (++frame.count > this.#limits.maxMembers) {
      frame.count--; // the path names the last member allowed
      throw this.#error("too-many-members", `the body has an ${frame.object ? "object with more than" : "array with more than"} ${this.#limits.maxMembers.toLocaleString("en-US")} ${frame.object ? "members" : "elements"}`, at);
    }
    if (++this.#values > this.#limits.maxValues) {
      frame.count--; // as above: the path names the last value allowed
      throw this.#error("too-many-values", `the body has more than ${this.#limits.maxValues.toLocaleString("en-US")} values (members of objects and elements of arrays, all together)`, at);
    }
    frame.childStart = at;
  }

  #open(at: number, object: boolean): void {
    const parent = this.#topFrame;
    if (this.#stack.length >= this.#limits.maxDepth) {
      throw this.#error("too-deep", `the body nests objects and arrays deeper than ${this.#limits.maxDepth} levels`, at);
    }
    if (++this.#containers > this.#limits.maxContainers) {
      throw this.#error("too-many-containers", `the body has more than ${this.#limits.maxContainers.toLocaleString("en-US")} objects and arrays`, at);
    }
    if (!parent) this.#rootStart = at;
    const role = !parent ? 1 : parent.role === 1 && object && this.#keyIs(parent, "request") ? 2 : 0;
    const constructorValue = object && parent !== undefined && parent.object && this.#keyIs(parent, "constructor");
    const frame: Frame = { object, start: at, members: undefined, pieces: undefined, count: 0, childStart: at, runStart: -1, runEnd: -1, keyStart: 0, keyEnd: 0, role, constructorValue };
    this.#stack.push(frame);
    this.#topFrame = frame;
    this.#promote(at);
  }

  /** Closes the top frame at its `}` or `]`; returns the offset after it. */
  #close(at: number): number {
    const frame = this.#stack.pop()!;
    this.#topFrame = this.#stack[this.#stack.length - 1];
    const end = at + 1;
    if (!this.#isBuilt(frame)) {
      // Still text: part of its parent's next piece, or the whole body.
      if (this.#stack.length === 0 && this.#build) this.#root = this.#parsePiece(this.#rootStart, end, this.#rootStart);
      return this.#completed(end);
    }
    this.#flush(frame);
    this.#built = this.#stack.length;
    // Attached now rather than when it began to be built: an array's pieces are joined once.
    const value = frame.object ? frame.members! : frame.pieces!.length === 1 ? frame.pieces![0]! : ([] as unknown[]).concat(...frame.pieces!);
    const parent = this.#topFrame;
    if (!parent) this.#root = value;
    else if (parent.object) this.#assign(parent.members!, this.#decodeKey(parent), value, parent.keyStart - 1);
    else parent.pieces!.push([value]);
    return this.#completed(end, true);
  }

  #isBuilt(frame: Frame): boolean {
    return frame.members !== undefined || frame.pieces !== undefined;
  }

  /** A child of the top frame (or the top-level value) ended at `end`; returns `end`. */
  #completed(end: number, built = false): number {
    // Runs of children are what the build pass parses; the check pass keeps none.
    if (!this.#build) return end;
    const frame = this.#topFrame;
    if (!frame) {
      // A top-level scalar.
      if (this.#rootStart < 0 && !built && this.#build) this.#root = this.#parsePiece(this.#skipBom(), end, 0);
      return end;
    }
    if (!built) {
      if (frame.runStart < 0) frame.runStart = frame.childStart;
      frame.runEnd = end;
      if (end - frame.runStart >= this.#chunk && this.#isBuilt(frame)) this.#flush(frame);
    }
    if (this.#built < this.#stack.length && end - this.#stack[this.#built]!.start > this.#chunk) this.#promote(end);
    return end;
  }

  #skipBom(): number {
    const buf = this.#buf;
    return buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  }

  /** Starts building every open frame that has grown past a piece, outermost first. */
  #promote(at: number): void {
    if (!this.#build) return;
    while (this.#built < this.#stack.length && at - this.#stack[this.#built]!.start > this.#chunk) {
      const index = this.#built++;
      const frame = this.#stack[index]!;
      // The parent's complete children come before this one; this one is attached when it closes.
      if (index > 0) this.#flush(this.#stack[index - 1]!);
      if (frame.object) frame.members = {};
      else frame.pieces = [];
      this.#flush(frame);
    }
  }

  /** Builds the frame's complete children not built yet, with one JSON.parse. */
  #flush(frame: Frame): void {
    if (frame.runStart < 0) return;
    const start = frame.runStart;
    const end = frame.runEnd;
    frame.runStart = -1;
    if (end <= start) return;
    const text = frame.object ? `{${this.#buf.toString("utf8", start, end)}}` : `[${this.#buf.toString("utf8", start, end)}]`;
    const piece = this.#parseText(text, start);
    if (frame.pieces) frame.pieces.push(piece as unknown[]);
    else Object.assign(frame.members!, piece); // its keys passed #checkKey: no `__proto__` among them
  }

  #assign(target: Record<string, unknown>, key: string, value: unknown, at: number): void {
    // The scanner refuses `__proto__` keys before they get here; an assignment of one would set the prototype.
    if (key === "__proto__") throw this.#error("forbidden-key", "the body has a __proto__ key", at);
    target[key] = value;
  }

  #parsePiece(start: number, end: number, at: number): unknown {
    return this.#parseText(this.#buf.toString("utf8", start, end), at);
  }

  #parseText(text: string, at: number): unknown {
    try {
      return JSON.parse(text);
    } catch (error) {
      const detail = error instanceof SyntaxError ? error.message.replace(/ in JSON at position \d+.*$/s, "") : String(error);
      throw this.#error("invalid-json", `the body is not valid JSON: ${detail}`, at);
    }
  }

  /** Offset of the closing quote of the string that opens at `open`. */
  #stringEnd(open: number): number {
    const buf = this.#buf;
    const n = buf.length;
    const from = open + 1;
    // Both searches are cached until the scan passes them, so that each byte is searched once.
    if (this.#nextQuote < from) {
      const quote = buf.indexOf(QUOTE, from);
      this.#nextQuote = quote < 0 ? n : quote;
    }
    if (this.#nextBackslash < from) {
      const backslash = buf.indexOf(BACKSLASH, from);
      this.#nextBackslash = backslash < 0 ? n : backslash;
    }
    if (this.#nextQuote >= n && this.#nextBackslash >= n) throw this.#syntax(n, "a string is not closed");
    if (this.#nextBackslash > this.#nextQuote) {
      this.#checkLength(open, this.#nextQuote);
      return this.#nextQuote;
    }
    // An escape before the closing quote: walk the rest byte by byte (bounded by the string limit).
    const limit = open + 1 + this.#limits.maxStringBytes;
    let i = this.#nextBackslash;
    while (i < n) {
      const b = buf[i]!;
      if (b === QUOTE) return i;
      i += b === BACKSLASH ? 2 : 1;
      if (i > limit) this.#checkLength(open, i);
    }
    throw this.#syntax(n, "a string is not closed");
  }

  #checkLength(open: number, end: number): void {
    if (end - open - 1 > this.#limits.maxStringBytes) {
      throw this.#error("string-too-long", `the body has a string longer than ${this.#limits.maxStringBytes.toLocaleString("en-US")} bytes`, open);
    }
  }

  /** End of a number or literal starting at `start` (validated when its piece is parsed). */
  #scalarEnd(start: number): number {
    const buf = this.#buf;
    const n = buf.length;
    const c = buf[start]!;
    if (!((c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x74 || c === 0x66 || c === 0x6e)) {
      throw this.#syntax(start, `unexpected ${describeByte(c)}`);
    }
    let i = start + 1;
    while (i < n) {
      const b = buf[i]!;
      if (b === 0x2c || b === 0x5d || b === 0x7d || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) break;
      i++;
      if (i - start > this.#limits.maxStringBytes) {
        throw this.#error("string-too-long", `the body has a number or literal longer than ${this.#limits.maxStringBytes.toLocaleString("en-US")} bytes`, start);
      }
    }
    return i;
  }

  /** The frame's current key is `name` (escaped spellings included). */
  #keyIs(frame: Frame, name: string): boolean {
    const length = frame.keyEnd - frame.keyStart;
    if (length === name.length) return this.#buf.toString("latin1", frame.keyStart, frame.keyEnd) === name;
    // Escaped: every character at most as \uXXXX, and the first one as written or escaped.
    if (length < name.length || length > name.length * 6) return false;
    const first = this.#buf[frame.keyStart];
    if (first !== name.charCodeAt(0) && first !== BACKSLASH) return false;
    for (let i = frame.keyStart; i < frame.keyEnd; i++) if (this.#buf[i] === BACKSLASH) return this.#decodeKey(frame) === name;
    return false;
  }

  /** Refuses `__proto__`, and `prototype` inside the value of a `constructor` key, as secure-json-parse does. */
  #checkKey(frame: Frame, open: number, close: number): void {
    const length = close - open - 1;
    // Both are 9 characters: 9 bytes as written, up to 54 with every character escaped as \uXXXX.
    if (length < 9 || length > 54) return;
    const first = this.#buf[open + 1];
    if (first !== 0x5f && first !== 0x70 && first !== BACKSLASH) return;
    const key = this.#decodeRange(open, close + 1);
    if (key === "__proto__") throw this.#error("forbidden-key", "the body has a __proto__ key", open);
    if (key === "prototype" && frame.constructorValue) throw this.#error("forbidden-key", "the body has a constructor.prototype key", open);
  }

  #decodeKey(frame: Frame): string {
    return this.#decodeRange(frame.keyStart - 1, frame.keyEnd + 1);
  }

  /** A string token (quotes included) as its value; JSON.parse checks it as it would inside a piece. */
  #decodeRange(start: number, end: number): string {
    return this.#parseText(this.#buf.toString("utf8", start, end), start) as string;
  }

  /** apiVersion and kind of the top-level object and request.uid, when a string value ends there. */
  #noteEnvelope(open: number, close: number): void {
    const frame = this.#topFrame;
    if (!frame || !frame.object || frame.role === 0) return;
    const field = frame.role === 1 ? (this.#keyIs(frame, "apiVersion") ? "apiVersion" : this.#keyIs(frame, "kind") ? "kind" : undefined) : this.#keyIs(frame, "uid") ? "uid" : undefined;
    if (field) this.#envelope[field] = this.#decodeRange(open, close + 1);
  }

  /** The JSON path of the position: keys and indexes of the open frames. */
  #path(): string {
    let path = "";
    for (const frame of this.#stack) {
      if (frame.count === 0) break;
      if (frame.object) {
        let key: string;
        try {
          key = this.#decodeKey(frame);
        } catch {
          key = "?";
        }
        path += path === "" ? key : `.${key}`;
      } else {
        path += `[${frame.count - 1}]`;
      }
      if (path.length > 200) return `${path}…`;
    }
    return path;
  }

  #syntax(at: number, detail: string): JsonBodyError {
    return this.#error("invalid-json", `the body is not valid JSON: ${detail} at byte ${at}`, at);
  }

  #error(code: JsonBodyErrorCode, message: string, at: number): JsonBodyError {
    const path = this.#path();
    return new JsonBodyError(code, path ? `${message} (at ${path})` : message, path, at, { ...this.#envelope });
  }
}

function describeByte(c: number): string {
  return c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).padStart(2, "0")}`;
}
