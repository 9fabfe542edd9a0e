#!/usr/bin/env node
// Entry point of the `nadguard` command: runs the compiled CLI when `npm run build` has produced
// it, otherwise the TypeScript sources through tsx (a runtime dependency), so a fresh checkout works.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const compiled = fileURLToPath(new URL("../dist/src/cli/main.js", import.meta.url));
if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
