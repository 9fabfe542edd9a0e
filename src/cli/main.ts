#!/usr/bin/env node
// Entry point of the `nadguard` command; the commands live in commands.ts.
import { main } from "./commands.js";

// Long-running commands (webhook, enforce) resolve only when they have stopped.
process.exitCode = await main(process.argv.slice(2));
