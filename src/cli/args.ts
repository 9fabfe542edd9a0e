// Command-line parsing for every command: node:util's parseArgs does the work; what it reports is
// rephrased for a person (`unknown option --bogus for 'nadguard admit'`, with the nearest option
// when one is close), instead of Node's parser messages.
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./io.js";

export type Options = NonNullable<ParseArgsConfig["options"]>;
export type Values = Record<string, string | boolean | string[] | undefined>;

/** An argument a command does not know; the message names the command already. */
export class UnknownArgumentError extends UsageError {
  constructor(message: string) {
    super(message);
    this.name = "UnknownArgumentError";
  }
}

/**
 * Parses `args` for `nadguard COMMAND`. Throws UnknownArgumentError for an option the command does
 * not have (or a positional argument it does not take), UsageError for a missing or unwanted value.
 */
export function parseCommandArgs(
  command: string,
  args: readonly string[],
  options: Options,
  allowPositionals: boolean,
): { values: Values; positionals: string[] } {
  // A lenient pass first: it yields every option token, known or not, so that the first unknown
  // one is reported by name before any complaint about values.
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === "option" && !Object.hasOwn(options, token.name)) {
      const hint = nearest(token.name, Object.keys(options));
      throw new UnknownArgumentError(
        `unknown option ${token.rawName} for 'nadguard ${command}'${hint ? `; did you mean --${hint}?` : ""}`,
      );
    }
    if (token.kind === "positional" && !allowPositionals) {
      throw new UnknownArgumentError(`unexpected argument ${JSON.stringify(token.value)} for 'nadguard ${command}': it takes options only`);
    }
  }
  try {
    const { values, positionals } = parseArgs({ args: [...args], options, strict: true, allowPositionals });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new UsageError(rephrase(error as Error));
  }
}

/** parseArgs' remaining complaints are about option values. */
function rephrase(error: Error): string {
  const option = /Option '(-[^' ]+)/.exec(error.message)?.[1];
  if (option === undefined) return error.message;
  if (error.message.includes("does not take an argument")) return `${option} takes no value`;
  return `${option} needs a value (${option}=VALUE when the value starts with -)`;
}

/**
 * The candidate closest to `typed` by edit distance, when it is close enough to be a typo (at most a
 * third of the longer name wrong, at least one character) or `typed` is its prefix; else undefined.
 */
export function nearest(typed: string, candidates: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of candidates) {
    const distance = name.startsWith(typed) && typed.length >= 2 ? 0 : editDistance(typed, name);
    if (!best || distance < best.distance) best = { name, distance };
  }
  if (!best) return undefined;
  return best.distance <= Math.max(1, Math.floor(Math.max(typed.length, best.name.length) / 3)) ? best.name : undefined;
}

/** Edit distance counting an insertion, a deletion, a substitution or two swapped neighbours as one. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}
