// Field checks shared by the CNI config validators (cni-config.ts, cni-plugins.ts, cni-ipam.ts):
// each reads one key of a decoded JSON object, reports a problem naming its JSON path when the
// value has the wrong type or range, and returns the value when it is usable.
//
// As in Go's encoding/json, which every CNI plugin decodes its config with, `null` means absent.
import type { Problem } from "../api/errors.js";
import type { CodeIn } from "../api/problem-codes.js";
import { type Family, parseIp } from "./addresses.js";
import { interfaceNameProblem } from "./names.js";

export type JsonObject = Record<string, unknown>;

/** What the validators found: problems deny the NAD, warnings are returned to the user. */
export interface Findings {
  readonly problems: Problem[];
  readonly warnings: string[];
}

/** `a.b` or `a[0]`. */
export function at(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : `${path}.${key}`;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function report(findings: Findings, code: CodeIn<"cni">, path: string, message: string): void {
  findings.problems.push({ code: `cni.${code}`, path, message });
}

/** How a JSON value reads in a message: strings quoted, long values cut. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "an array";
  if (isObject(value)) return "an object";
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** `a, b or c`. */
export function either(values: readonly string[]): string {
  return values.length <= 1 ? (values[0] ?? "") : `${values.slice(0, -1).join(", ")} or ${values[values.length - 1]}`;
}

/** The value of `key`, or undefined when absent or null. */
export function field(object: JsonObject, key: string): unknown {
  const value = object[key];
  return value === null ? undefined : value;
}

export function optString(findings: Findings, object: JsonObject, key: string, path: string): string | undefined {
  const value = field(object, key);
  if (value === undefined || typeof value === "string") return value;
  report(findings, "wrong-type", at(path, key), `must be a string, not ${show(value)}`);
  return undefined;
}

export function optBool(findings: Findings, object: JsonObject, key: string, path: string): boolean | undefined {
  const value = field(object, key);
  if (value === undefined || typeof value === "boolean") return value;
  report(findings, "wrong-type", at(path, key), `must be true or false, not ${show(value)}`);
  return undefined;
}

/** An integer within [min, max] (max optional). */
export function optInt(
  findings: Findings,
  object: JsonObject,
  key: string,
  path: string,
  range: { min: number; max?: number },
): number | undefined {
  const value = field(object, key);
  if (value === undefined) return undefined;
  const allowed = range.max === undefined ? `an integer of at least ${range.min}` : `an integer from ${range.min} to ${range.max}`;
  if (typeof value !== "number" || !Number.isInteger(value) || value < range.min || (range.max !== undefined && value > range.max)) {
    report(findings, "out-of-range", at(path, key), `must be ${allowed}, not ${show(value)}`);
    return undefined;
  }
  return value;
}

/** One of `allowed`; `what` names the set with its article, e.g. "a macvlan mode". An empty string means the default. */
export function optEnum(
  findings: Findings,
  object: JsonObject,
  key: string,
  path: string,
  allowed: readonly string[],
  what: string,
): string | undefined {
  const value = field(object, key);
  if (value === undefined || value === "") return undefined;
  if (typeof value === "string" && allowed.includes(value)) return value;
  report(findings, "bad-value", at(path, key), `${show(value)} is not ${what}; use ${either(allowed)}`);
  return undefined;
}

/** A host interface name (IFNAMSIZ rules). */
export function optInterface(findings: Findings, object: JsonObject, key: string, path: string): string | undefined {
  const value = optString(findings, object, key, path);
  if (value === undefined) return undefined;
  const problem = interfaceNameProblem(value);
  if (problem === undefined) return value;
  report(findings, "bad-interface", at(path, key), `${show(value)} is not a Linux interface name: it ${problem}`);
  return undefined;
}

/** An IP address without prefix. */
export function optIp(findings: Findings, object: JsonObject, key: string, path: string): { family: Family; value: bigint; text: string } | undefined {
  const text = optString(findings, object, key, path);
  if (text === undefined) return undefined;
  const ip = parseIp(text);
  if (ip) return { ...ip, text };
  report(findings, "bad-ip", at(path, key), `${show(text)} is not an IP address`);
  return undefined;
}

/** An array (absent → undefined); a non-array is reported. */
export function optArray(findings: Findings, object: JsonObject, key: string, path: string, of: string): unknown[] | undefined {
  const value = field(object, key);
  if (value === undefined || Array.isArray(value)) return value;
  report(findings, "wrong-type", at(path, key), `must be an array of ${of}, not ${show(value)}`);
  return undefined;
}

/** An object (absent → undefined); anything else is reported. */
export function optObject(findings: Findings, object: JsonObject, key: string, path: string): JsonObject | undefined {
  const value = field(object, key);
  if (value === undefined || isObject(value)) return value;
  report(findings, "wrong-type", at(path, key), `must be an object, not ${show(value)}`);
  return undefined;
}

export const familyName = (family: Family): string => (family === 4 ? "IPv4" : "IPv6");
