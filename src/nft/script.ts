// Reads back the `nft -f` scripts that `render` writes, into operations: what lets the fake stand
// behind the real client as an executor, and what round-trip tests check the renderer with. It
// knows exactly the renderer's statement forms, not the whole nft grammar.
import { fail, ok, type Result } from "../api/errors.js";
import type { BaseChainSpec, Chain, DataType, Element, NftMap, NftObject, NftSet, Priority, Rule, SetFlag, Table, TableRef } from "./objects.js";
import type { Op, Verb } from "./transaction.js";

export interface ScriptOp {
  readonly ref: TableRef;
  readonly op: Op;
  /** 1-based line of the statement. */
  readonly line: number;
  /** 1-based column where an element starts, for element statements. */
  readonly column?: number;
}

export interface ScriptError {
  readonly line: number;
  readonly message: string;
}

class ParseError extends Error {}

/** Splits at `sep` outside double quotes and braces; keeps the offset of each piece. */
export function splitTop(text: string, sep: string): { text: string; offset: number }[] {
  const out: { text: string; offset: number }[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === "{") depth += 1;
    else if (!quoted && ch === "}") depth -= 1;
    else if (!quoted && depth === 0 && text.startsWith(sep, i)) {
      out.push({ text: text.slice(start, i), offset: start });
      start = i + sep.length;
      i = start - 1;
    }
  }
  out.push({ text: text.slice(start), offset: start });
  return out;
}

function specItems(spec: string | undefined): string[] {
  if (spec === undefined) return [];
  return splitTop(spec, ";")
    .map((p) => p.text.trim())
    .filter((p) => p !== "");
}

function comment(item: string): string | undefined {
  return /^comment "([^"]*)"$/.exec(item)?.[1];
}

const HEAD = /^(add|create|insert|replace|delete|flush) (table|chain|set|map|element|rule) (inet|ip|ip6) ([^\s{]+)(.*)$/;
const NAMED = /^ ([^\s{]+)(?: \{ (.*) \})?$/;

function parseTable(rest: string): Table {
  if (rest === "") return { kind: "table" };
  const match = /^ \{ (.*) \}$/.exec(rest);
  const text = match ? comment(specItems(match[1])[0] ?? "") : undefined;
  if (text === undefined) throw new ParseError(`unexpected table specification "${rest.trim()}"`);
  return { kind: "table", comment: text };
}

function named(rest: string): [string, string[]] {
  const match = NAMED.exec(rest);
  if (!match) throw new ParseError(`expected a name, got "${rest.trim()}"`);
  return [match[1]!, specItems(match[2])];
}

function parseChain(rest: string): Chain {
  const [name, items] = named(rest);
  let base: BaseChainSpec | undefined;
  let note: string | undefined;
  for (const item of items) {
    const hook = /^type (filter|nat|route) hook (\w+) priority (.+)$/.exec(item);
    const policy = /^policy (accept|drop)$/.exec(item);
    if (hook) {
      const priority = /^-?\d+$/.test(hook[3]!) ? Number(hook[3]) : (hook[3] as Priority);
      base = { type: hook[1] as BaseChainSpec["type"], hook: hook[2] as BaseChainSpec["hook"], priority, ...(base?.policy ? { policy: base.policy } : {}) };
    } else if (policy && base) base = { ...base, policy: policy[1] as "accept" | "drop" };
    else if (comment(item) !== undefined) note = comment(item);
    else throw new ParseError(`unexpected chain specification "${item}"`);
  }
  return { kind: "chain", name, ...(base ? { base } : {}), ...(note !== undefined ? { comment: note } : {}) };
}

function types(text: string): DataType | DataType[] {
  const parts = text.split(" . ") as DataType[];
  return parts.length === 1 ? parts[0]! : parts;
}

function parseSet(kind: "set" | "map", rest: string): NftSet | NftMap {
  const [name, items] = named(rest);
  const fields: Record<string, unknown> = { name };
  for (const item of items) {
    const key = /^(type|typeof) (.+)$/.exec(item);
    if (key) {
      let keyText = key[2]!;
      if (kind === "map") {
        const colon = keyText.lastIndexOf(" : ");
        if (colon < 0) throw new ParseError(`map ${name} needs "key : value"`);
        const value = keyText.slice(colon + 3);
        fields.value = key[1] === "type" ? types(value) : value;
        keyText = keyText.slice(0, colon);
      }
      fields[key[1]!] = key[1] === "type" ? types(keyText) : keyText;
      continue;
    }
    const [word, ...args] = item.split(" ");
    const arg = args.join(" ");
    if (word === "flags") fields.flags = arg.split(",") as SetFlag[];
    else if (word === "timeout") fields.timeout = arg;
    else if (word === "size") fields.size = Number(arg);
    else if (word === "policy") fields.policy = arg;
    else if (word === "auto-merge" && arg === "") fields.autoMerge = true;
    else if (comment(item) !== undefined) fields.comment = comment(item);
    else throw new ParseError(`unexpected ${kind} specification "${item}"`);
  }
  return { kind, ...fields } as NftSet | NftMap;
}

function parseElement(set: string, text: string): Element {
  const sides = splitTop(text, " : ");
  if (sides.length > 2) throw new ParseError(`element "${text}" has more than one value`);
  let key = sides[0]!.text.trim();
  const value = sides[1]?.text.trim();
  let note: string | undefined;
  let timeout: string | undefined;
  const c = / comment "([^"]*)"$/.exec(key);
  if (c) {
    note = c[1]!;
    key = key.slice(0, c.index);
  }
  const t = / timeout (\S+)$/.exec(key);
  if (t) {
    timeout = t[1]!;
    key = key.slice(0, t.index);
  }
  const parts = (s: string): string[] => splitTop(s, " . ").map((p) => p.text.trim());
  return {
    kind: "element",
    set,
    key: parts(key),
    ...(value !== undefined ? { value: parts(value) } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(note !== undefined ? { comment: note } : {}),
  };
}

function parseRule(verb: Verb, rest: string): Rule {
  const match = /^ (\S+)(?: (index|position|handle) (\d+))?(?: (.*))?$/.exec(rest);
  if (!match) throw new ParseError(`unexpected rule "${rest.trim()}"`);
  const [, chain, where, number, body] = match;
  if ((verb === "delete" || verb === "replace") && where !== "handle") throw new ParseError(`${verb} rule needs a handle`);
  const placement = where === "index" ? { index: Number(number) } : where !== undefined ? { handle: Number(number) } : {};
  if (verb === "delete") return { kind: "rule", chain: chain!, rule: "", ...placement };
  if (body === undefined || body.trim() === "") throw new ParseError("a rule needs a body");
  const c = / comment "([^"]*)"$/.exec(body);
  const text = c ? body.slice(0, c.index) : body;
  return { kind: "rule", chain: chain!, rule: text, ...placement, ...(c ? { comment: c[1]! } : {}) };
}

