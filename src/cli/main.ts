#!/usr/bin/env node
// Entry point of the `nadguard` command; the commands live in commands.ts.
import { main } from "./commands.js";

// A reader that stops early (`nadguard matrix … | head`) closes the pipe: stop quietly, as cat does.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  process.exit(0);
});

// Long-running commands (webhook, enforce) resolve only when they have stopped.
process.exitCode = await main(process.argv.slice(2));
