// The offline pause image: the archive is what `ctr images import` reads (GNU tar lists it: files
// owned by root, mtime 0; the config's diff_id is the layer's sha256; manifest.json names both),
// the same input gives the same bytes, and the compiled pause, run as PID 1 of a new PID
// namespace (as in a sandbox), exits 0 on SIGTERM at once (PID 1 ignores signals it has no
// handler for) and not before.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { must, run, sleep } from "../e2e/sys.js";
import { buildPauseImage, pauseImageArchive, tarArchive } from "./pause-image.js";

const IS_ROOT = process.getuid?.() === 0;

describe("pause image", () => {
  let dir = "";
  let archive = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nadguard-pause-"));
    archive = await buildPauseImage(dir, "nadguard.invalid/pause:test");
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is a docker archive GNU tar reads: manifest, config named by its sha256, one layer holding /pause", async () => {
    const listing = (await must("tar", ["-tvf", archive, "--numeric-owner"])).trim().split("\n");
    expect(listing).toHaveLength(3);
    for (const line of listing) expect(line).toMatch(/^-rw-r--r-- 0\/0 +\d+ 1970-01-01 00:00 /);
    const manifest = JSON.parse(await must("tar", ["-xOf", archive, "manifest.json"])) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0]!.RepoTags).toEqual(["nadguard.invalid/pause:test"]);
    const configText = await must("tar", ["-xOf", archive, manifest[0]!.Config]);
    expect(manifest[0]!.Config).toBe(`${createHash("sha256").update(configText).digest("hex")}.json`);
    const config = JSON.parse(configText) as { os: string; config: { Entrypoint: string[] }; rootfs: { diff_ids: string[] } };
    expect(config.os).toBe("linux");
    expect(config.config.Entrypoint).toEqual(["/pause"]);
    await must("tar", ["-xf", archive, "-C", dir, manifest[0]!.Layers[0]!]);
    const layer = await readFile(join(dir, manifest[0]!.Layers[0]!));
    expect(config.rootfs.diff_ids).toEqual([`sha256:${createHash("sha256").update(layer).digest("hex")}`]);
    expect((await must("tar", ["-tvf", join(dir, manifest[0]!.Layers[0]!), "--numeric-owner"])).trim()).toMatch(/^-rwxr-xr-x 0\/0 +\d+ 1970-01-01 00:00 pause$/);
  });

  it("is the same bytes for the same binary and name", async () => {
    const binary = await readFile(join(dir, "pause"));
    expect(pauseImageArchive(binary, "a.invalid/p:1").equals(pauseImageArchive(binary, "a.invalid/p:1"))).toBe(true);
    expect(pauseImageArchive(binary, "a.invalid/p:1").equals(pauseImageArchive(binary, "a.invalid/p:2"))).toBe(false);
  });

  it("refuses a name tar's header cannot hold", () => {
    expect(() => tarArchive([{ name: "x".repeat(101), data: Buffer.alloc(0), mode: 0o644 }])).toThrow(`tar entry name too long: ${"x".repeat(101)}`);
  });

  it("is a static executable (the image holds no libc)", async () => {
    const ldd = await run("ldd", [join(dir, "pause")]);
    expect(`${ldd.stdout}${ldd.stderr}`).toMatch(/not a dynamic executable/);
  });

  it.skipIf(!IS_ROOT)("as PID 1 of a new PID namespace: keeps running, then exits 0 on SIGTERM", async () => {
    const child = spawn("unshare", ["--pid", "--fork", "--kill-child", join(dir, "pause")], { stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      let pid1 = 0;
      for (let i = 0; i < 100 && pid1 === 0; i++) {
        await sleep(20);
        const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, "utf8").catch(() => "");
        pid1 = Number(children.trim().split(" ")[0] ?? 0);
      }
      expect(pid1).toBeGreaterThan(0);
      expect((await readFile(`/proc/${pid1}/status`, "utf8")).match(/^NSpid:\s+\d+\s+(\d+)$/m)?.[1]).toBe("1");
      await sleep(200);
      expect(child.exitCode).toBeNull();
      process.kill(pid1, "SIGTERM");
      expect(await Promise.race([exited, sleep(5_000).then(() => "still running")])).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});

describe("tarArchive", () => {
  it("pads each file to 512 bytes and ends with two zero blocks", async () => {
    const tar = tarArchive([{ name: "a.txt", data: Buffer.from("hello\n"), mode: 0o600 }]);
    expect(tar.length).toBe(512 + 512 + 1024);
    const dir = await mkdtemp(join(tmpdir(), "nadguard-tar-"));
    try {
      await writeFile(join(dir, "t.tar"), tar);
      expect(await must("tar", ["-xOf", join(dir, "t.tar"), "a.txt"])).toBe("hello\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