function parseLine(text: string, line: number): ScriptOp[] {
  const head = HEAD.exec(text);
  if (!head) throw new ParseError(`unexpected statement "${text}"`);
  const [, verb, kind, family, name, rest] = head as unknown as [string, Verb, NftObject["kind"], TableRef["family"], string, string];
  const ref: TableRef = { family, name };
  const one = (object: NftObject): ScriptOp[] => [{ ref, op: { verb, object } as Op, line }];
  const defines = verb === "add" || verb === "create";
  switch (kind) {
    case "table":
      return one(defines ? parseTable(rest) : (rest === "" ? { kind: "table" } : parseTable(rest)));
    case "chain":
      return one(defines ? parseChain(rest) : { kind: "chain", name: named(rest)[0] });
    case "set":
    case "map":
      if (defines) return one(parseSet(kind, rest));
      return one(kind === "set" ? { kind, name: named(rest)[0], type: [] } : { kind, name: named(rest)[0], type: [], value: [] });
    case "rule":
      return one(parseRule(verb, rest));
    case "element": {
      const match = /^ (\S+) \{ (.*) \}$/.exec(rest);
      if (!match) throw new ParseError(`expected "NAME { elements }", got "${rest.trim()}"`);
      const inner = match[2]!;
      const base = text.length - rest.length + rest.indexOf("{ ") + 2;
      return splitTop(inner, ",").map((piece) => {
        const lead = piece.text.length - piece.text.trimStart().length;
        return { ref, op: { verb, object: parseElement(match[1]!, piece.text) } as Op, line, column: base + piece.offset + lead + 1 };
      });
    }
  }
}

/** Parses a script written by `render`. Blank lines and `#` comment lines are skipped. */
export function parseScript(script: string): Result<ScriptOp[], ScriptError> {
  const out: ScriptOp[] = [];
  const lines = script.split("\n");
  for (const [i, raw] of lines.entries()) {
    const text = raw.trim();
    if (text === "" || text.startsWith("#")) continue;
    try {
      out.push(...parseLine(text, i + 1));
    } catch (error) {
      if (!(error instanceof ParseError)) throw error;
      return fail({ line: i + 1, message: error.message });
    }
  }
  return ok(out);
}
