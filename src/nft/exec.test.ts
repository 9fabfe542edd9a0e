// The executor against the real nft binary: scripts are handed over as whole private files (never
// streamed, so a dying nadguard cannot leave nft a prefix to apply) and removed afterwards, with
// their folder.
import { execFileSync, spawnSync } from "node:child_process";
import { chmod, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nftErrorFromStderr } from "./errors.js";
import { ExecNftExecutor, HelperNftExecutor } from "./exec.js";

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

describe.skipIf(!isRoot)("HelperNftExecutor", () => {
  let parent: string;
  const ns = `ngexec${process.pid}`;
  beforeAll(async () => {
    parent = await mkdtemp(join(tmpdir(), "nadguard-exec-test-"));
    execFileSync("ip", ["netns", "add", ns]);
  });
  afterAll(async () => {
    execFileSync("ip", ["netns", "del", ns]);
    await rm(parent, { recursive: true, force: true });
  });

  it("applies in a netns through the helper, as nft -f does, and leaves no file behind", async () => {
    const executor = new HelperNftExecutor({ scriptDir: parent, helpers: 2 });
    try {
      expect(await executor.run("add table inet nadguard\nadd set inet nadguard s { type ipv4_addr; }\n", { netns: ns })).toEqual({ exitCode: 0, stdout: "", stderr: "" });
      expect(executor.usingHelper).toBe(true);
      const listing = await executor.list({ family: "inet", name: "nadguard" }, { netns: ns });
      expect(listing.ok).toBe(true);
      // Not in the caller's netns.
      expect((await new ExecNftExecutor().list({ family: "inet", name: "nadguard" }, {})).ok).toBe(false);
      expect(await scriptFolders(parent)).toEqual([]);
    } finally {
      executor.close();
    }
  });

  it("keeps Node running while a request waits for a helper to start (a program whose only work is one apply)", () => {
    const program = [
      `import { HelperNftExecutor } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, "exec.ts")).href)};`,
      `const result = await new HelperNftExecutor({ scriptDir: ${JSON.stringify(parent)} }).run("add table inet nadguard\\n", { netns: ${JSON.stringify(ns)} });`,
      "console.log(JSON.stringify(result));",
    ].join("\n");
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", program], { encoding: "utf8", timeout: 60_000 });
    expect({ status: child.status, stdout: child.stdout, stderr: child.stderr }).toEqual({ status: 0, stdout: `${JSON.stringify({ exitCode: 0, stdout: "", stderr: "" })}\n`, stderr: "" });
  });

  it("lists exactly as the nft processes do", async () => {
    const executor = new HelperNftExecutor({ scriptDir: parent });
    const processes = new ExecNftExecutor({ scriptDir: parent });
    const table = { family: "inet", name: "nadguard-list" } as const;
    try {
      const script = [
        "add table inet nadguard-list { comment \"c\"; }",
        "add chain inet nadguard-list ingress { type filter hook input priority 0; policy accept; }",
        "add set inet nadguard-list v4 { type ifname . ipv4_addr . inet_proto . inet_service; flags interval; }",
        'add element inet nadguard-list v4 { "net1" . 198.18.0.0/24 . tcp . 80-90, "net1" . 198.18.1.1 . udp . 53 }',
        'add rule inet nadguard-list ingress iifname . ip saddr . meta l4proto . th dport @v4 accept comment "r1"',
        "add rule inet nadguard-list ingress tcp dport { 22, 443 } drop",
        "",
      ].join("\n");
      expect((await executor.run(script, { netns: ns })).exitCode).toBe(0);
      for (const opts of [{}, { elements: true }, { elements: true, text: true }, { text: true }]) {
        const viaHelper = await executor.list(table, { ...opts, netns: ns });
        expect(viaHelper.ok).toBe(true);
        expect(viaHelper).toEqual(await processes.list(table, { ...opts, netns: ns }));
      }
      const missing = await executor.list({ family: "inet", name: "nadguard-none" }, { netns: ns, elements: true, text: true });
      expect(missing).toEqual(await processes.list({ family: "inet", name: "nadguard-none" }, { netns: ns, elements: true, text: true }));
      expect(!missing.ok && missing.error.reason).toBe("not-found");
    } finally {
      executor.close();
    }
  });

  it("is all or nothing and reports the failing line in nft's format", async () => {
    const executor = new HelperNftExecutor({ scriptDir: parent });
    try {
      const result = await executor.run("add element inet nadguard s { 198.18.0.1 }\nadd chain inet nadguard c { type nonsense; }\n", { netns: ns });
      expect(result.exitCode).toBe(1);
      const error = nftErrorFromStderr(result.stderr, { exitCode: result.exitCode });
      expect(error.line).toBe(2);
      expect(error.reason).toBe("syntax");
      const checked = await executor.run("add element inet nadguard s { 198.18.0.2 }\n", { netns: ns, check: true });
      expect(checked.exitCode).toBe(0);
      const listing = execFileSync("nsenter", [`--net=/run/netns/${ns}`, "nft", "list", "set", "inet", "nadguard", "s"], { encoding: "utf8" });
      expect(listing).not.toContain("198.18.0.1");
      expect(listing).not.toContain("198.18.0.2");
    } finally {
      executor.close();
    }
  });

  it("fails like nsenter on a missing netns, and falls back to processes without the helper", async () => {
    const executor = new HelperNftExecutor({ scriptDir: parent });
    try {
      const missing = await executor.run("add table inet nadguard\n", { netns: "/run/netns/nadguard-no-such-netns" });
      expect(missing.exitCode).toBe(-1);
      expect(missing.stderr).toMatch(/^nsenter: /);
    } finally {
      executor.close();
    }
    const without = new HelperNftExecutor({ scriptDir: parent, pythonPath: "/nonexistent/python3" });
    expect(await without.run("add table inet nadguard-exec-check\n", { check: true })).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    expect(without.usingHelper).toBe(false);
  });
});
