// nft's failures as values. nft reports errors on stderr as
//   /dev/stdin:3:1-20: Error: Could not process rule: No such file or directory
//   <the statement>
//   <carets under the offending part>
// (or `Error: …` / `netlink: Error: …` without a location); each becomes a detail with its line,
// and the first one decides the reason, mapped from the errno text nft prints.
import type { Problem } from "../api/errors.js";
import type { Op } from "./transaction.js";

export type NftErrorReason =
  /** ENOENT: a table, chain, set, element or rule handle that does not exist. */
  | "not-found"
  /** EEXIST: `create` of an existing object, or `add` of one defined differently. */
  | "exists"
  /** nft could not parse or evaluate the statement. */
  | "syntax"
  /** EPERM: not root / no CAP_NET_ADMIN in the network namespace. */
  | "permission"
  /** EBUSY: deleting a set or chain that is still referenced, or a non-empty chain. */
  | "busy"
  /** Rejected before nft ran (see `problems`), or EINVAL/EOPNOTSUPP-like refusals from the kernel. */
  | "invalid"
  /** nft could not be started, or was killed (timeout). */
  | "exec"
  | "unknown";

export interface NftErrorDetail {
  /** 1-based script line, when nft names one. */
  readonly line?: number;
  /** 1-based first and last column nft underlines. */
  readonly columns?: readonly [number, number];
  readonly message: string;
  /** The statement nft printed under the message (the failing script line). */
  readonly statement?: string;
  readonly reason: NftErrorReason;
}

export interface NftError extends Problem {
  /** `nft.<reason>`. */
  readonly code: `nft.${NftErrorReason}`;
  readonly reason: NftErrorReason;
  /** The first failing script line (1-based), when known. */
  readonly line?: number;
  /** The text of that line, from the script that was run. */
  readonly statement?: string;
  /** The operation on that line (for a line of many elements: the element nft pointed at). */
  readonly op?: Op;
  readonly opIndex?: number;
  /** Every error nft printed, in order. */
  readonly details: readonly NftErrorDetail[];
  /** Validation problems of a transaction refused before nft ran (reason `invalid`). */
  readonly problems?: readonly Problem[];
  readonly stderr: string;
  readonly exitCode?: number;
}

const REASONS: ReadonlyArray<readonly [NftErrorReason, RegExp]> = [
  ["permission", /Operation not permitted|Permission denied|you must be root/i],
  ["busy", /Device or resource busy/i],
  ["exists", /File exists/i],
  ["not-found", /No such file or directory|does not exist|not found/i],
  ["syntax", /syntax error|unexpected|expecting/i],
  ["invalid", /Invalid argument|not supported|out of range|mismatch|conflicting|overlap|is not a|Could not resolve|too long|Argument list too long|No buffer space/i],
];

/** The reason behind one nft error message. */
export function classifyNftMessage(message: string): NftErrorReason {
  return REASONS.find(([, pattern]) => pattern.test(message))?.[0] ?? "unknown";
}

const LOCATED = /^(?:[^:\s]+):(\d+):(\d+)-(\d+): Error: (.*)$/;
const UNLOCATED = /^(?:netlink: )?Error: (.*)$/;

/**
 * Splits nft's stderr into details. A located error is followed by the statement and a caret
 * line; an unlocated `Error:` may be followed by the command; other lines (warnings, "you must be
 * root") become details of their own only if no error line was found at all.
 */
export function parseNftStderr(stderr: string): NftErrorDetail[] {
  const lines = stderr.split("\n");
  const details: NftErrorDetail[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const found = errorAt(lines, i);
    if (!found) continue;
    details.push(found.detail);
    i += found.skip;
  }
  if (details.length === 0) {
    const message = lines.map((l) => l.trim()).find((l) => l !== "") ?? "nft failed without a message";
    details.push({ message, reason: classifyNftMessage(message) });
  }
  return details;
}

const CARETS = /^\s*\^+\s*$/;

