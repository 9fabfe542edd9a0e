import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseResult } from "./result.js";
import { networkStatuses } from "./status.js";

const bridge040 = parseResult(JSON.parse(readFileSync(new URL("../../test/fixtures/cni/bridge-0.4.0.json", import.meta.url), "utf8")), "fixture");

describe("network-status from a result", () => {
  it("lists the sandbox interface of a bridge result with the addresses pointing at it, as Multus does", () => {
    if (!bridge040.ok) throw new Error("fixture");
    expect(networkStatuses(bridge040.value, "nets/lan", false)).toEqual([
      { name: "nets/lan", interface: "net1", ips: ["198.18.5.2", "fd00:5::2"], mac: "7a:53:3d:29:8c:35", default: false, dns: {} },
    ]);
  });

  it("a single-interface result: every address, the gateways of default routes, the DNS and the device", () => {
    const result = parseResult(
      {
        cniVersion: "1.0.0",
        interfaces: [{ name: "eth0", mac: "02:00:00:00:00:01", sandbox: "/run/netns/p" }],
        ips: [{ address: "198.18.0.2/24", gateway: "198.18.0.1" }, { address: "fd00::2/64" }],
        routes: [{ dst: "0.0.0.0/0", gw: "198.18.0.1" }, { dst: "198.19.0.0/16", gw: "198.18.0.254" }, { dst: "::/0", gw: "fd00::1" }],
        dns: { nameservers: ["198.18.0.53"] },
      },
      "r",
    );
    if (!result.ok) throw new Error("result");
    expect(networkStatuses(result.value, "cluster", true, { type: "pci", version: "1.1.0", pci: { "pci-address": "0000:3b:02.1" } })).toEqual([
      {
        name: "cluster",
        interface: "eth0",
        ips: ["198.18.0.2", "fd00::2"],
        mac: "02:00:00:00:00:01",
        default: true,
        dns: { nameservers: ["198.18.0.53"] },
        gateway: ["198.18.0.1", "fd00::1"],
        "device-info": { type: "pci", version: "1.1.0", pci: { "pci-address": "0000:3b:02.1" } },
      },
    ]);
  });
});
