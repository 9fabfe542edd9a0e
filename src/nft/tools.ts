// The programs the nft executors start, and the Debian packages that ship them. A command that
// applies or reads tables checks them when it starts, so that a machine without nftables gets one
// line naming the package instead of `nsenter: failed to execute nft` on the first netns. The
// native addon's libnftables is not among them: without it applies fall back to `nsenter … nft -f`.
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { delimiter, join } from "node:path";

export interface Tool {
  readonly command: string;
  /** The Debian package that installs it. */
  readonly debianPackage: string;
}

/** What `ExecNftExecutor` starts (the executor where the native addon cannot load): `nsenter --net=PATH nft …`. */
export const NFT_TOOLS: readonly Tool[] = [
  { command: "nft", debianPackage: "nftables" },
  { command: "nsenter", debianPackage: "util-linux" },
];

/** Where spawn looks when PATH is unset (libuv's execvp default). */
const DEFAULT_PATH = "/usr/bin:/bin";

async function executable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The tools not found as executable files in a directory of `path` (default: this process's PATH). An empty list when all are there. */
export async function missingTools(tools: readonly Tool[] = NFT_TOOLS, path: string = process.env.PATH ?? DEFAULT_PATH): Promise<Tool[]> {
  const dirs = path.split(delimiter).filter((dir) => dir !== "");
  const found = await Promise.all(tools.map(async (tool) => (await Promise.all(dirs.map((dir) => executable(join(dir, tool.command))))).some(Boolean)));
  return tools.filter((_, i) => !found[i]);
}

/** One line for a non-empty list: `nft is not installed (not found on PATH): install the Debian package nftables`. */
export function missingToolsMessage(missing: readonly Tool[]): string {
  const and = (words: readonly string[]): string => (words.length < 2 ? words.join("") : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`);
  const one = missing.length === 1;
  const packages = [...new Set(missing.map((t) => t.debianPackage))];
  return `${and(missing.map((t) => t.command))} ${one ? "is" : "are"} not installed (not found on PATH): install the Debian package${packages.length === 1 ? "" : "s"} ${and(packages)} (apt-get install ${packages.join(" ")})`;
}
