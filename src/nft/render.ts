// Renders operations as an `nft -f` script: exactly the operations, in order, one statement per
// line, so that nft's `/dev/stdin:LINE:` error locations map back to operations. Consecutive
// element operations on one set share a statement (many elements in one `add element`: one
// statement for nft to parse, not one per element), chunked so that no line grows without bound.
import { formatDuration, parseDuration, priorityValue } from "./objects.js";
import type { Chain, Element, NftMap, NftObject, NftSet, SetFlag, Table, TableRef } from "./objects.js";
import type { Op } from "./transaction.js";

/** Elements per `add element` statement: large enough that a set of 100k elements takes 100 lines. */
export const ELEMENTS_PER_STATEMENT = 1000;

export interface RenderedLine {
  /** Index of the first operation on this line. */
  readonly firstOp: number;
  /** How many consecutive operations this line holds (more than one only for elements). */
  readonly opCount: number;
  /** For element lines: the 0-based column where each element starts. */
  readonly elementColumns?: readonly number[];
}

export interface Rendered {
  /** The script, each line ending with a newline; "" for no operations. */
  readonly script: string;
  /** `lines[i]` describes script line i + 1. */
  readonly lines: readonly RenderedLine[];
}

// nft prints set flags in this order (set_print_declaration in nftables' src/rule.c).
const FLAG_ORDER: readonly SetFlag[] = ["constant", "interval", "timeout", "dynamic"];

function quote(text: string): string {
  return `"${text}"`;
}

function duration(text: string): string {
  const ms = parseDuration(text);
  return ms === undefined ? text : formatDuration(ms);
}

function tableSpec(obj: Table): string {
  return obj.comment === undefined ? "" : ` { comment ${quote(obj.comment)}; }`;
}

function chainSpec(obj: Chain): string {
  const parts: string[] = [];
  if (obj.base) {
    const priority = priorityValue(obj.base.priority) ?? obj.base.priority;
    parts.push(`type ${obj.base.type} hook ${obj.base.hook} priority ${priority};`);
    if (obj.base.policy !== undefined) parts.push(`policy ${obj.base.policy};`);
  }
  if (obj.comment !== undefined) parts.push(`comment ${quote(obj.comment)};`);
  return parts.length === 0 ? "" : ` { ${parts.join(" ")} }`;
}

function typeText(type: string | readonly string[]): string {
  return typeof type === "string" ? type : type.join(" . ");
}

function setSpec(obj: NftSet | NftMap): string {
  const value = obj.kind === "map" ? ` : ${typeText(obj.value)}` : "";
  const parts = [obj.typeof !== undefined ? `typeof ${obj.typeof}${value};` : `type ${typeText(obj.type ?? [])}${value};`];
  const flags = FLAG_ORDER.filter((flag) => obj.flags?.includes(flag));
  if (flags.length > 0) parts.push(`flags ${flags.join(",")};`);
  if (obj.timeout !== undefined) parts.push(`timeout ${duration(obj.timeout)};`);
  if (obj.size !== undefined) parts.push(`size ${obj.size};`);
  if (obj.policy !== undefined) parts.push(`policy ${obj.policy};`);
  if (obj.autoMerge) parts.push("auto-merge;");
  if (obj.comment !== undefined) parts.push(`comment ${quote(obj.comment)};`);
  return ` { ${parts.join(" ")} }`;
}

/** One element as it appears between the braces of an element statement. */
export function elementText(el: Element, withValue = true): string {
  let out = el.key.length === 1 ? el.key[0]! : el.key.join(" . ");
  if (el.timeout !== undefined) out += ` timeout ${duration(el.timeout)}`;
  if (el.comment !== undefined) out += ` comment ${quote(el.comment)}`;
  if (withValue && el.value !== undefined) out += ` : ${el.value.join(" . ")}`;
  return out;
}

function ruleStatement(op: Op, head: string): string {
  const obj = op.object;
  if (obj.kind !== "rule") return head;
  let out = `${head} ${obj.chain}`;
  if (op.verb === "delete") return `${out} handle ${obj.handle ?? 0}`;
  if (op.verb === "replace") out += ` handle ${obj.handle ?? 0}`;
  else if (obj.index !== undefined) out += ` index ${obj.index}`;
  else if (obj.handle !== undefined) out += ` position ${obj.handle}`;
  out += ` ${obj.rule}`;
  return obj.comment === undefined ? out : `${out} comment ${quote(obj.comment)}`;
}

/** The statement for one non-element operation. */
export function statementText(ref: TableRef, op: Op): string {
  const obj: NftObject = op.object;
  const head = `${op.verb} ${obj.kind} ${ref.family} ${ref.name}`;
  const defines = op.verb === "add" || op.verb === "create";
  switch (obj.kind) {
    case "table":
      return defines ? head + tableSpec(obj) : head;
    case "chain":
      return `${head} ${obj.name}${defines ? chainSpec(obj) : ""}`;
    case "set":
    case "map":
      return `${head} ${obj.name}${defines ? setSpec(obj) : ""}`;
    case "rule":
      return ruleStatement(op, head);
    case "element":
      return `${head} ${obj.set} { ${elementText(obj, op.verb !== "delete")} }`;
  }
}

function sameElementRun(a: Op, b: Op): boolean {
  return a.verb === b.verb && a.object.kind === "element" && b.object.kind === "element" && a.object.set === b.object.set;
}

/** Renders `ops` on table `ref`. Runs of up to `perStatement` element operations share one line. */
export function renderOps(ref: TableRef, ops: readonly Op[], perStatement = ELEMENTS_PER_STATEMENT): Rendered {
  const out: string[] = [];
  const lines: RenderedLine[] = [];
  let i = 0;
  while (i < ops.length) {
    const op = ops[i]!;
    if (op.object.kind !== "element") {
      out.push(statementText(ref, op));
      lines.push({ firstOp: i, opCount: 1 });
      i += 1;
      continue;
    }
    let end = i + 1;
    while (end < ops.length && end - i < perStatement && sameElementRun(op, ops[end]!)) end += 1;
    const head = `${op.verb} element ${ref.family} ${ref.name} ${op.object.set} { `;
    const withValue = op.verb !== "delete";
    const columns: number[] = new Array<number>(end - i);
    const texts: string[] = new Array<string>(end - i);
    let column = head.length;
    for (let j = i; j < end; j += 1) {
      const text = elementText(ops[j]!.object as Element, withValue);
      columns[j - i] = column;
      texts[j - i] = text;
      column += text.length + 2;
    }
    out.push(`${head}${texts.join(", ")} }`);
    lines.push({ firstOp: i, opCount: end - i, elementColumns: columns });
    i = end;
  }
  return { script: out.length === 0 ? "" : `${out.join("\n")}\n`, lines };
}

/** The operation that script line `line` (1-based) and column `column` (1-based) point at. */
export function opAt(rendered: Rendered, line: number, column?: number): number | undefined {
  const info = rendered.lines[line - 1];
  if (!info) return undefined;
  if (!info.elementColumns || column === undefined) return info.firstOp;
  let index = 0;
  info.elementColumns.forEach((start, k) => {
    if (start <= column - 1) index = k;
  });
  return info.firstOp + index;
}
