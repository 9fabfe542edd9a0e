// Whether the compiled build in dist/ may run: it exists and is at least as new as every TypeScript
// source the build compiles. bin/nadguard.js runs dist/ when it may, else the sources through tsx;
// the benchmarks load the same modules as the command does by the same rule.
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));

/** Modification time of the newest source file that the build compiles (tests are not compiled). */
function newestSource() {
  let newest = 0;
  for (const dir of ["src", "webhook", "certs"]) {
    if (!existsSync(`${root}${dir}`)) continue;
    for (const file of readdirSync(`${root}${dir}`, { recursive: true })) {
      if (file.endsWith(".ts") && !file.endsWith(".test.ts")) newest = Math.max(newest, statSync(`${root}${dir}/${file}`).mtimeMs);
    }
  }
  return newest;
}

/** The compiled CLI's entry point. */
export const entry = `${root}dist/src/cli/main.js`;

/** True when dist/ is built and not older than the sources (decided once, when this module loads). */
export const compiledIsCurrent = existsSync(entry) && statSync(entry).mtimeMs >= newestSource();
