import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CachedAttachment, ResultCache } from "./cache.js";

let dir: string;
let cache: ResultCache;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-cni-cache-"));
  cache = new ResultCache(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ENTRY: CachedAttachment = {
  network: "lan",
  containerId: "c0ffee",
  ifname: "net1",
  config: '{"cniVersion":"1.0.0","name":"lan","plugins":[{"type":"bridge"}]}',
  netns: "/run/netns/pod",
  cniArgs: [["K8S_POD_NAME", "web"]],
  capabilityArgs: { mac: "02:00:00:00:00:01" },
  result: { cniVersion: "1.0.0", ips: [{ address: "198.18.0.2/24" }] },
};

describe("result cache", () => {
  it("writes a 0600 file in a 0700 directory, leaves no temporary file, and reads back what it wrote", async () => {
    expect(await cache.write(ENTRY)).toEqual({ ok: true, value: join(dir, "results", "lan-c0ffee-net1") });
    expect((await stat(join(dir, "results"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, "results", "lan-c0ffee-net1"))).mode & 0o777).toBe(0o600);
    expect(await readdir(join(dir, "results"))).toEqual(["lan-c0ffee-net1"]);
    expect(await cache.read(ENTRY)).toEqual({ ok: true, value: ENTRY });
  });

  it("replaces a file whole", async () => {
    await cache.write(ENTRY);
    await cache.write({ ...ENTRY, result: { cniVersion: "1.0.0", ips: [{ address: "198.18.0.3/24" }] } });
    const read = await cache.read(ENTRY);
    expect(read.ok && read.value?.result?.ips).toEqual([{ address: "198.18.0.3/24" }]);
  });

  it("reads a missing file as nothing, and refuses a corrupt or foreign one naming its path", async () => {
    expect(await cache.read(ENTRY)).toEqual({ ok: true, value: undefined });
    const file = join(dir, "results", "lan-c0ffee-net1");
    await mkdir(join(dir, "results"));
    await writeFile(file, '{"kind":"cniCacheV1","conta');
    expect(await cache.read(ENTRY)).toMatchObject({ ok: false, error: { code: 6, msg: expect.stringMatching(new RegExp(`^the result cache file ${file} is unreadable: not JSON`)) } });
    await writeFile(file, JSON.stringify({ kind: "somethingElse", containerId: "c0ffee", config: "e30=", ifName: "net1", networkName: "lan" }));
    expect(await cache.read(ENTRY)).toEqual({ ok: false, error: { code: 6, msg: `the result cache file ${file} is unreadable: kind: must be "cniCacheV1"` } });
    await writeFile(file, JSON.stringify({ kind: "cniCacheV1", containerId: "c0ffee", config: "e30=", ifName: "net1", networkName: "lan", result: { cniVersion: "1.0.0", ips: [{}] } }));
    expect(await cache.read(ENTRY)).toEqual({ ok: false, error: { code: 6, msg: `the result cache file ${file} is unreadable: result.ips[0].address: Invalid input: expected string, received undefined` } });
  });

  it("reads a file libcni wrote (Go's []byte as base64, no netns)", async () => {
    await mkdir(join(dir, "results"));
    const goWritten = '{"kind":"cniCacheV1","containerId":"abc","config":"eyJuYW1lIjoibGFuIn0=","ifName":"eth0","networkName":"lan","result":{"cniVersion":"0.4.0","ips":[{"version":"4","address":"198.18.0.2/24"}],"dns":{}}}';
    await writeFile(join(dir, "results", "lan-abc-eth0"), goWritten);
    expect(await cache.read({ network: "lan", containerId: "abc", ifname: "eth0" })).toEqual({
      ok: true,
      value: { network: "lan", containerId: "abc", ifname: "eth0", config: '{"name":"lan"}', result: { cniVersion: "0.4.0", ips: [{ version: "4", address: "198.18.0.2/24" }], dns: {} } },
    });
  });

  it("refuses keys that cannot be part of a file name (code 4)", async () => {
    for (const key of [
      { ...ENTRY, containerId: "../x" },
      { ...ENTRY, network: "a/b" },
      { ...ENTRY, ifname: "much-too-long-name" },
    ]) {
      const written = await cache.write(key);
      expect(written.ok ? 0 : written.error.code).toBe(4);
    }
    const written = await cache.write({ ...ENTRY, containerId: "../x" });
    expect(written.ok ? "" : written.error.msg).toBe(`cannot cache the result: container ID "../x" must be letters, digits, '_', '.' and '-', starting with a letter or digit`);
    expect(await readdir(dir)).toEqual([]);
  });

  it("lists a container's attachments, skipping temporary files and naming unreadable ones", async () => {
    await cache.write(ENTRY);
    await cache.write({ ...ENTRY, ifname: "net2" });
    await cache.write({ ...ENTRY, containerId: "other" });
    await writeFile(join(dir, "results", ".lan-c0ffee-net3.1.abcd.tmp"), "{");
    await writeFile(join(dir, "results", "lan-c0ffee-net4"), "{");
    const listed = await cache.list("c0ffee");
    expect(listed.attachments.map((a) => a.ifname)).toEqual(["net1", "net2"]);
    expect(listed.problems).toEqual([expect.stringContaining(`${join(dir, "results", "lan-c0ffee-net4")} is unreadable`)]);
    expect((await cache.list()).attachments).toHaveLength(3);
  });

  it("removes a file, and a missing one without complaint", async () => {
    await cache.write(ENTRY);
    expect(await cache.remove(ENTRY)).toEqual({ ok: true, value: undefined });
    expect(await cache.remove(ENTRY)).toEqual({ ok: true, value: undefined });
    expect(await readdir(join(dir, "results"))).toEqual([]);
  });
});
