import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseNetworkConfig } from "./config.js";
import { type CachedDelegate, parseDelegateCache, readDelegateCache, removeDelegateCache, writeDelegateCache } from "./delegate-cache.js";

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64");
const CLUSTER = { cniVersion: "0.3.1", name: "k8s-pod-network", plugins: [{ type: "bridge", bridge: "cni0" }, { type: "portmap", capabilities: { portMappings: true } }] };
const BLUE = { cniVersion: "1.0.0", name: "blue", type: "macvlan", master: "eth1", capabilities: { ips: true, mac: true }, ipam: { type: "static" } };
const GREEN = { name: "green", type: "host-device", capabilities: { deviceID: true } };

// As Multus 4 writes it: Go's marshalling of []*DelegateNetConf, with the parsed Conf/ConfList copies beside Bytes.
const FILE = JSON.stringify([
  { Conf: { cniVersion: "0.3.1", name: "k8s-pod-network" }, ConfList: CLUSTER, Name: "k8s-pod-network", IsFilterV4Gateway: false, IsFilterV6Gateway: false, Bytes: b64(CLUSTER) },
  {
    Conf: BLUE,
    ConfList: { cniVersion: "", name: "", plugins: null },
    Name: "nets/blue",
    ifnameRequest: "blue0",
    macRequest: "02:00:00:00:00:05",
    ipRequest: ["198.18.40.5/24"],
    "default-route": ["198.18.40.1"],
    IsFilterV4Gateway: false,
    IsFilterV6Gateway: true,
    Bytes: b64(BLUE),
  },
  { Conf: GREEN, ConfList: { plugins: null }, Name: "nets/green", IsFilterV4Gateway: true, IsFilterV6Gateway: true, deviceID: "0000:3b:02.1", resourceName: "intel.com/sriov_netdevice", Bytes: b64(GREEN) },
]);

describe("delegate cache", () => {
  it("reads each delegate's config from Bytes and the interface Multus gave it", () => {
    const parsed = parseDelegateCache(FILE, "/var/lib/cni/multus/abc", "eth0", "0.4.0");
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
    expect(parsed.value.map((d) => [d.name, d.ifname, d.clusterNetwork, d.config.name, d.config.cniVersion, d.config.plugins.map((p) => p.type)])).toEqual([
      ["k8s-pod-network", "eth0", true, "k8s-pod-network", "0.3.1", ["bridge", "portmap"]],
      ["nets/blue", "blue0", false, "blue", "1.0.0", ["macvlan"]],
      // No cniVersion in the delegate: Multus' own (the fallback) is used.
      ["nets/green", "net2", false, "green", "0.4.0", ["host-device"]],
    ]);
    expect(parsed.value[1]).toMatchObject({ macRequest: "02:00:00:00:00:05", ipRequest: ["198.18.40.5/24"], defaultRoute: ["198.18.40.1"] });
    expect(parsed.value.map((d) => d.capabilityArgs)).toEqual([{}, { ips: ["198.18.40.5/24"], mac: "02:00:00:00:00:05" }, { deviceID: "0000:3b:02.1" }]);
    expect(parsed.value[2]!.resourceName).toBe("intel.com/sriov_netdevice");
  });

  it("refuses a damaged file naming it and the delegate", () => {
    expect(parseDelegateCache("[]", "/m/abc", "eth0")).toEqual({ ok: false, error: [{ code: "delegate-cache.schema", path: "/m/abc: (top level)", message: "must hold at least the cluster network's delegate" }] });
    expect(parseDelegateCache(JSON.stringify([{ Name: "x", Bytes: b64({ cniVersion: "1.0.0", name: "x" }) }]), "/m/abc", "eth0")).toEqual({
      ok: false,
      error: [{ code: "cni.config", path: "/m/abc: [0].Bytes.type", message: "must be the plugin's type (a string)" }],
    });
    expect(parseDelegateCache(JSON.stringify([{ Name: "x", Bytes: "%%%" }]), "/m/abc", "eth0")).toEqual({
      ok: false,
      error: [{ code: "delegate-cache.schema", path: "/m/abc: [0].Bytes", message: "must be the delegate's config as base64" }],
    });
  });

  it("reads <cniDir>/<containerID>, nothing when Multus has no file, and refuses an ID that is not a file name", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nadguard-multus-"));
    try {
      await writeFile(join(dir, "abc"), FILE);
      const read = await readDelegateCache(dir, "abc", "eth0");
      expect(read.ok && read.value?.map((d) => d.ifname)).toEqual(["eth0", "blue0", "net2"]);
      expect(await readDelegateCache(dir, "def", "eth0")).toEqual({ ok: true, value: undefined });
      expect(await readDelegateCache(dir, "../abc", "eth0")).toMatchObject({ ok: false, error: [{ code: "delegate-cache.container-id" }] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes nadguard's own file (0600, atomically) and reads back every delegate with its full capability arguments", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nadguard-delegates-"));
    try {
      const config = (value: unknown) => {
        const parsed = parseNetworkConfig(value, "t");
        if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
        return parsed.value;
      };
      const delegates: CachedDelegate[] = [
        { name: "k8s-pod-network", ifname: "eth0", clusterNetwork: true, config: config(CLUSTER), capabilityArgs: { portMappings: [{ HostPort: 80, ContainerPort: 80 }] } },
        { name: "nets/blue", ifname: "net1", clusterNetwork: false, config: config(BLUE), capabilityArgs: { portMappings: [{ hostPort: 80, containerPort: 80 }], ips: ["198.18.40.5/24"] }, ipRequest: ["198.18.40.5/24"], deviceId: "0000:3b:02.1" },
      ];
      expect(await writeDelegateCache(join(dir, "nadguard"), "abc", delegates)).toEqual({ ok: true, value: join(dir, "nadguard", "abc") });
      expect((await stat(join(dir, "nadguard", "abc"))).mode & 0o777).toBe(0o600);
      expect(await readdir(join(dir, "nadguard"))).toEqual(["abc"]);
      // The interface is read from the file, not from the runtime's CNI_IFNAME of the DEL.
      expect(await readDelegateCache(join(dir, "nadguard"), "abc", "ignored")).toEqual({ ok: true, value: delegates });
      expect(await removeDelegateCache(join(dir, "nadguard"), "abc")).toEqual({ ok: true, value: undefined });
      expect(await removeDelegateCache(join(dir, "nadguard"), "abc")).toEqual({ ok: true, value: undefined });
      expect(await readdir(join(dir, "nadguard"))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
