#!/usr/bin/env node
// Entry point of the `nadguard` command. Runs the compiled CLI in dist/ (built by `npm ci` through
// the `prepare` script, or by `npm run build`) when it is at least as new as every TypeScript
// source beside it; otherwise the sources through tsx (a runtime dependency). So a checkout whose
// sources changed since the last build runs what it holds, never a stale build, and an image that
// ships dist/ alone runs dist/.
import { pathToFileURL } from "node:url";
import { compiledIsCurrent, entry, root } from "./compiled.js";

if (compiledIsCurrent) {
  await import(pathToFileURL(entry).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(pathToFileURL(`${root}src/cli/main.ts`).href);
}
