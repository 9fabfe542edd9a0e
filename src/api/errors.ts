// Errors as values: every problem nadguard reports about its input carries a stable code, a
// message a person can act on, and the path of the offending input (a file, a JSON path, an
// annotation element), so that no bad input ends in a crash or a silent pass.
import type { z } from "zod";
import type { ProblemCode } from "./problem-codes.js";

export type { ProblemCode } from "./problem-codes.js";

export interface Problem {
  /** Stable machine-readable code, e.g. `selection.empty-element`: one of PROBLEM_CODES (problem-codes.ts). */
  readonly code: ProblemCode;
  /** Where the problem is: a file path, a JSON path such as `spec.ingress[0].ports[1]`, or both. */
  readonly path: string;
  /** A sentence a person can act on. */
  readonly message: string;
}

/** Thrown only at the edges (CLI, loaders) to carry problems up to where they are printed. */
export class InputError extends Error {
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "InputError";
    this.problems = problems;
  }
}

export function formatProblem(problem: Problem): string {
  return problem.path ? `${problem.path}: ${problem.message}` : problem.message;
}

export type Result<T, E = Problem[]> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const fail = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });

/** Joins a JSON path prefix and a zod issue path into `a.b[0].c`. */
export function joinPath(prefix: string, segments: readonly PropertyKey[]): string {
  let out = prefix;
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

/** Turns a zod error into problems, each naming where in the input it is. */
export function problemsFromZod(error: z.ZodError, prefix: string, code: ProblemCode = "schema"): Problem[] {
  return error.issues.map((issue) => ({
    code,
    path: joinPath(prefix, issue.path),
    message: issue.message,
  }));
}

/** Prefixes each problem's path with the place it came from, e.g. a file name. */
export function atPlace(problems: readonly Problem[], place: string): Problem[] {
  return problems.map((problem) => ({ ...problem, path: `${place}: ${problem.path || "(top level)"}` }));
}

/** Parses `input` with `schema`; on failure the problems name `prefix` and the path inside. */
export function parseWith<T>(schema: z.ZodType<T>, input: unknown, prefix: string, code?: ProblemCode): Result<T> {
  const parsed = schema.safeParse(input);
  return parsed.success ? ok(parsed.data) : fail(problemsFromZod(parsed.error, prefix, code));
}
