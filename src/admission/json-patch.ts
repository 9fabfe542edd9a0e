// RFC 6902 JSON Patch by diff: a mutation edits a copy of the object and the patch is the
// difference, never hand-written operations, so the patch always matches what was meant.
export type JsonPatchOp =
  | { op: "add"; path: string; value: unknown }
  | { op: "replace"; path: string; value: unknown }
  | { op: "remove"; path: string };

/** RFC 6901: `~` becomes `~0`, then `/` becomes `~1`. */
export function escapePointer(segment: string | number): string {
  const text = String(segment);
  // Most keys need no escaping; skip the two regular expressions for them (the diff's hot path).
  if (!text.includes("~") && !text.includes("/")) return text;
  return text.replace(/~/g, "~0").replace(/\//g, "~1");
}

function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** The operations that turn `before` into `after`; empty when they are equal. */
export function diff(before: unknown, after: unknown, path = ""): JsonPatchOp[] {
  if (before === after) return [];
  if (isObject(before) && isObject(after)) return diffObjects(before, after, path);
  if (Array.isArray(before) && Array.isArray(after)) return diffArrays(before, after, path);
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [{ op: "replace", path, value: after }];
}

function diffObjects(before: Record<string, unknown>, after: Record<string, unknown>, path: string): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  for (const key of Object.keys(before)) {
    if (!(key in after)) ops.push({ op: "remove", path: `${path}/${escapePointer(key)}` });
  }
  for (const [key, value] of Object.entries(after)) {
    // Subtrees a copy-on-write draft left alone are the same objects: nothing to walk.
    if (before[key] === value && key in before) continue;
    const child = `${path}/${escapePointer(key)}`;
    if (!(key in before)) ops.push({ op: "add", path: child, value });
    else ops.push(...diff(before[key], value, child));
  }
  return ops;
}

function diffArrays(before: unknown[], after: unknown[], path: string): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const common = Math.min(before.length, after.length);
  for (let i = 0; i < common; i++) ops.push(...diff(before[i], after[i], `${path}/${i}`));
  for (let i = common; i < after.length; i++) ops.push({ op: "add", path: `${path}/${i}`, value: after[i] });
  // Remove from the end so that earlier indexes stay valid.
  for (let i = before.length - 1; i >= common; i--) ops.push({ op: "remove", path: `${path}/${i}` });
  return ops;
}

/** Applies a patch to a copy of `document` (what kube-apiserver does with our response). */
export function applyPatch<T>(document: T, ops: readonly JsonPatchOp[]): T {
  let root: unknown = structuredClone(document);
  for (const op of ops) {
    if (op.path === "") {
      if (op.op === "remove") throw new Error("cannot remove the whole document");
      root = structuredClone(op.value);
      continue;
    }
    const segments = op.path.slice(1).split("/").map(unescapePointer);
    const last = segments.pop()!;
    let parent: unknown = root;
    for (const segment of segments) {
      parent = Array.isArray(parent) ? parent[Number(segment)] : (parent as Record<string, unknown>)[segment];
      if (typeof parent !== "object" || parent === null) throw new Error(`path ${op.path} does not exist`);
    }
    applyAt(parent as Record<string, unknown> | unknown[], last, op);
  }
  return root as T;
}

function applyAt(parent: Record<string, unknown> | unknown[], key: string, op: JsonPatchOp): void {
  if (Array.isArray(parent)) {
    const index = key === "-" ? parent.length : Number(key);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw new Error(`bad array index ${key}`);
    if (op.op === "add") parent.splice(index, 0, structuredClone(op.value));
    else if (op.op === "replace") parent[index] = structuredClone(op.value);
    else parent.splice(index, 1);
    return;
  }
  if (op.op !== "add" && !(key in parent)) throw new Error(`path member ${key} does not exist for ${op.op}`);
  if (op.op === "remove") delete parent[key];
  else parent[key] = structuredClone(op.value);
}
