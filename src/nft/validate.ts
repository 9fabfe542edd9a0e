// Checks that keep every operation on exactly one line of an `nft -f` script: names are nft
// identifiers, texts hold no line break and no `;` or `#` outside quotes (either would end or cut
// the statement and let one name or rule inject another command). Run before anything is rendered.
import type { Problem } from "../api/errors.js";
import { parseDuration, priorityValue } from "./objects.js";
import type { Chain, Element, NftMap, NftObject, NftSet, Rule, Table } from "./objects.js";

// The lexer's `string` token in nftables' scanner.l; names longer than NFT_NAME_MAXLEN - 1 are refused by the kernel.
const NAME = /^[A-Za-z_.][A-Za-z0-9_./-]*$/;
const NAME_MAX = 255;
// NFTNL_UDATA_COMMENT_MAXLEN in libnftnl.
const COMMENT_MAX = 128;

export function nameProblem(name: string): string | undefined {
  if (!NAME.test(name)) return `"${name}" is not an nft name (letters, digits, _ . / -, not starting with a digit or -)`;
  if (name.length > NAME_MAX) return `name is longer than ${NAME_MAX} characters`;
  return undefined;
}

export function commentProblem(comment: string): string | undefined {
  if (/["\r\n\0]/.test(comment)) return "a comment may not contain a double quote or a line break";
  if (Buffer.byteLength(comment) > COMMENT_MAX) return `a comment is at most ${COMMENT_MAX} bytes`;
  return undefined;
}

/**
 * Why `text` cannot be one piece of a statement, or undefined. `forbidden` lists the characters
 * (besides `;`, `#` and line breaks) not allowed outside double quotes.
 */
export function textProblem(text: string, forbidden = ""): string | undefined {
  if (text.trim() === "") return "is empty";
  let quoted = false;
  for (const ch of text) {
    if (ch === "\n" || ch === "\r" || ch === "\0") return "contains a line break";
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === ";" || ch === "#" || forbidden.includes(ch))) return `contains "${ch}" outside quotes`;
  }
  return quoted ? "has an unterminated quote" : undefined;
}

type Check = (field: string, message: string | undefined) => void;

function checkTable(obj: Table, check: Check): void {
  if (obj.comment !== undefined) check("comment", commentProblem(obj.comment));
}

function checkChain(obj: Chain, check: Check): void {
  check("name", nameProblem(obj.name));
  if (obj.comment !== undefined) check("comment", commentProblem(obj.comment));
  if (obj.base && priorityValue(obj.base.priority) === undefined) {
    check("base.priority", `"${obj.base.priority}" is not a chain priority`);
  }
}

function checkSet(obj: NftSet | NftMap, check: Check): void {
  check("name", nameProblem(obj.name));
  if ((obj.type === undefined) === (obj.typeof === undefined)) check("type", "give exactly one of type and typeof");
  if (Array.isArray(obj.type) && obj.type.length === 0) check("type", "a concatenation needs at least one type");
  if (obj.typeof !== undefined) check("typeof", prefixed(textProblem(obj.typeof, "{},:")));
  if (obj.kind === "map") {
    const value = Array.isArray(obj.value) ? obj.value.join(" . ") : (obj.value as string);
    check("value", prefixed(textProblem(value, "{},:")));
  }
  if (obj.timeout !== undefined && parseDuration(obj.timeout) === undefined) check("timeout", `"${obj.timeout}" is not an nft duration`);
  if (obj.size !== undefined && (!Number.isInteger(obj.size) || obj.size <= 0)) check("size", "size must be a positive integer");
  if (obj.comment !== undefined) check("comment", commentProblem(obj.comment));
}

function checkElement(obj: Element, check: Check): void {
  check("set", nameProblem(obj.set));
  if (obj.key.length === 0) check("key", "an element needs a key");
  obj.key.forEach((part, i) => check(`key[${i}]`, prefixed(textProblem(part, "{},"))));
  obj.value?.forEach((part, i) => check(`value[${i}]`, prefixed(textProblem(part, "{},"))));
  if (obj.value?.length === 0) check("value", "a map element value needs at least one part");
  if (obj.timeout !== undefined && parseDuration(obj.timeout) === undefined) check("timeout", `"${obj.timeout}" is not an nft duration`);
  if (obj.comment !== undefined) check("comment", commentProblem(obj.comment));
}

function checkRule(obj: Rule, check: Check, verb: string | undefined): void {
  check("chain", nameProblem(obj.chain));
  // A rule is deleted by its handle; its text is not rendered.
  if (verb !== "delete") check("rule", prefixed(textProblem(obj.rule)));
  if (obj.comment !== undefined) check("comment", commentProblem(obj.comment));
  if (obj.index !== undefined && (!Number.isInteger(obj.index) || obj.index < 0)) check("index", "index must be a non-negative integer");
  if (obj.handle !== undefined && (!Number.isInteger(obj.handle) || obj.handle <= 0)) check("handle", "handle must be a positive integer");
  if (obj.index !== undefined && obj.handle !== undefined) check("index", "give index or handle, not both");
}

function prefixed(message: string | undefined): string | undefined {
  return message === undefined ? undefined : `text ${message}`;
}

// Addresses, prefixes, ranges, ports, protocol names: the bulk of every element list.
const PLAIN_PART = /^[A-Za-z0-9_.:/-]+$/;

/** A fast yes for the common element (plain key and value parts, no options); false means "check in full". */
export function isPlainElement(obj: Element): boolean {
  if (obj.timeout !== undefined || obj.comment !== undefined || obj.key.length === 0 || !NAME.test(obj.set)) return false;
  for (const part of obj.key) if (!PLAIN_PART.test(part)) return false;
  if (obj.value !== undefined) {
    if (obj.value.length === 0) return false;
    for (const part of obj.value) if (!PLAIN_PART.test(part) && !/^(jump|goto) [A-Za-z_.][A-Za-z0-9_./-]*$/.test(part)) return false;
  }
  return true;
}

/** Problems of one object, each with a path under `path` (e.g. `ops[3].rule`); `verb` relaxes what a delete does not render. */
export function objectProblems(obj: NftObject, path: string, verb?: string): Problem[] {
  const problems: Problem[] = [];
  const check: Check = (field, message) => {
    if (message !== undefined) problems.push({ code: "nft.invalid", path: `${path}.${field}`, message });
  };
  switch (obj.kind) {
    case "table":
      checkTable(obj, check);
      break;
    case "chain":
      checkChain(obj, check);
      break;
    case "set":
    case "map":
      checkSet(obj, check);
      break;
    case "element":
      checkElement(obj, check);
      break;
    case "rule":
      checkRule(obj, check, verb);
      break;
  }
  return problems;
}
