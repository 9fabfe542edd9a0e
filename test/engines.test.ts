// Every package that `npm ci` installs supports the Node.js version the project runs on (README and
// package.json `engines` say Node 20): a package that declares a newer engine would make `npm ci`
// warn EBADENGINE and may fail at run time (undici 8 and cookie 2 need Node 22).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

type Version = [number, number, number];

function parse(text: string): Version {
  const [major = 0, minor = 0, patch = 0] = text.replace(/^v/, "").split(".").map((part) => (/^\d+$/.test(part) ? Number(part) : 0));
  return [major, minor, patch];
}

function compare(a: Version, b: Version): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** One comparator of an npm range (`>=14`, `^20.19.0`, `10.*`, `>= 0.8`) against a version. */
function satisfiesComparator(version: Version, comparator: string): boolean {
  const match = /^(>=|<=|>|<|\^|~|=)?\s*v?([\dx*.]+)$/.exec(comparator.trim());
  if (!match) throw new Error(`unreadable engine range part ${JSON.stringify(comparator)}`);
  const [, op = "", bare = ""] = match;
  const parts = bare.split(".");
  const wildcard = parts.findIndex((part) => part === "x" || part === "*");
  const target = parse(bare);
  const c = compare(version, target);
  switch (op) {
    case ">=": return c >= 0;
    case ">": return c > 0;
    case "<=": return c <= 0;
    case "<": return c < 0;
    case "^": return c >= 0 && version[0] === target[0];
    case "~": return c >= 0 && version[0] === target[0] && version[1] === target[1];
    default:
      if (wildcard === 0) return true;
      if (wildcard > 0 || parts.length < 3) return version.slice(0, wildcard > 0 ? wildcard : parts.length).every((n, i) => n === target[i]);
      return c === 0;
  }
}

function satisfies(version: string, range: string): boolean {
  const v = parse(version);
  return range.split("||").some((alternative) => {
    const comparators = alternative.trim().replace(/(>=|<=|>|<)\s+/g, "$1").split(/\s+/).filter(Boolean);
    return comparators.every((comparator) => satisfiesComparator(v, comparator));
  });
}

describe("engines", () => {
  it("reads npm ranges as npm does", () => {
    expect(satisfies("20.20.2", "^20.19.0 || >=22.12.0")).toBe(true);
    expect(satisfies("20.20.2", ">=22")).toBe(false);
    expect(satisfies("20.20.2", "10.* || >= 12.*")).toBe(true);
    expect(satisfies("20.20.2", "^16 || ^18")).toBe(false);
    expect(satisfies("20.20.2", ">= 20.16.0")).toBe(true);
  });

  it("every locked package supports the running Node.js", () => {
    const lock = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package-lock.json"), "utf8")) as { packages: Record<string, { engines?: unknown }> };
    const unsupported = Object.entries(lock.packages).flatMap(([path, entry]) => {
      const node = typeof entry.engines === "object" && entry.engines !== null ? (entry.engines as Record<string, unknown>)["node"] : undefined;
      return typeof node === "string" && !satisfies(process.version, node) ? [`${path.replace(/^.*node_modules\//, "")} needs node ${node}`] : [];
    });
    expect(unsupported).toEqual([]);
  });
});
