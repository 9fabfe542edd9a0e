// Comments and messages cite what a reader of this repository can check: a spec, an upstream
// project's file or issue (`kubernetes-client/javascript#3020`), an RFC, the benchmark that measures
// a figure, README. Not the project's own tracker ("issue 4", "the defaults") nor notes kept
// outside the repository (field notes, DESIGN.md and the like), which a reader does not have.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const FOLDERS = ["src", "bin", "bench", "test", "scripts", "manifests", "webhook", "certs", "examples"];
const SKIP = new Set(["node_modules", "dist", "generated"]);
const SELF = relative(ROOT, import.meta.filename);

/** A citation a reader cannot follow. */
const UNREADABLE = /\b[Ii]ssues? \d+|\b[Ii]ssue's\b|FIELD-NOTES|CNI-NOTES|DESIGN\.md|STYLE\.md|\bfield notes?\b/;

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return SKIP.has(entry.name) ? [] : files(path);
    return /\.(ts|js|mjs|sh|py|ya?ml|md)$/.test(entry.name) || !entry.name.includes(".") ? [path] : [];
  });
}

describe("citations", () => {
  it("name sources a reader of the repository can check", () => {
    const found = [...FOLDERS.flatMap(files), "README.md", "BENCHMARKS.md", "Dockerfile"]
      .filter((path) => path !== SELF)
      .flatMap((path) =>
        readFileSync(join(ROOT, path), "utf8")
          .split("\n")
          .flatMap((line, i) => (UNREADABLE.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : [])),
      );
    expect(found).toEqual([]);
  });

  it("catches the forms it is meant to", () => {
    for (const line of ["// (issue 4, section 1)", "// Issue 6's target", "it(\"has the issue's defaults\")", "// FIELD-NOTES: x", "// see DESIGN.md", "// (CNI-NOTES)", "// the field notes say"]) {
      expect(UNREADABLE.test(line), line).toBe(true);
    }
    for (const line of ["return error.issues.map((issue) => issue.message);", "// multus-cni #1527", "// kubernetes-client/javascript#3020", "issued a new CA"]) {
      expect(UNREADABLE.test(line), line).toBe(false);
    }
  });
});
