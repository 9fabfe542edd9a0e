#!/usr/bin/env node
// Entry point of the `nadguard` command. Runs the compiled CLI in dist/ (built by `npm ci` through
// the `prepare` script, or by `npm run build`) when it is at least as new as every TypeScript
// source beside it; otherwise the sources through tsx (a runtime dependency). So a checkout whose
// sources changed since the last build runs what it holds, never a stale build, and an image that
// ships dist/ alone runs dist/.
import { existsSync, readdirSync, statSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const compiled = `${root}dist/src/cli/main.js`;

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

if (existsSync(compiled) && statSync(compiled).mtimeMs >= newestSource()) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(`${root}src/cli/main.ts`).href);
}
