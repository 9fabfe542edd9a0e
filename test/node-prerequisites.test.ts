// `nadguard enforce`, `nadguard node` and `nadguard status` on a machine that lacks what they run (nft, nsenter), as
// the process a user runs with a PATH that holds only some of the tools: one line on stderr naming
// the missing programs and the Debian packages that ship them, exit 1, before anything is read or
// applied.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nadguard } from "./e2e/sys.js";

const EXAMPLES = join(import.meta.dirname, "..", "examples", "cluster");

let dir: string;

/** A directory holding links to only `commands` (each as found on this machine's PATH), to use as PATH. */
async function pathWith(name: string, commands: readonly string[]): Promise<string> {
  const bin = join(dir, name);
  await mkdir(bin);
  for (const command of commands) {
    const found = (process.env.PATH ?? "").split(delimiter).map((d) => join(d, command)).find((file) => existsSync(file));
    if (!found) throw new Error(`${command} is not installed on this machine: the test needs it`);
    await symlink(found, join(bin, command));
  }
  return bin;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-prerequisites-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ENFORCE = ["enforce", "--state", EXAMPLES, "--node", "node-1", "--netns", "/run/netns/nadguard-absent-{namespace}_{name}", "--once"];
const STATUS = ["status", "--netns", "/proc/self/ns/net"];

describe("node commands on a machine without nftables or util-linux", { timeout: 120_000 }, () => {
  it.each([
    { name: "no-nft", label: "enforce without nft", args: ENFORCE, tools: ["nsenter"], stderr: "nadguard enforce: nft is not installed (not found on PATH): install the Debian package nftables (apt-get install nftables)" },
    { name: "node-no-nft", label: "node without nft", args: ["node", "--state", EXAMPLES, "--node", "node-1"], tools: ["nsenter"], stderr: "nadguard node: nft is not installed (not found on PATH): install the Debian package nftables (apt-get install nftables)" },
    { name: "no-nsenter", label: "status without nsenter", args: STATUS, tools: ["nft"], stderr: "nadguard status: nsenter is not installed (not found on PATH): install the Debian package util-linux (apt-get install util-linux)" },
    {
      name: "neither",
      label: "status without either",
      args: STATUS,
      tools: [],
      stderr: "nadguard status: nft and nsenter are not installed (not found on PATH): install the Debian packages nftables and util-linux (apt-get install nftables util-linux)",
    },
  ])("$label: one line naming the packages, exit 1, nothing on stdout", async ({ name, args, tools, stderr }) => {
    const path = await pathWith(name, tools);
    expect(await nadguard(args, { env: { ...process.env, PATH: path } })).toEqual({ code: 1, stdout: "", stderr: `${stderr}\n` });
  });

  it("a usage error still comes first (exit 2)", async () => {
    const path = await pathWith("usage", []);
    const r = await nadguard(["enforce", "--state", EXAMPLES, "--node", "node-1", "--parallelism", "0"], { env: { ...process.env, PATH: path } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^nadguard enforce: --parallelism 0: expected a positive integer\n/);
  });
});
