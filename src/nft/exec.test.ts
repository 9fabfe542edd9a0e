// The executor against the real nft binary: scripts are handed over as whole private files (never
// streamed, so a dying nadguard cannot leave nft a prefix to apply) and removed afterwards.
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nftErrorFromStderr } from "./errors.js";
import { ExecNftExecutor } from "./exec.js";

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)("ExecNftExecutor", () => {
  let parent: string;
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), "nadguard-exec-test-"));
  });
  afterAll(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  it("checks a script given as a private file and leaves no file behind", async () => {
    const executor = new ExecNftExecutor({ scriptDir: parent });
    const result = await executor.run("add table inet nadguard-exec-check\n", { check: true });
    expect(result).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    const [folder, ...others] = await readdir(parent);
    expect(others).toEqual([]);
    expect(folder).toMatch(/^nadguard-nft-/);
    expect((await stat(join(parent, folder!))).mode & 0o777).toBe(0o700);
    expect(await readdir(join(parent, folder!))).toEqual([]);
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
