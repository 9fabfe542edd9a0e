// Request bodies a hostile client can send to the webhook, shared by the fuzz test and the soak
// benchmark: reviews that hide deep nesting, long strings, dense objects, wide objects or arrays or
// huge envelope arrays in an otherwise ordinary pod review (the uid first, as kube-apiserver encodes
// it), and bodies that are not reviews at all. Each builder fills the review up to about `bytes`.
// Some stay within every limit of the webhook (long-strings, dense-numbers, many-keys): the work
// they cost is what a legitimate review of that size could cost.

/** What a body is, and what the webhook can read from it. */
export interface HostileBody {
  readonly shape: HostileShape;
  readonly body: Buffer;
  readonly contentType: string;
  /** The uid a reader finds before anything hostile, or undefined when there is none to read. */
  readonly uid: string | undefined;
}

export const HOSTILE_SHAPES = [
  "deep-arrays",
  "deep-objects",
  "long-string",
  "long-strings",
  "dense-objects",
  "dense-numbers",
  "many-keys",
  "wide-array",
  "wide-object",
  "many-annotations",
  "many-groups",
  "wrong-groups",
  "truncated",
  "not-json",
  "over-limit",
  "text-plain",
] as const;
export type HostileShape = (typeof HOSTILE_SHAPES)[number];

const MiB = 1024 * 1024;

/** A small pod review whose payload slot (`"@payload@"`) and annotations slot are filled in by the shapes. */
function reviewText(uid: string, parts: { payload?: string; annotations?: string; groups?: string }): string {
  const annotations = parts.annotations ?? '{"k8s.v1.cni.cncf.io/networks":"macvlan-conf"}';
  const groups = parts.groups ?? '["system:authenticated"]';
  return (
    `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":${JSON.stringify(uid)},` +
    `"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` +
    `"name":"web","namespace":"tenant-a","operation":"CREATE","userInfo":{"username":"alice","groups":${groups}},` +
    `"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"tenant-a","annotations":${annotations}},` +
    `"spec":{"containers":[{"name":"web","image":"registry.example/web:1","env":${parts.payload ?? "[]"}}]}},"dryRun":false}}`
  );
}

const fill = (unit: string, bytes: number): string => unit.repeat(Math.max(1, Math.floor(bytes / unit.length)));

/** How many items of `base` bytes plus their index (and a comma) fit in `bytes`. */
function fitting(bytes: number, base: number): number {
  const digits = String(Math.floor(bytes / base)).length;
  return Math.max(1, Math.floor(bytes / (base + digits + 1)));
}

function joined(count: number, item: (i: number) => string): string {
  const parts: string[] = new Array(count);
  for (let i = 0; i < count; i++) parts[i] = item(i);
  return parts.join(",");
}

/** Members per object or array in the shapes meant to stay under the webhook's 100,000. */
const GROUP = 50_000;

/** `count` items as an array of arrays (or of objects) of at most GROUP items each. */
function grouped(count: number, item: (i: number) => string, open = "[", close = "]"): string {
  const groups: string[] = [];
  for (let start = 0; start < count; start += GROUP) {
    groups.push(`${open}${joined(Math.min(GROUP, count - start), (i) => item(start + i))}${close}`);
  }
  return `[${groups.join(",")}]`;
}

/** Builds one hostile body of about `bytes` (at least a few hundred). */
export function hostileBody(shape: HostileShape, bytes: number, uid = "0b7a3c9e-hostile-0000-000000000001"): HostileBody {
  const json = (text: string, readable = true): HostileBody => ({ shape, body: Buffer.from(text), contentType: "application/json", uid: readable ? uid : undefined });
  const room = Math.max(64, bytes - 600);
  switch (shape) {
    case "deep-arrays":
      return json(reviewText(uid, { payload: `${fill("[", room / 2)}${fill("]", room / 2)}` }));
    case "deep-objects": {
      const levels = Math.floor(room / 6);
      return json(reviewText(uid, { payload: `${fill('{"a":', levels * 5)}1${fill("}", levels)}` }));
    }
    case "long-string":
      return json(reviewText(uid, { payload: JSON.stringify([{ name: "BLOB", value: fill("x", room) }]) }));
    case "long-strings": {
      // Strings of up to 1 MiB each: long, but no longer than a real object could hold.
      const count = Math.max(1, Math.ceil(room / MiB));
      const each = Math.floor(room / count);
      return json(reviewText(uid, { payload: `[${joined(count, (i) => `{"name":"BLOB_${i}","value":"${fill("y", each)}"}`)}]` }));
    }
    case "dense-objects":
      return json(reviewText(uid, { payload: grouped(Math.floor(room / 3), () => "{}") }));
    case "dense-numbers":
      return json(reviewText(uid, { payload: grouped(Math.floor(room / 2), () => "0") }));
    case "many-keys":
      return json(reviewText(uid, { payload: grouped(fitting(room, 5), (i) => `"k${i}":0`, "{", "}") }));
    case "wide-array":
      return json(reviewText(uid, { payload: `[${fill("0,", room).slice(0, -1)}]` }));
    case "wide-object":
      return json(reviewText(uid, { payload: `{${joined(fitting(room, 5), (i) => `"k${i}":0`)}}` }));
    case "many-annotations": {
      return json(reviewText(uid, { annotations: `{"k8s.v1.cni.cncf.io/networks":"macvlan-conf",${joined(fitting(room, 18), (i) => `"a${i}.example/x":"v"`)}}` }));
    }
    case "many-groups": {
      return json(reviewText(uid, { groups: `[${joined(fitting(room, 8), (i) => `"group-${i}"`)}]` }));
    }
    case "wrong-groups":
      return json(reviewText(uid, { groups: `[${fill("0,", room).slice(0, -1)}]` }));
    case "truncated": {
      const text = reviewText(uid, { payload: JSON.stringify([{ name: "BLOB", value: fill("z", room) }]) });
      return json(text.slice(0, Math.floor(text.length * 0.9)), false);
    }
    case "not-json":
      // ÿ is two bytes in UTF-8.
      return json(`<AdmissionReview>${fill("\u00ff<", (room * 2) / 3)}`, false);
    case "over-limit":
      return json(reviewText(uid, { payload: JSON.stringify([{ name: "BLOB", value: fill("x", 8 * MiB) }]) }), false);
    case "text-plain":
      return { ...json(reviewText(uid, {}), false), contentType: "text/plain" };
  }
}
