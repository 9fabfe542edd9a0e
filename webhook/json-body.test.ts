// The bounded body parser against JSON.parse: the same value for any JSON text however it is cut
// into pieces, the same refusals, and a refusal naming the limit and where it was broken.
import fc from "fast-check";
import { describe, expect, it, vi } from "vitest";
import { hostileBody } from "../test/support/hostile-reviews.js";
import { type JsonLimits, type ParseOptions, JsonBodyError, parseJsonBody } from "./json-body.js";

const OPEN: JsonLimits = { maxDepth: 1000, maxStringBytes: 1 << 30, maxContainers: 1 << 30, maxMembers: 1 << 30, maxValues: 1 << 30 };

/** Tiny pieces and slices, so that every path of the piecewise build runs on small inputs. */
const TINY: Partial<ParseOptions> = { chunkBytes: 8, sliceMs: 0, quick: false };
/** The scanner with its default pieces, without the quick path for small bodies. */
const SCANNED: Partial<ParseOptions> = { quick: false };

async function parse(text: string | Buffer, options: Partial<ParseOptions> = {}): Promise<unknown> {
  return parseJsonBody(Buffer.isBuffer(text) ? text : Buffer.from(text), { limits: OPEN, ...options });
}

async function refusal(text: string | Buffer, options: Partial<ParseOptions> = {}): Promise<JsonBodyError> {
  const error: unknown = await parse(text, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(JsonBodyError);
  return error as JsonBodyError;
}

describe("parseJsonBody", () => {
  it("returns what JSON.parse returns, for any JSON text and any piece size", async () => {
    await fc.assert(
      fc.asyncProperty(fc.json({ maxDepth: 6 }), fc.integer({ min: 1, max: 64 }), async (text, chunk) => {
        expect(await parse(text, { chunkBytes: chunk, sliceMs: 0, quick: false })).toStrictEqual(JSON.parse(text));
        expect(await parse(text)).toStrictEqual(JSON.parse(text));
      }),
      { seed: 15, numRuns: 400 },
    );
  });

  it("returns what JSON.parse returns for unicode, escapes, duplicate keys and integer-like keys", async () => {
    const texts = [
      '{"b":1,"a":2,"b":3,"10":4,"2":5}',
      '{"x":"\\u00e9t\\u00e9 \\"quoted\\" \\\\ back","y":"été ☃ 𝄞","z":["\\n\\t",1e3,-0.5,true,false,null]}',
      '  [ {"k" : [ [], {}, [[]] ] } , "\\\\" ]  ',
      `\u{feff}{"bom":true}`,
      '{"long":"' + "x".repeat(100) + '","after":[' + "1,".repeat(50) + "2]}",
    ];
    for (const text of texts) {
      for (const options of [TINY, SCANNED, {}]) expect(await parse(text, options)).toStrictEqual(JSON.parse(text.replace(/^\u{feff}/u, "")));
    }
  });

  it("refuses every text JSON.parse refuses", async () => {
    await fc.assert(
      fc.asyncProperty(fc.json({ maxDepth: 4 }), fc.nat(), fc.constantFrom("", ",", "]", "}", "{", '"', ":", "x", "\u0001", "\\"), async (text, at, insert) => {
        const cut = at % (text.length + 1);
        const broken = text.slice(0, cut) + insert + text.slice(cut);
        let native: unknown;
        let nativeOk = true;
        try {
          native = JSON.parse(broken);
        } catch {
          nativeOk = false;
        }
        for (const options of [TINY, SCANNED, {}]) {
          const ours = await parse(broken, options).then(
            (value) => ({ ok: true, value }),
            (error: unknown) => ({ ok: false, value: error }),
          );
          expect(ours.ok).toBe(nativeOk);
          if (nativeOk) expect(ours.value).toStrictEqual(native);
          else expect((ours.value as JsonBodyError).code).toBe("invalid-json");
        }
      }),
      { seed: 15, numRuns: 400 },
    );
  });

  it.each([
    ["an empty body", "", "the body is not valid JSON: the body is empty at byte 0"],
    ["a body cut inside an object", '{"a":[1,2', "the body is not valid JSON: the body ends before the JSON value does at byte 9 (at a[1])"],
    ["trailing data", '{"a":1} {"b":2}', "the body is not valid JSON: unexpected data after the JSON value at byte 8"],
    ["a missing colon", '{"a" 1}', "the body is not valid JSON: expected ':' at byte 5 (at a)"],
  ])("refuses %s with a message saying where", async (_what, text, message) => {
    for (const options of [SCANNED, {}]) {
      const error = await refusal(text, options);
      expect(error.code).toBe("invalid-json");
      expect(error.message).toBe(message);
    }
  });

  it.each([
    ['{"__proto__":{"polluted":true}}'],
    ['{"a":[{"\\u005f_proto__":1}]}'],
    ['{"constructor":{"prototype":{"polluted":true}}}'],
    ['{"x":{"constructor":{"\\u0070rototype":1}}}'],
  ])("refuses %s as fastify's default parser does, however it is cut", async (text) => {
    for (const options of [TINY, SCANNED, {}]) {
      const error = await refusal(text, options);
      expect(error.code).toBe("forbidden-key");
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("allows constructor and prototype keys where secure-json-parse does", async () => {
    const text = '{"constructor":"x","prototype":{"constructor":1},"spec":{"constructor":[{"prototype":1}]}}';
    // Compared as text: toStrictEqual reads an own `constructor` key as the object's class.
    for (const options of [TINY, SCANNED, {}]) expect(JSON.stringify(await parse(text, options))).toBe(JSON.stringify(JSON.parse(text)));
  });

  it("refuses nesting deeper than maxDepth, naming the limit and the path, with the envelope read before it", async () => {
    const limits = { ...OPEN, maxDepth: 10 };
    const deep = hostileBody("deep-arrays", 4096, "uid-deep");
    const error = await refusal(deep.body, { limits });
    expect(error.code).toBe("too-deep");
    expect(error.message).toMatch(/^the body nests objects and arrays deeper than 10 levels \(at request\.object\.spec\.containers\[0\]\.env\[0\]\[0\]\[0\]/);
    expect(error.envelope).toEqual({ kind: "AdmissionReview", apiVersion: "admission.k8s.io/v1", uid: "uid-deep" });
    // Exactly at the limit is fine.
    for (const options of [SCANNED, {}]) expect(await parse("[".repeat(10) + "]".repeat(10), { ...options, limits })).toStrictEqual(JSON.parse("[".repeat(10) + "]".repeat(10)));
    // Eleven brackets that are not nested: the quick path declines, the scanner accepts.
    expect(await parse('[[],[],[],[],[],[],[],[],[],[]]', { limits })).toHaveLength(10);
  });

  it("refuses a string, number or literal longer than maxStringBytes, escapes counted as written", async () => {
    const limits = { ...OPEN, maxStringBytes: 16 };
    // Bodies this small would otherwise go straight to JSON.parse: every body here is longer than the limit.
    expect(await parse(`["${"x".repeat(16)}"]`, { limits })).toStrictEqual(["x".repeat(16)]);
    for (const text of [`["${"x".repeat(17)}"]`, `{"a":"\\n${"x".repeat(15)}"}`, `[${"1".repeat(17)}]`]) {
      const error = await refusal(text, { limits });
      expect(error.code).toBe("string-too-long");
      expect(error.message).toMatch(/longer than 16 bytes/);
    }
  });

  it("refuses more objects and arrays than maxContainers", async () => {
    const limits = { ...OPEN, maxContainers: 100 };
    expect(await parse(`[${"{},".repeat(98)}{}]`, { limits })).toHaveLength(99);
    const error = await refusal(`[${"{},".repeat(99)}{}]`, { limits });
    expect(error.code).toBe("too-many-containers");
    expect(error.message).toBe("the body has more than 100 objects and arrays (at [99])");
  });

  it("refuses an object or array with more than maxMembers members, however it is cut", async () => {
    const limits = { ...OPEN, maxMembers: 50 };
    const keys = (n: number) => `{"m":{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(",")}}}`;
    for (const options of [TINY, SCANNED, {}]) {
      expect(await parse(keys(50), { ...options, limits })).toStrictEqual(JSON.parse(keys(50)));
      expect(await parse(`[[${"1,".repeat(49)}1]]`, { ...options, limits })).toHaveLength(1);
      const object = await refusal(keys(51), { ...options, limits });
      expect(object.code).toBe("too-many-members");
      expect(object.message).toBe("the body has an object with more than 50 members (at m.k49)");
      const array = await refusal(`[[${"1,".repeat(50)}1]]`, { ...options, limits });
      expect(array.message).toBe("the body has an array with more than 50 elements (at [0][49])");
    }
  });

  it("refuses a body with more than maxValues members and elements in all, each object and array within maxMembers", async () => {
    const limits = { ...OPEN, maxValues: 100, maxMembers: 60 };
    // 2 top-level members + 50 + 48 = 100 values; the 101st is k48, and the path names the last value allowed.
    const body = (inB: number) => `{"a":[${"0,".repeat(49)}0],"b":{${Array.from({ length: inB }, (_, i) => `"k${i}":${i}`).join(",")}}}`;
    for (const options of [TINY, SCANNED, {}]) {
      expect(await parse(body(48), { ...options, limits })).toStrictEqual(JSON.parse(body(48)));
      const error = await refusal(body(49), { ...options, limits });
      expect(error.code).toBe("too-many-values");
      expect(error.message).toBe("the body has more than 100 values (members of objects and elements of arrays, all together) (at b.k47)");
      const array = await refusal(`[[${"0,".repeat(49)}0],[${"0,".repeat(48)}0]]`, { ...options, limits });
      expect(array.message).toBe("the body has more than 100 values (members of objects and elements of arrays, all together) (at [1][47])");
    }
  });

  it("builds nothing of a body that breaks a limit, wherever in the body it breaks it", async () => {
    // A 2 MiB review whose last member is nested too deep: everything before it is valid JSON that
    // a single pass would already have built (in pieces of 16 KiB) when it reaches the limit.
    const items = Array.from({ length: 40_000 }, (_, i) => `{"name":"VAR_${i}","value":"${"v".repeat(i % 40)}"}`).join(",");
    const text = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-late-deep","object":{"env":[${items}],"deep":${"[".repeat(120)}${"]".repeat(120)}}}}`;
    const parsed = vi.spyOn(JSON, "parse");
    try {
      const error = await refusal(text, { limits: { ...OPEN, maxDepth: 100 } });
      expect(error.code).toBe("too-deep");
      expect(error.envelope.uid).toBe("uid-late-deep");
      // Only the envelope's strings were decoded (each with one JSON.parse of its token).
      expect(parsed.mock.calls.map(([piece]) => String(piece).length).filter((length) => length > 100)).toEqual([]);
    } finally {
      parsed.mockRestore();
    }
  });

  it("gives the event loop back between slices of a large body, and not while a small one parses", async () => {
    const text = JSON.stringify({ items: Array.from({ length: 20_000 }, (_, i) => ({ name: `VAR_${i}`, value: "x".repeat(i % 50) })) });
    let pauses = 0;
    // A slice of 0 ms: a pause at every clock reading, one per 16 KiB scanned, in each of the two
    // passes (the limits checked over the whole body, then the values built).
    const value = await parse(text, { sliceMs: 0, pause: async () => void pauses++ });
    expect(value).toStrictEqual(JSON.parse(text));
    expect(pauses).toBe(2 * (Math.ceil(Buffer.byteLength(text) / (16 * 1024)) - 1));
    let small = 0;
    await parse('{"small":[1,2,3]}', { sliceMs: 0, pause: async () => void small++ });
    expect(small).toBe(0);
  });

  it("stops at the deadline with the envelope read so far", async () => {
    const body = hostileBody("dense-numbers", 2 * 1024 * 1024, "uid-late");
    const error = await refusal(body.body, { deadline: performance.now() - 1 });
    expect(error.code).toBe("deadline");
    expect(error.envelope.uid).toBe("uid-late");
  });
});
