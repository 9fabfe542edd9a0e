// Reads a manifest file the way `kubectl apply -f` reads it, so that `nadguard admit` judges the
// objects the API server will receive, not a different reading of the same text.
//
// kubectl (k8s.io/apimachinery's YAMLOrJSONDecoder, then sigs.k8s.io/yaml over goyaml.v2):
// - a stream starting with `{` is JSON, one object after another; anything else is YAML, split
//   into documents; empty documents are skipped;
// - YAML 1.1 scalars: `yes`, `no`, `on`, `off`, `y`, `n` are booleans (also as keys, which become
//   "true"/"false"), `0777` is octal; timestamps and `1:20` stay strings;
// - merge keys (`<<: *anchor`, `<<: [*a, *b]`) are applied in the order they appear: a merge
//   overrides keys set before it in the same mapping, later keys override it, and within a list
//   of merges the earlier one wins (goyaml.v2 decode.go `merge`; checked against kubectl 1.32 with
//   `kubectl label --local -f`). The `yaml` package's own merge keeps explicit keys whatever the
//   order, so it is not used: `networks: ok` then `<<: *forbidden` would read as `ok`;
// - a duplicated key: the last value wins, silently (here with a warning naming the key and line);
// - an object with `items` is a list (apimachinery's unstructured decoder looks for `items`, not
//   at the kind): its items are the objects, the list itself is not; a list inside a list is an
//   error, as in kubectl;
// - every object needs `kind` and `apiVersion`.
import {
  type Alias,
  type Document,
  type Node,
  type ParsedNode,
  type Tags,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseAllDocuments,
} from "yaml";
import { InputError, type Problem } from "../api/errors.js";
import { readText } from "./io.js";

/** One object of the file, as the API server would receive it. */
export interface ManifestItem {
  readonly object: Record<string, unknown>;
  /** 1-based position of the document in the file. */
  readonly document: number;
  /** Index in the list's `items` when the document is a list. */
  readonly item?: number;
  /** 1-based line where the object starts. */
  readonly line: number;
}

export interface Manifests {
  /** The file name as messages show it (`-` reads as `stdin`). */
  readonly file: string;
  readonly items: readonly ManifestItem[];
  /** Documents that hold an object or a list (empty ones and `null` are skipped, as kubectl does). */
  readonly documents: number;
  /** True when the file is a list or holds several documents: verdicts are then given per item. */
  readonly several: boolean;
  /** What kubectl does silently but a reviewer should know: duplicated keys, merges that override a key. */
  readonly warnings: readonly string[];
}

/**
 * Decoding stops beyond this many values: aliases can make a small file expand exponentially.
 * Real manifests hold thousands; a file of this many takes about a second to refuse (the alias
 * bomb in manifests.test.ts).
 */
export const MAX_VALUES = 1_000_000;

export async function readManifests(file: string): Promise<Manifests> {
  return parseManifests(await readText(file), file === "-" ? "stdin" : file);
}

const YAML_OPTIONS = {
  version: "1.1",
  // Positions come from the offsets, as `file:line`; the message is only the first line.
  prettyErrors: false,
  // kubectl takes the last value of a duplicated key; the walk below warns about it.
  uniqueKeys: false,
  // goyaml.v2 leaves timestamps and base-60 numbers as strings, and knows no !!omap/!!pairs/!!set.
  customTags: (tags: Tags): Tags =>
    tags.filter((tag) => {
      const { tag: name, format } = tag as { tag: string; format?: string };
      return format !== "TIME" && !/:(timestamp|omap|pairs|set)$/.test(name);
    }),
} as const;

/** Parses the text of one file; every problem found, in any document, is in the InputError. */
export function parseManifests(text: string, file: string): Manifests {
  const lines = lineIndex(text);
  const reader = new Reader(file, lines);
  const sources = /^\s*\{/.test(text) ? jsonValues(text, file, lines) : [{ text, offset: 0 }];
  let index = 0;
  for (const source of sources) {
    for (const doc of parseAllDocuments(source.text, YAML_OPTIONS)) reader.document(doc, ++index, source.offset);
  }
  if (reader.problems.length > 0) throw new InputError(reader.problems);
  if (reader.items.length === 0) throw new InputError([{ code: "input.empty", path: file, message: "holds no object (expected Kubernetes manifests or an AdmissionReview)" }]);
  return { file, items: reader.items, documents: reader.documents, several: reader.documents > 1 || reader.sawList, warnings: reader.warnings };
}

/** Line starts, for turning offsets into 1-based line numbers. */
function lineIndex(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

function lineAt(lines: readonly number[], offset: number): number {
  let low = 0;
  let high = lines.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (lines[mid]! <= offset) low = mid;
    else high = mid - 1;
  }
  return low + 1;
}

/**
 * A JSON stream: one value after another (apimachinery's json.Decoder). Each value is cut out by
 * its brackets and read by the same YAML walk (JSON is YAML), so duplicate keys get the same warning.
 */
function jsonValues(text: string, file: string, lines: readonly number[]): Array<{ text: string; offset: number }> {
  const values: Array<{ text: string; offset: number }> = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") {
      if (depth === 0) start = i;
      depth++;
    } else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) values.push({ text: text.slice(start, i + 1), offset: start });
      if (depth < 0) break;
    } else if (depth === 0 && !/\s/.test(c)) {
      throw new InputError([{ code: "input.json", path: `${file}:${lineAt(lines, i)}`, message: `is not valid JSON: unexpected ${JSON.stringify(c)} between objects` }]);
    }
  }
  if (depth !== 0) throw new InputError([{ code: "input.json", path: `${file}:${lineAt(lines, start)}`, message: "is not valid JSON: the object is not closed" }]);
  return values;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Where a key was set in the mapping being built (its line is worked out only for a warning), and whether a merge set it. */
