// Reads back one table. `nft -j [-t] list table` gives the objects (checked with a zod schema of
// the nftables JSON format, libnftables-json(5)); nft 1.0.6's JSON lacks rule text, `typeof`,
// `auto-merge`, and table and chain comments, so an optional terse text listing
// (`nft -a -t list table`) fills those in, matched by name and rule handle.
import { z } from "zod";
import { fail, ok, problemsFromZod, type Problem, type Result } from "../api/errors.js";
import { formatDuration } from "./objects.js";
import type { BaseChainSpec, Chain, DataType, Element, Family, NftMap, NftSet, Rule, SetFlag, TableRef } from "./objects.js";
import type { TableState } from "./state.js";

export interface ListedRule extends Rule {
  readonly handle: number;
  /** The rule's expressions as nft's JSON (libnftables-json(5)), uninterpreted. */
  readonly expr: readonly unknown[];
}

export interface TableListing extends TableState {
  readonly family: Family;
  readonly name: string;
  readonly handle: number;
  readonly rules: readonly ListedRule[];
  /** Whether elements were read (a terse listing has none: `elements` is then empty). */
  readonly withElements: boolean;
  /** Whether the text listing was read: otherwise rule text is "" and typeof, auto-merge and table/chain comments are missing. */
  readonly withText: boolean;
}

const family = z.enum(["inet", "ip", "ip6"]);
const typeList = z.union([z.string(), z.array(z.string())]);

const jsonTable = z.object({ family, name: z.string(), handle: z.number(), comment: z.string().optional() });
const jsonChain = z.object({
  family,
  table: z.string(),
  name: z.string(),
  handle: z.number(),
  type: z.enum(["filter", "nat", "route"]).optional(),
  hook: z.enum(["prerouting", "input", "forward", "output", "postrouting"]).optional(),
  prio: z.number().optional(),
  policy: z.enum(["accept", "drop"]).optional(),
  comment: z.string().optional(),
});
const jsonSet = z.object({
  family,
  table: z.string(),
  name: z.string(),
  handle: z.number(),
  type: typeList,
  map: typeList.optional(),
  flags: z.array(z.string()).optional(),
  timeout: z.number().optional(),
  size: z.number().optional(),
  policy: z.enum(["performance", "memory"]).optional(),
  comment: z.string().optional(),
  elem: z.array(z.unknown()).optional(),
});
const jsonRule = z.object({
  family,
  table: z.string(),
  chain: z.string(),
  handle: z.number(),
  comment: z.string().optional(),
  expr: z.array(z.unknown()),
});
const jsonDocument = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

type JsonSet = z.infer<typeof jsonSet>;

