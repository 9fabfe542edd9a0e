// The package's own files (package.json, examples/, certs/generated/) are found from the package
// root, never from this module's directory: the same module runs as src/cli/*.ts through tsx and
// as dist/src/cli/*.js once compiled, one level deeper.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findPackageRoot(): { root: string; version: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (manifest.name === "nadguard") return { root: dir, version: String(manifest.version) };
    } catch {
      // no package.json here (or not nadguard's): look one level up
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`nadguard's package.json not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

const found = findPackageRoot();
/** The directory holding nadguard's package.json. */
export const PACKAGE_ROOT = found.root;
/** package.json's version, what `nadguard --version` prints. */
export const PACKAGE_VERSION = found.version;