interface KeySource {
  readonly node: Node;
  readonly merged: boolean;
}

/** The decoding walk over one file's documents; collects items, problems and warnings. */
class Reader {
  readonly items: ManifestItem[] = [];
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];
  sawList = false;
  documents = 0;
  #values = 0;
  #doc: Document.Parsed | undefined;
  #offset = 0;
  #where = "";
  /** Nodes being decoded: an alias to one of them is a cycle (goyaml.v2: "anchor ... value contains itself"). */
  readonly #active = new Set<Node>();
  readonly #aliases = new Map<Alias, Node | undefined>();

  constructor(
    private readonly file: string,
    private readonly lines: readonly number[],
  ) {}

  document(doc: Document.Parsed, index: number, offset: number): void {
    this.#doc = doc;
    this.#offset = offset;
    this.#where = `document ${index}`;
    const at = (node: { range?: unknown } | null | undefined): number => this.#line(node);
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        this.problems.push({ code: "input.yaml", path: this.#place(this.#lineOf(error.pos[0])), message: `is not valid YAML: ${error.message.split("\n")[0]}` });
      }
      return;
    }
    let value: Json;
    try {
      value = this.#decode(doc.contents as ParsedNode | null);
    } catch (error) {
      if (error instanceof DecodeError) {
        this.problems.push({ code: "input.yaml", path: this.#place(error.line), message: error.message });
        return;
      }
      throw error;
    }
    // kubectl's StreamVisitor skips a document that is empty or `null`.
    if (value === null) return;
    this.documents += 1;
    const line = at(doc.contents);
    if (!isObject(value)) {
      this.problems.push({ code: "input.not-object", path: this.#place(line), message: `is ${describe(value)}, not an object (expected a Kubernetes manifest or an AdmissionReview)` });
      return;
    }
    if (!("items" in value)) {
      this.#item(value, index, undefined, line);
      return;
    }
    // apimachinery's unstructured decoder: any object with `items` is a list, whatever its kind.
    this.sawList = true;
    const items = value.items;
    if (items === null) return;
    if (!Array.isArray(items)) {
      this.problems.push({ code: "input.list", path: this.#place(line), message: `items is ${describe(items)}; a list's items must be an array of objects` });
      return;
    }
    const nodes = isMap(doc.contents) ? (doc.contents.get("items", true) as ParsedNode | undefined) : undefined;
    items.forEach((item, i) => {
      const itemNode = isSeq(nodes) ? (nodes.items[i] as ParsedNode | undefined) : undefined;
      const itemLine = itemNode ? at(itemNode) : line;
      if (!isObject(item)) {
        this.problems.push({ code: "input.not-object", path: this.#place(itemLine, i), message: `is ${describe(item)}, not an object` });
      } else if ("items" in item) {
        this.problems.push({ code: "input.list", path: this.#place(itemLine, i), message: "is a list inside a list; kubectl does not read nested lists" });
      } else {
        this.#item(item, index, i, itemLine);
      }
    });
  }

  #item(object: Record<string, Json>, document: number, item: number | undefined, line: number): void {
    const missing = (["kind", "apiVersion"] as const).filter((key) => typeof object[key] !== "string" || object[key] === "");
    if (missing.length > 0) {
      this.problems.push({ code: "input.kind", path: this.#place(line, item), message: `${missing.join(" and ")} missing; kubectl refuses an object without them` });
      return;
    }
    this.items.push({ object, document, ...(item !== undefined && { item }), line });
  }

  #place(line: number, item?: number): string {
    return `${this.file}:${line} (${this.#where}${item !== undefined ? `, items[${item}]` : ""})`;
  }

  #lineOf(offset: number): number {
    return lineAt(this.lines, this.#offset + offset);
  }

  #line(node: { range?: unknown } | null | undefined): number {
    const range = node?.range as [number, number, number] | undefined;
    return range ? this.#lineOf(range[0]) : this.#lineOf(0);
  }

  #decode(node: ParsedNode | Node | null | undefined): Json {
    if (++this.#values > MAX_VALUES) throw new DecodeError(this.#line(node), `expands to more than ${MAX_VALUES.toLocaleString("en-US")} values (aliases); refused`);
    if (node === null || node === undefined) return null;
    if (isAlias(node)) {
      const target = this.#resolve(node);
      if (!target) throw new DecodeError(this.#line(node), `unknown anchor ${JSON.stringify(node.source)}`);
      if (this.#active.has(target)) throw new DecodeError(this.#line(node), `anchor ${JSON.stringify(node.source)} refers to a value that contains it`);
      return this.#decode(target);
    }
    if (isScalar(node)) return this.#scalar(node.value, node);
    this.#active.add(node);
    try {
      if (isSeq(node)) return node.items.map((item) => this.#decode(item as Node));
      if (isMap(node)) return this.#mapping(node.items as Array<{ key: unknown; value: unknown }>);
    } finally {
      this.#active.delete(node);
    }
    throw new DecodeError(this.#line(node), "holds a value that is neither a scalar, a list nor a mapping");
  }

  #scalar(value: unknown, node: Node): Json {
    if (value === null || value === undefined) return null;
    if (typeof value === "string" || typeof value === "boolean") return value;
    if (typeof value === "number") {
      // encoding/json cannot write them; kubectl stops with "json: unsupported value".
      if (!Number.isFinite(value)) throw new DecodeError(this.#line(node), `${value} cannot be sent to the API server (JSON has no infinity or NaN)`);
      return value;
    }
    if (typeof value === "bigint") return Number(value);
    if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8"); // !!binary: goyaml.v2 gives the bytes as a string
    if (typeof value === "symbol") return value.description ?? ""; // `<<` used as a value
    return String(value);
  }

  #mapping(pairs: ReadonlyArray<{ key: unknown; value: unknown }>): Json {
    const out = new Map<string, Json>();
    const sources = new Map<string, KeySource>();
    for (const pair of pairs) {
      const keyNode = pair.key as ParsedNode | null;
      if (isMergeKey(keyNode)) {
        this.#merge(pair.value as ParsedNode | null, out, sources, keyNode!);
        continue;
      }
      const key = this.#key(keyNode);
      const before = sources.get(key);
      if (before && !before.merged) {
        this.warnings.push(`${this.file}:${this.#line(keyNode)}: duplicate key ${JSON.stringify(key)} (also at line ${this.#line(before.node)}); the last value wins, as in kubectl`);
      }
      out.set(key, this.#decode(pair.value as ParsedNode | null));
      sources.set(key, { node: keyNode!, merged: false });
    }
    // Object.fromEntries defines own properties: a `__proto__` key stays a key.
    return Object.fromEntries(out);
  }

  /** goyaml.v2: a merge sets its keys over what is there; in a list of merges the earlier one wins. */
  #merge(value: ParsedNode | null, out: Map<string, Json>, sources: Map<string, KeySource>, keyNode: Node): void {
    const line = this.#line(keyNode);
    const target = this.#target(value, line);
    const sourcesOf = isSeq(target) ? [...target.items].reverse() : [value];
    for (const source of sourcesOf) {
      if (!isMap(this.#target(source as ParsedNode, line))) throw new DecodeError(line, "the merge key << needs a mapping or a list of mappings");
      const merged = this.#decode(source as ParsedNode) as Record<string, Json>;
      for (const [key, item] of Object.entries(merged)) {
        const before = sources.get(key);
        if (before && !before.merged) {
          this.warnings.push(`${this.file}:${line}: the merge key << replaces ${JSON.stringify(key)} set at line ${this.#line(before.node)}; kubectl keeps the merged value`);
        }
        out.set(key, item);
        sources.set(key, { node: keyNode, merged: true });
      }
    }
  }

  /** Alias.resolve searches the document each time; an alias repeated a million times must not. */
  #resolve(alias: Alias): Node | undefined {
    if (!this.#aliases.has(alias)) this.#aliases.set(alias, alias.resolve(this.#doc!));
    return this.#aliases.get(alias);
  }

  /** The node an alias stands for, or the node itself. */
  #target(node: ParsedNode | null, line: number): Node | null {
    if (!isAlias(node)) return node;
    const target = this.#resolve(node);
    if (!target) throw new DecodeError(line, `unknown anchor ${JSON.stringify(node.source)}`);
    return target;
  }

  /** sigs.k8s.io/yaml turns keys into JSON strings: booleans and numbers by their text, anything else is an error. */
  #key(node: ParsedNode | null): string {
    if (!isScalar(node) || node.value === null || node.value === undefined) {
      throw new DecodeError(this.#line(node), "a mapping key must be a string, number or boolean");
    }
    return String(this.#scalar(node.value, node));
  }
}

class DecodeError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

/** A plain `<<` (the yaml package resolves it to a symbol) or one tagged `!!merge`; a quoted "<<" is a key. */
function isMergeKey(node: ParsedNode | null): boolean {
  return isScalar(node) && (typeof node.value === "symbol" || node.tag === "tag:yaml.org,2002:merge");
}

function isObject(value: Json | undefined): value is { [key: string]: Json } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: Json | undefined): string {
  if (Array.isArray(value)) return "a list";
  if (value === null || value === undefined) return "null";
  return `the ${typeof value} ${JSON.stringify(value)}`;
}
