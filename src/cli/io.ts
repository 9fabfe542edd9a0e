// Shared plumbing of the CLI commands: exit codes, argument errors, reading files (manifests: manifests.ts).
import { readFile, readdir } from "node:fs/promises";
import { InputError } from "../api/errors.js";
import { missingTools, missingToolsMessage } from "../nft/tools.js";

/** README, exit codes: 0 success/allowed, 3 denied, 2 usage or bad input, 1 anything else; 4 `--diff` found changes. */
export const EXIT = { ok: 0, failure: 1, usage: 2, denied: 3, changes: 4 } as const;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Any failure a command explains in one line, e.g. an address already in use: `nadguard COMMAND: message`, then `exitCode`. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
    this.name = "CommandError";
  }
}

export async function readText(file: string): Promise<string> {
  try {
    return file === "-" ? await readStdin() : await readFile(file, "utf8");
  } catch (error) {
    throw new InputError([{ code: "input.read", path: file, message: `cannot read: ${(error as Error).message}` }]);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** `host:port`, `[v6]:port` or `:port`; problems name the flag. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new UsageError(`--listen ${value}: expected HOST:PORT, e.g. 127.0.0.1:8443`);
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/**
 * For the commands that run nft in a netns (enforce, status): one line naming what is missing from
 * the machine and the Debian packages to install, or undefined when all is there.
 */
export async function nftToolsProblem(command: string): Promise<string | undefined> {
  const missing = await missingTools();
  return missing.length > 0 ? `nadguard ${command}: ${missingToolsMessage(missing)}` : undefined;
}

/**
 * A long-running command's `--state DIR` must be a directory it can read: one line and exit 2
 * otherwise, instead of serving an empty cluster.
 */
export async function checkStateDir(dir: string): Promise<void> {
  try {
    await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such directory" : code === "ENOTDIR" ? "not a directory" : (error as Error).message;
    throw new CommandError(`--state ${dir}: ${why}`);
  }
}
