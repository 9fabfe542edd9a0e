// The executor against the real nft binary: scripts are handed over as whole private files (never
// streamed, so a dying nadguard cannot leave nft a prefix to apply) and removed afterwards, with
// their folder.
import { spawnSync } from "node:child_process";
import { chmod, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nftErrorFromStderr } from "./errors.js";
import { ExecNftExecutor } from "./exec.js";

const isRoot = process.getuid?.() === 0;

/** What nadguard left in a script parent folder. */
const scriptFolders = async (parent: string): Promise<string[]> => (await readdir(parent)).filter((name) => name.startsWith("nadguard-nft-"));

describe.skipIf(!isRoot)("ExecNftExecutor", () => {
  let parent: string;
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), "nadguard-exec-test-"));
  });
  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it("checks a script given as a private file and leaves no file or folder behind", async () => {
    const executor = new ExecNftExecutor({ scriptDir: parent });
    const result = await executor.run("add table inet nadguard-exec-check\n", { check: true });
    expect(result).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    expect(await scriptFolders(parent)).toEqual([]);
  });

  it("hands nft a file of mode 0600 in a folder of mode 0700", async () => {
    // An nft that prints the modes of the script it was given (its last argument) and its folder.
    const fake = join(parent, "fake-nft");
    await writeFile(fake, '#!/bin/sh\nfor last; do :; done\nstat -c "%a" "$(dirname "$last")" "$last"\n');
    await chmod(fake, 0o755);
    const result = await new ExecNftExecutor({ scriptDir: parent, nftPath: fake }).run("add table inet nadguard-exec-check\n", {});
    expect(result).toEqual({ exitCode: 0, stdout: "700\n600\n", stderr: "" });
    expect(await scriptFolders(parent)).toEqual([]);
  });

  it("lets a program whose nft cannot start end at once (no timer left for the kill timeout)", () => {
    const program = [
      `import { ExecNftExecutor } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, "exec.ts")).href)};`,
      `const executor = new ExecNftExecutor({ scriptDir: ${JSON.stringify(parent)}, nftPath: "/nonexistent/nft", timeoutMs: 3_600_000 });`,
      "const result = await executor.run('add table inet nadguard\\n', {});",
      "console.log(result.stderr);",
    ].join("\n");
    // Killed by this timeout (status null) if a timer of the executor kept it alive.
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", program], { encoding: "utf8", timeout: 60_000 });
    expect({ status: child.status, stdout: child.stdout }).toEqual({ status: 0, stdout: "cannot run /nonexistent/nft: spawn /nonexistent/nft ENOENT\n" });
  });

  it("reports the failing line of a bad script", async () => {
    const executor = new ExecNftExecutor({ scriptDir: parent });
    const result = await executor.run("add table inet nadguard-exec-check\nadd chain inet nadguard-exec-check c { type nonsense; }\n", { check: true });
    expect(result.exitCode).toBe(1);
    const error = nftErrorFromStderr(result.stderr, { exitCode: result.exitCode });
    expect(error.line).toBe(2);
    expect(error.reason).toBe("syntax");
  });
});
