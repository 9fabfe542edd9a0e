// Denial messages of bounded size, whatever the input. A pod can name 30,000 missing NADs in one
// annotation (253 KiB, under the API server's 256 KiB limit for all annotations); listing each
// with its advice made a message of ~40 MB that was then cut. Here at most MAX_LISTED_PROBLEMS
// problems are formatted, the message stops growing at MAX_DENIAL_LENGTH, and what was left out
// is counted in one closing line ("and 29,990 more problems").
import { type Problem, formatProblem } from "../api/errors.js";
import { cutText } from "../api/text.js";

/** Problems listed in one denial; the rest are counted. A tenant fixes the first ones first. */
export const MAX_LISTED_PROBLEMS = 10;

/**
 * The longest message a denial carries (characters). A listed problem may carry the command that
 * would allow the request (a few hundred characters); the webhook's response cuts at this size too,
 * which a message built here never reaches.
 */
export const MAX_DENIAL_LENGTH = 16 * 1024;

/** Room kept for the closing "and N more" line. */
const CLOSING_RESERVE = 160;

/** Something counted but not listed: `{ count: 29990, one: "problem", many: "problems" }`. */
export interface Unlisted {
  readonly count: number;
  /** The noun phrase after a count of 1, e.g. `network not checked: the pod is denied already`. */
  readonly one: string;
  /** The same after any other count. */
  readonly many: string;
}

const PROBLEMS = { one: "problem", many: "problems" } as const;

export interface ExplainOptions {
  /** Heading of a list of several problems, given their total: `3 problems:`. Default: none. */
  readonly heading?: (total: number) => string;
  /** What the caller counted without giving it here (e.g. problems a parser did not keep). */
  readonly unlisted?: readonly Unlisted[];
}

/** 29990 → `29,990`. */
export const formatCount = (count: number): string => count.toLocaleString("en-US");

/**
 * `who: problem` for one problem, else `who: [heading]` and one `- problem` line per problem,
 * formatting only the problems it lists: at most MAX_LISTED_PROBLEMS, and no more than fit in
 * MAX_DENIAL_LENGTH. The ones left out, and `unlisted`, are counted in a last line.
 */
export function explainProblems<T>(who: string, items: readonly T[], format: (item: T) => string, options: ExplainOptions = {}): string {
  const extra = (options.unlisted ?? []).filter((u) => u.count > 0);
  const total = items.length + extra.reduce((sum, u) => sum + u.count, 0);
  if (items.length === 1 && extra.length === 0) return cutText(`${who}: ${format(items[0]!)}`, MAX_DENIAL_LENGTH);

  let message = `${who}:${options.heading ? ` ${options.heading(total)}` : ""}`;
  const budget = MAX_DENIAL_LENGTH - CLOSING_RESERVE;
  let listed = 0;
  for (const item of items) {
    if (listed === MAX_LISTED_PROBLEMS) break;
    const line = `\n- ${format(item)}`;
    if (message.length + line.length > budget) {
      // The first problem is always shown, cut if it must be; later ones wait for the next try.
      if (listed === 0) message += cutText(line, budget - message.length);
      else break;
    } else message += line;
    listed++;
  }
  const counts = new Map<string, Unlisted>();
  for (const u of [{ ...PROBLEMS, count: items.length - listed }, ...extra]) {
    if (u.count > 0) counts.set(u.many, { ...u, count: (counts.get(u.many)?.count ?? 0) + u.count });
  }
  if (counts.size === 0) return message;
  const parts = [...counts.values()].map((u, i) => `${formatCount(u.count)} ${i === 0 && listed > 0 ? "more " : ""}${u.count === 1 ? u.one : u.many}`);
  return `${message}\n- and ${parts.join(", and ")}`;
}

/**
 * `Kind ns/name: problem`, or `Kind ns/name: N problems:` and one `- path: problem` line each: the
 * denials of NADs and MultiNetworkPolicies.
 */
export function explainObjectProblems(who: string, problems: readonly Problem[]): string {
  return explainProblems(who, problems, formatProblem, { heading: (total) => `${formatCount(total)} problems:` });
}