/**
 * The error that line `i` of stderr starts, and how many lines after it belong to it (its statement
 * and caret line); undefined when line `i` is no error line.
 */
function errorAt(lines: readonly string[], i: number): { detail: NftErrorDetail; skip: number } | undefined {
  const text = lines[i]!.trimEnd();
  const located = LOCATED.exec(text);
  const message = located ? located[4] : UNLOCATED.exec(text)?.[1];
  if (message === undefined) return undefined;
  const next = lines[i + 1];
  const caretsFollow = CARETS.test(lines[i + 2] ?? "");
  const isStatement = next !== undefined && next !== "" && !LOCATED.test(next) && !UNLOCATED.test(next);
  const statement = isStatement && (located || caretsFollow) ? next : undefined;
  const detail: NftErrorDetail = {
    ...(located ? { line: Number(located[1]), columns: [Number(located[2]), Number(located[3])] as const } : {}),
    message,
    ...(statement !== undefined ? { statement } : {}),
    reason: classifyNftMessage(message),
  };
  return { detail, skip: statement === undefined ? 0 : caretsFollow ? 2 : 1 };
}

export interface NftErrorContext {
  /** The script that was run: its lines are the statements errors point at. */
  readonly script?: string;
  /** Maps a 1-based line and column to the operation there. */
  readonly opAt?: (line: number, column?: number) => number | undefined;
  readonly ops?: readonly Op[];
  readonly netns?: string;
  readonly exitCode?: number;
}

const STATEMENT_SHOWN = 200;

function where(netns: string | undefined, line: number | undefined): string {
  const at = line === undefined ? "" : `line ${line}`;
  if (netns === undefined) return at;
  return at === "" ? `netns ${netns}` : `netns ${netns}, ${at}`;
}

/** Builds the error of a failed nft run from its stderr. */
export function nftErrorFromStderr(stderr: string, context: NftErrorContext = {}): NftError {
  const details = parseNftStderr(stderr);
  const first = details.find((d) => d.line !== undefined) ?? details[0]!;
  const line = first.line;
  const statement = scriptLineAt(context.script, line) ?? first.statement;
  const opIndex = line === undefined ? undefined : context.opAt?.(line, first.columns?.[0]);
  const op = opIndex === undefined ? undefined : context.ops?.[opIndex];
  return {
    code: `nft.${first.reason}`,
    reason: first.reason,
    path: where(context.netns, line),
    message: `${first.message}${shownStatement(statement)}`,
    ...(line !== undefined ? { line } : {}),
    ...(statement !== undefined ? { statement } : {}),
    ...(op !== undefined ? { op, opIndex } : {}),
    details,
    stderr,
    ...(context.exitCode !== undefined ? { exitCode: context.exitCode } : {}),
  };
}

/** Line `line` (1-based) of the script that was run, when both are known. */
function scriptLineAt(script: string | undefined, line: number | undefined): string | undefined {
  return line === undefined || script === undefined ? undefined : script.split("\n", line)[line - 1];
}

/** `: statement` for the message, cut to STATEMENT_SHOWN characters; empty without one. */
function shownStatement(statement: string | undefined): string {
  if (statement === undefined) return "";
  return `: ${statement.length > STATEMENT_SHOWN ? `${statement.slice(0, STATEMENT_SHOWN)}…` : statement}`;
}

/** The error of a transaction refused before nft ran. */
export function invalidTransactionError(problems: readonly Problem[], netns?: string): NftError {
  const message = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join("; ");
  return {
    code: "nft.invalid",
    reason: "invalid",
    path: where(netns, undefined),
    message: `transaction not run: ${message}`,
    details: problems.map((p) => ({ message: `${p.path}: ${p.message}`, reason: "invalid" as const })),
    problems,
    stderr: "",
  };
}

/** The error of an nft process that could not be started or did not finish. */
export function execError(message: string, netns?: string): NftError {
  return { code: "nft.exec", reason: "exec", path: where(netns, undefined), message, details: [{ message, reason: "exec" }], stderr: "" };
}