const STRING_TYPES = new Set(["ifname", "string"]);
const VERDICTS = new Set(["accept", "drop", "continue", "return"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An element expression of nft's JSON as nft text, e.g. `{prefix:{addr:"10.0.0.0",len:8}}` → `10.0.0.0/8`. */
export function exprText(expr: unknown, dataType?: string): string {
  if (typeof expr === "string") return dataType !== undefined && STRING_TYPES.has(dataType) ? `"${expr}"` : expr;
  if (typeof expr === "number" || typeof expr === "boolean") return String(expr);
  if (!isRecord(expr)) return JSON.stringify(expr);
  const [key] = Object.keys(expr);
  if (key === undefined) return JSON.stringify(expr);
  if (VERDICTS.has(key)) return key;
  return EXPRESSIONS.get(key)?.(expr[key], dataType) ?? JSON.stringify(expr);
}

/** nft's JSON expressions by their one key: the text of the body, or undefined for a body of another shape. */
const EXPRESSIONS = new Map<string, (body: unknown, dataType: string | undefined) => string | undefined>([
  ["jump", (body) => (isRecord(body) ? `jump ${String(body.target)}` : undefined)],
  ["goto", (body) => (isRecord(body) ? `goto ${String(body.target)}` : undefined)],
  ["prefix", (body, dataType) => (isRecord(body) ? `${exprText(body.addr, dataType)}/${String(body.len)}` : undefined)],
  ["range", (body, dataType) => (Array.isArray(body) ? body.map((b) => exprText(b, dataType)).join("-") : undefined)],
  ["concat", (body, dataType) => (Array.isArray(body) ? body.map((b) => exprText(b, dataType)).join(" . ") : undefined)],
  ["elem", (body, dataType) => (isRecord(body) ? exprText(body.val, dataType) : undefined)],
]);

function parts(expr: unknown, types: readonly string[]): string[] {
  const inner = isRecord(expr) && isRecord(expr.elem) ? expr.elem.val : expr;
  if (isRecord(inner) && Array.isArray(inner.concat)) return inner.concat.map((p, i) => exprText(p, types[i]));
  return [exprText(inner, types[0])];
}

function elementFrom(set: JsonSet, entry: unknown): Element {
  const keyTypes = typeof set.type === "string" ? [set.type] : set.type;
  const valueTypes = set.map === undefined ? [] : typeof set.map === "string" ? [set.map] : set.map;
  const [keyExpr, valueExpr] = set.map !== undefined && Array.isArray(entry) ? entry : [entry, undefined];
  const meta = isRecord(keyExpr) && isRecord(keyExpr.elem) ? keyExpr.elem : undefined;
  const timeout = meta !== undefined && typeof meta.timeout === "number" ? formatDuration(meta.timeout * 1000) : undefined;
  const comment = meta !== undefined && typeof meta.comment === "string" ? meta.comment : undefined;
  return {
    kind: "element",
    set: set.name,
    key: parts(keyExpr, keyTypes),
    ...(set.map !== undefined ? { value: parts(valueExpr, valueTypes) } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(comment !== undefined ? { comment } : {}),
  };
}

function setFrom(s: JsonSet): NftSet | NftMap {
  const type = (typeof s.type === "string" ? s.type : [...s.type]) as DataType | DataType[];
  const common = {
    name: s.name,
    type,
    handle: s.handle,
    ...(s.flags && s.flags.length > 0 ? { flags: s.flags as SetFlag[] } : {}),
    ...(s.timeout !== undefined ? { timeout: formatDuration(s.timeout * 1000) } : {}),
    ...(s.size !== undefined ? { size: s.size } : {}),
    ...(s.policy !== undefined ? { policy: s.policy } : {}),
    ...(s.comment !== undefined ? { comment: s.comment } : {}),
  };
  if (s.map === undefined) return { kind: "set", ...common };
  return { kind: "map", ...common, value: typeof s.map === "string" ? s.map : ([...s.map] as DataType[]) };
}

function chainFrom(c: z.infer<typeof jsonChain>): Chain {
  const base: BaseChainSpec | undefined =
    c.type !== undefined && c.hook !== undefined
      ? { type: c.type, hook: c.hook, priority: c.prio ?? 0, ...(c.policy !== undefined ? { policy: c.policy } : {}) }
      : undefined;
  return { kind: "chain", name: c.name, handle: c.handle, ...(base ? { base } : {}), ...(c.comment !== undefined ? { comment: c.comment } : {}) };
}

interface Collected {
  table?: z.infer<typeof jsonTable>;
  chains: Chain[];
  sets: (NftSet | NftMap)[];
  elements: Element[];
  rules: ListedRule[];
}

function collect(kind: string, body: unknown, ref: TableRef, out: Collected, path: string): Problem[] {
  const mine = isRecord(body) && body.family === ref.family && (kind === "table" ? body.name : body.table) === ref.name;
  if (!mine) return [];
  const schema = kind === "table" ? jsonTable : kind === "chain" ? jsonChain : kind === "rule" ? jsonRule : jsonSet;
  const parsed = schema.safeParse(body);
  if (!parsed.success) return problemsFromZod(parsed.error, `${path}.${kind}`, "nft.listing");
  if (kind === "table") out.table = parsed.data as z.infer<typeof jsonTable>;
  else if (kind === "chain") out.chains.push(chainFrom(parsed.data as z.infer<typeof jsonChain>));
  else if (kind === "rule") {
    const r = parsed.data as z.infer<typeof jsonRule>;
    out.rules.push({ kind: "rule", chain: r.chain, rule: "", handle: r.handle, expr: r.expr, ...(r.comment !== undefined ? { comment: r.comment } : {}) });
  } else {
    const s = parsed.data as JsonSet;
    out.sets.push(setFrom(s));
    for (const entry of s.elem ?? []) out.elements.push(elementFrom(s, entry));
  }
  return [];
}

/**
 * Parses `nft -j list table` output into the listing of table `ref`. Objects of other tables, and
 * kinds nadguard does not use (counters, flowtables, …), are ignored. A document without the table
 * is a problem with code `nft.listing`.
 */
export function parseJsonListing(json: string, ref: TableRef, withElements: boolean): Result<TableListing> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    return fail([{ code: "nft.listing", path: "", message: `nft printed invalid JSON: ${(error as Error).message}` }]);
  }
  const doc = jsonDocument.safeParse(raw);
  if (!doc.success) return fail(problemsFromZod(doc.error, "", "nft.listing"));
  const out: Collected = { chains: [], sets: [], elements: [], rules: [] };
  const problems: Problem[] = [];
  doc.data.nftables.forEach((item, i) => {
    for (const kind of ["table", "chain", "set", "map", "rule"]) {
      if (kind in item) problems.push(...collect(kind, item[kind], ref, out, `nftables[${i}]`));
    }
  });
  if (problems.length > 0) return fail(problems);
  if (!out.table) return fail([{ code: "nft.listing", path: "", message: `the listing holds no table ${ref.family} ${ref.name}` }]);
  return ok({
    family: ref.family,
    name: ref.name,
    handle: out.table.handle,
    ...(out.table.comment !== undefined ? { comment: out.table.comment } : {}),
    chains: out.chains,
    sets: out.sets,
    elements: out.elements,
    rules: out.rules,
    withElements,
    withText: false,
  });
}

interface TextBlock {
  kind: "set" | "map" | "chain";
  name: string;
  lines: string[];
}

interface TextFacts {
  comment?: string;
  blocks: TextBlock[];
}

const BLOCK_START = /^\t(set|map|chain) (\S+) \{/;
const COMMENT_LINE = /^comment "(.*)"$/;

function readText(text: string): TextFacts {
  const facts: TextFacts = { blocks: [] };
  let block: TextBlock | undefined;
  for (const line of text.split("\n")) {
    const start = BLOCK_START.exec(line);
    if (start) {
      block = { kind: start[1] as TextBlock["kind"], name: start[2]!, lines: [] };
      facts.blocks.push(block);
    } else if (line === "\t}") {
      block = undefined;
    } else if (block && line.startsWith("\t\t")) {
      block.lines.push(line.slice(2));
    } else if (!block && line.startsWith("\t")) {
      const comment = COMMENT_LINE.exec(line.slice(1));
      if (comment) facts.comment = comment[1]!;
    }
  }
  return facts;
}

const HANDLE_SUFFIX = / # handle (\d+)$/;
const RULE_COMMENT = / comment "([^"]*)"$/;

