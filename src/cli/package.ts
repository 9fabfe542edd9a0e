// The package's own files (package.json, README.md, examples/, certs/generated/) are found from the
// package root, never from this module's directory: the same module runs as src/cli/*.ts through
// tsx and as dist/src/cli/*.js once compiled, one level deeper.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The nearest directory upwards holding nadguard's package.json; failing that (a build copied
 * elsewhere, as the benchmarks do) the nearest holding any package.json, else the current directory.
 */
function findPackageRoot(): { root: string; version: string } {
  let fallback: { root: string; version: string } | undefined;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = readManifest(join(dir, "package.json"));
    if (manifest?.name === "nadguard") return { root: dir, version: String(manifest.version) };
    if (manifest) fallback ??= { root: dir, version: String(manifest.version ?? "unknown") };
    if (dirname(dir) === dir) return fallback ?? { root: process.cwd(), version: "unknown" };
  }
}

function readManifest(file: string): { name?: unknown; version?: unknown } | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}

const found = findPackageRoot();
/** The directory holding nadguard's package.json. */
export const PACKAGE_ROOT = found.root;
/** package.json's version, what `nadguard --version` prints. */
export const PACKAGE_VERSION = found.version;
