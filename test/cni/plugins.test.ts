// src/cni's runner against the REAL plugins of Debian's containernetworking-plugins and real network
// namespaces (test/cni/netns.ts), removed in afterAll whatever happened.
import { chmod, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CniRunner, type NetworkConfigList, type RuntimeConf, SpawnPluginExec, convertResult, formatCniError } from "../../src/cni/index.js";
import { must, sleep } from "../e2e/sys.js";
import { CNI_DIR, CniNetns, IS_ROOT, globalAddresses, list } from "./netns.js";

if (!IS_ROOT) console.warn("\n!! test/cni/plugins.test.ts SKIPPED: not root, cannot create network namespaces !!\n");

describe.skipIf(!IS_ROOT)("CNI plugins from /usr/lib/cni", () => {
  let lab: CniNetns;
  let podPath: string;
  let dir: string;
  let dataDir: string;
  let runner: CniRunner;
  const podLinks = () => lab.links(podPath);

  const lan = (): NetworkConfigList =>
    list({
      cniVersion: "1.0.0",
      name: "lan",
      plugins: [
        {
          type: "bridge",
          bridge: "ngbr0",
          ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "198.18.20.0/24" }], [{ subnet: "fd00:20::/64" }]] },
        },
        { type: "tuning", capabilities: { mac: true } },
      ],
    });
  const rt = (over: Partial<RuntimeConf> = {}): RuntimeConf => ({
    containerId: "pod-1",
    netns: podPath,
    ifname: "net1",
    args: [
      ["IgnoreUnknown", "1"],
      ["K8S_POD_NAME", "web"],
    ],
    capabilityArgs: { mac: "02:00:5e:12:34:56", portMappings: [{ hostPort: 1, containerPort: 1, protocol: "tcp" }] },
    ...over,
  });

  beforeAll(async () => {
    lab = await CniNetns.create();
    podPath = await lab.addPod("pod");
    dir = lab.dir;
    dataDir = lab.dataDir;
    runner = new CniRunner({ pluginDirs: [join(dir, "bin"), CNI_DIR], cacheDir: join(dir, "cache"), exec: new SpawnPluginExec({ netns: lab.switchPath }) });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it("ADD of bridge + tuning puts net1 in the pod with host-local's addresses and the MAC asked through the mac capability", async () => {
    const added = await runner.add(lan(), rt());
    if (!added.ok) throw new Error(formatCniError(added.error));
    const net1 = (await podLinks()).find((l) => l.ifname === "net1");
    expect(net1?.address).toBe("02:00:5e:12:34:56");
    const addresses = globalAddresses(net1);
    expect(addresses).toHaveLength(2);
    expect(addresses[0]).toMatch(/^198\.18\.20\.\d+\/24$/);
    expect(addresses[1]).toMatch(/^fd00:20::[0-9a-f]+\/64$/);
    // The result says what the kernel has; tuning reports the MAC it set.
    expect(added.value.ips?.map((ip) => ip.address)).toEqual(addresses);
    const sandbox = added.value.interfaces?.find((i) => i.sandbox === podPath);
    expect(sandbox).toEqual({ name: "net1", mac: "02:00:5e:12:34:56", sandbox: podPath });
    // host-local's lease, one file per address, named after the address.
    expect(await lab.leases("lan")).toEqual(addresses.map((a) => a.split("/")[0]).sort());
    expect(await readdir(join(dir, "cache", "results"))).toEqual(["lan-pod-1-net1"]);
  });

  it("CHECK passes while the attachment is intact and returns the plugin's error once the address is gone", async () => {
    expect(await runner.check(lan(), rt())).toEqual({ ok: true, value: undefined });
    const address = globalAddresses((await podLinks()).find((l) => l.ifname === "net1"))[0]!;
    await must("ip", ["-n", podPath.slice("/run/netns/".length), "addr", "del", address, "dev", "net1"]);
    const checked = await runner.check(lan(), rt());
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.error).toMatchObject({ plugin: "bridge", network: "lan", command: "CHECK" });
    expect(formatCniError(checked.error)).toMatch(/^plugin type="bridge" name="lan" failed \(check\): .*198\.18\.20\./);
  });

  it("DEL removes net1 and host-local's leases and the cache file; a second DEL, with an empty netns, succeeds too", async () => {
    expect(await runner.del(lan(), rt())).toEqual({ ok: true, value: { warnings: [] } });
    expect((await podLinks()).map((l) => l.ifname)).toEqual(["lo"]);
    expect(await lab.leases("lan")).toEqual([]);
    expect(await readdir(join(dir, "cache", "results"))).toEqual([]);
    expect(await runner.del(lan(), rt({ netns: "" }))).toEqual({ ok: true, value: { warnings: [] } });
  });

  it("passes runtimeConfig ips to static IPAM only through a plugin that declares the ips capability", async () => {
    const macvlan = (capabilities: Record<string, boolean>): NetworkConfigList =>
      list({ cniVersion: "1.0.0", name: "mv", type: "macvlan", master: "mvp", mode: "bridge", capabilities, ipam: { type: "static" } });
    const added = await runner.add(macvlan({ ips: true }), rt({ ifname: "net2", capabilityArgs: { ips: ["198.18.21.5/24", "fd00:21::5/64"] } }));
    if (!added.ok) throw new Error(formatCniError(added.error));
    expect(globalAddresses((await podLinks()).find((l) => l.ifname === "net2"))).toEqual(["198.18.21.5/24", "fd00:21::5/64"]);
    expect(await runner.del(macvlan({ ips: true }), rt({ ifname: "net2" }))).toMatchObject({ ok: true });
    expect((await podLinks()).map((l) => l.ifname)).toEqual(["lo"]);

    // Undeclared: static gets no addresses and macvlan refuses. macvlan 1.1.1 leaves its link behind
    // on that path; the DEL a runtime sends after a failed ADD removes it.
    const refused = await runner.add(macvlan({}), rt({ ifname: "net2", capabilityArgs: { ips: ["198.18.21.5/24"] } }));
    expect(refused.ok ? "" : formatCniError(refused.error)).toBe('plugin type="macvlan" name="mv" failed (add): IPAM plugin returned missing IP config');
    expect(await runner.del(macvlan({}), rt({ ifname: "net2" }))).toMatchObject({ ok: true });
    expect((await podLinks()).map((l) => l.ifname)).toEqual(["lo"]);
  });

  it("loopback brings the pod's lo up", async () => {
    const links = await podLinks();
    expect(links.find((l) => l.ifname === "lo")?.flags).not.toContain("UP");
    const added = await runner.add(list({ cniVersion: "1.0.0", name: "lo", type: "loopback" }), rt({ ifname: "lo" }));
    expect(added.ok && added.value.ips?.map((ip) => ip.address)).toEqual(["127.0.0.1/8", "::1/128"]);
    expect((await podLinks()).find((l) => l.ifname === "lo")?.flags).toContain("UP");
  });

  it("returns a plugin's error with its own code, message and details", async () => {
    const added = await runner.add(list({ cniVersion: "1.1.0", name: "new", type: "bridge", bridge: "ngbr1" }), rt({ ifname: "net3" }));
    expect(added).toEqual({
      ok: false,
      error: {
        code: 1,
        msg: "incompatible CNI versions",
        details: 'config is "1.1.0", plugin supports ["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0"]',
        plugin: "bridge",
        network: "new",
        command: "ADD",
      },
    });
    const noMaster = await runner.add(list({ cniVersion: "1.0.0", name: "mv", type: "macvlan", master: "nope", ipam: { type: "static", addresses: [{ address: "198.18.22.2/24" }] } }), rt({ ifname: "net3" }));
    expect(noMaster.ok ? "" : formatCniError(noMaster.error)).toBe('plugin type="macvlan" name="mv" failed (add): Link not found');
  });

  it("names the missing type and the directories searched", async () => {
    const added = await runner.add(list({ cniVersion: "1.0.0", name: "x", type: "nadguard-no-such-plugin" }), rt({ ifname: "net4" }));
    expect(added.ok ? "" : formatCniError(added.error)).toBe(`plugin type="nadguard-no-such-plugin" name="x" failed (add): no plugin binary "nadguard-no-such-plugin" in the plugin path: searched ${join(dir, "bin")}, ${CNI_DIR}`);
  });

  it("the first directory of the path that holds a type wins", async () => {
    await mkdir(join(dir, "bin"), { recursive: true });
    const shadow = join(dir, "bin", "loopback");
    await writeFile(shadow, `#!/bin/sh\necho '{"code":100,"msg":"the shadowing loopback ran"}'\nexit 1\n`);
    await chmod(shadow, 0o755);
    try {
      const added = await runner.add(list({ cniVersion: "1.0.0", name: "lo", type: "loopback" }), rt({ ifname: "lo" }));
      expect(added.ok ? "" : added.error.msg).toBe("the shadowing loopback ran");
    } finally {
      await rm(shadow);
    }
  });

  it("kills a plugin that runs past the time limit, and what it started", async () => {
    const bin = join(dir, "slow-bin");
    await mkdir(bin, { recursive: true });
    const pids = join(dir, "slow.pids");
    // A shell that starts a child holding stdout open, as a plugin that forks would.
    await writeFile(join(bin, "slow"), `#!/bin/sh\nsleep 300 &\necho "$$ $!" > ${pids}\nwait\n`);
    await chmod(join(bin, "slow"), 0o755);
    const slow = new CniRunner({ pluginDirs: [bin], cacheDir: join(dir, "cache"), exec: new SpawnPluginExec(), timeoutMs: 1000 });
    const added = await slow.add(list({ cniVersion: "1.0.0", name: "slow", type: "slow" }), rt({ ifname: "net5" }));
    expect(added).toEqual({ ok: false, error: { code: 999, msg: `${join(bin, "slow")} did not answer within 1000 ms and was killed`, plugin: "slow", command: "ADD", network: "slow" } });
    const started = (await readFile(pids, "utf8")).trim().split(" ").map(Number);
    expect(started).toHaveLength(2);
    for (const pid of started) expect(await gone(pid)).toBe(true);
  });

  it("asks a plugin which versions it speaks", async () => {
    const versions = await runner.versions("bridge");
    expect(versions.ok && versions.value.supportedVersions).toContain("1.0.0");
  });

  it("returns the result in the version the network asked for, convertible to any other", async () => {
    const old = list({ cniVersion: "0.4.0", name: "old", type: "bridge", bridge: "ngbr2", ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "198.18.23.0/24" }]] } });
    const added = await runner.add(old, rt({ ifname: "net6" }));
    if (!added.ok) throw new Error(formatCniError(added.error));
    expect(added.value.cniVersion).toBe("0.4.0");
    expect(added.value.ips).toEqual([{ version: "4", interface: 2, address: expect.stringMatching(/^198\.18\.23\./), gateway: "198.18.23.1" }]);
    const converted = convertResult(added.value, "1.0.0");
    expect(converted.ok && converted.value.ips).toEqual([{ interface: 2, address: added.value.ips![0]!.address, gateway: "198.18.23.1" }]);
    expect(await runner.del(old, rt({ ifname: "net6" }))).toMatchObject({ ok: true });
  });
});

/** Whether a process has ended (gone, or a zombie waiting for its parent), waiting a little for the kernel. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
    if (stat === undefined || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) return true;
    await sleep(100);
  }
  return false;
}