/** A rule line of a text listing without handle, comment and counter values. */
export function ruleTextOf(line: string): { rule: string; comment?: string; handle?: number } {
  const handle = HANDLE_SUFFIX.exec(line);
  let rest = handle ? line.slice(0, handle.index) : line;
  const comment = RULE_COMMENT.exec(rest);
  if (comment) rest = rest.slice(0, comment.index);
  rest = rest.replace(/\bcounter packets \d+ bytes \d+/g, "counter");
  return { rule: rest, ...(comment ? { comment: comment[1]! } : {}), ...(handle ? { handle: Number(handle[1]) } : {}) };
}

function augmentSet(s: NftSet | NftMap, block: TextBlock | undefined): NftSet | NftMap {
  if (!block) return s;
  let out: NftSet | NftMap = block.lines.includes("auto-merge") ? { ...s, autoMerge: true } : s;
  const typeofLine = block.lines.find((l) => l.startsWith("typeof "));
  if (typeofLine !== undefined) {
    const spec = typeofLine.slice("typeof ".length);
    const { type: _type, ...rest } = out;
    if (rest.kind === "map") {
      const colon = spec.lastIndexOf(" : ");
      out = { ...rest, typeof: spec.slice(0, colon), value: spec.slice(colon + 3) };
    } else {
      out = { ...rest, typeof: spec };
    }
  }
  return out;
}

function augmentChain(c: Chain, block: TextBlock | undefined): Chain {
  const comment = block?.lines.map((l) => COMMENT_LINE.exec(l)).find((m) => m !== null);
  return comment ? { ...c, comment: comment[1]! } : c;
}

/** Fills a JSON listing with what only `nft -a -t list table` prints (see the file comment). */
export function withTextListing(listing: TableListing, text: string): TableListing {
  const facts = readText(text);
  const blockOf = (kind: string, name: string): TextBlock | undefined => facts.blocks.find((b) => b.kind === kind && b.name === name);
  const ruleByHandle = new Map<number, { rule: string; comment?: string }>();
  for (const block of facts.blocks) {
    if (block.kind !== "chain") continue;
    for (const line of block.lines) {
      const parsed = ruleTextOf(line);
      if (parsed.handle !== undefined) ruleByHandle.set(parsed.handle, parsed);
    }
  }
  return {
    ...listing,
    ...(facts.comment !== undefined ? { comment: facts.comment } : {}),
    chains: listing.chains.map((c) => augmentChain(c, blockOf("chain", c.name))),
    sets: listing.sets.map((s) => augmentSet(s, blockOf(s.kind, s.name))),
    rules: listing.rules.map((r) => ({ ...r, rule: ruleByHandle.get(r.handle)?.rule ?? r.rule })),
    withText: true,
  };
}
