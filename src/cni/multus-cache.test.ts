import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { multusCapabilityArgs, parseMultusDelegates, readMultusDelegates } from "./multus-cache.js";

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

describe("Multus delegate cache", () => {
  it("reads each delegate's config from Bytes and the interface Multus gave it", () => {
    const parsed = parseMultusDelegates(FILE, "/var/lib/cni/multus/abc", "eth0", "0.4.0");
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
    expect(parsed.value.map((d) => [d.name, d.ifname, d.clusterNetwork, d.config.name, d.config.cniVersion, d.config.plugins.map((p) => p.type)])).toEqual([
      ["k8s-pod-network", "eth0", true, "k8s-pod-network", "0.3.1", ["bridge", "portmap"]],
      ["nets/blue", "blue0", false, "blue", "1.0.0", ["macvlan"]],
      // No cniVersion in the delegate: Multus' own (the fallback) is used.
      ["nets/green", "net2", false, "green", "0.4.0", ["host-device"]],
    ]);
    expect(parsed.value[1]).toMatchObject({ macRequest: "02:00:00:00:00:05", ipRequest: ["198.18.40.5/24"], defaultRoute: ["198.18.40.1"] });
    expect(parsed.value.map(multusCapabilityArgs)).toEqual([{}, { ips: ["198.18.40.5/24"], mac: "02:00:00:00:00:05" }, { deviceID: "0000:3b:02.1" }]);
    expect(parsed.value[2]!.resourceName).toBe("intel.com/sriov_netdevice");
  });

  it("refuses a damaged file naming it and the delegate", () => {
    expect(parseMultusDelegates("[]", "/m/abc", "eth0")).toEqual({ ok: false, error: [{ code: "multus-cache.schema", path: "/m/abc: (top level)", message: "must hold at least the cluster network's delegate" }] });
    expect(parseMultusDelegates(JSON.stringify([{ Name: "x", Bytes: b64({ cniVersion: "1.0.0", name: "x" }) }]), "/m/abc", "eth0")).toEqual({
      ok: false,
      error: [{ code: "cni.config", path: "/m/abc: [0].Bytes.type", message: "must be the plugin's type (a string)" }],
    });
    expect(parseMultusDelegates(JSON.stringify([{ Name: "x", Bytes: "%%%" }]), "/m/abc", "eth0")).toEqual({
      ok: false,
      error: [{ code: "multus-cache.schema", path: "/m/abc: [0].Bytes", message: "must be the delegate's config as base64" }],
    });
  });

  it("reads <cniDir>/<containerID>, nothing when Multus has no file, and refuses an ID that is not a file name", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nadguard-multus-"));
    try {
      await writeFile(join(dir, "abc"), FILE);
      const read = await readMultusDelegates(dir, "abc", "eth0");
      expect(read.ok && read.value?.map((d) => d.ifname)).toEqual(["eth0", "blue0", "net2"]);
      expect(await readMultusDelegates(dir, "def", "eth0")).toEqual({ ok: true, value: undefined });
      expect(await readMultusDelegates(dir, "../abc", "eth0")).toMatchObject({ ok: false, error: [{ code: "multus-cache.container-id" }] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
