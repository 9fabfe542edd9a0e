import { describe, expect, it } from "vitest";
import { parseNetworkConfig } from "./config.js";

describe("network configs", () => {
  it("reads a conflist, keeping every plugin key and the capabilities declared true", () => {
    const text = JSON.stringify({
      cniVersion: "1.0.0",
      name: "lan",
      disableCheck: "True",
      plugins: [
        { type: "bridge", bridge: "br0", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/24" }]] } },
        { type: "tuning", capabilities: { mac: true, ips: false }, sysctl: { "net.ipv4.conf.IFNAME.arp_notify": "1" } },
      ],
    });
    const parsed = parseNetworkConfig(text, "nets/lan");
    expect(parsed).toEqual({
      ok: true,
      value: {
        name: "lan",
        cniVersion: "1.0.0",
        disableCheck: true,
        disableGC: false,
        plugins: [
          { type: "bridge", capabilities: [], raw: { type: "bridge", bridge: "br0", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/24" }]] } } },
          { type: "tuning", capabilities: ["mac"], raw: { type: "tuning", capabilities: { mac: true, ips: false }, sysctl: { "net.ipv4.conf.IFNAME.arp_notify": "1" } } },
        ],
        bytes: text,
      },
    });
  });

  it("runs a single plugin config as a list of one", () => {
    const single = { cniVersion: "0.4.0", name: "mv", type: "macvlan", master: "eth1", capabilities: { ips: true } };
    const parsed = parseNetworkConfig(single, "nets/mv");
    expect(parsed.ok && parsed.value).toEqual({
      name: "mv",
      cniVersion: "0.4.0",
      disableCheck: false,
      disableGC: false,
      plugins: [{ type: "macvlan", capabilities: ["ips"], raw: single }],
      bytes: JSON.stringify({ cniVersion: "0.4.0", name: "mv", plugins: [single] }),
    });
  });

  it.each([
    ["{", [{ code: "cni.config-json", path: "f.conf", message: expect.stringContaining("is not valid JSON") }]],
    ["[]", [{ code: "cni.config-shape", path: "f.conf", message: "must be a JSON object (a CNI network config or conflist)" }]],
    ['{"name":"n","type":"bridge"}', [{ code: "cni.config", path: "f.conf.cniVersion", message: 'is required (a CNI spec version, e.g. "1.0.0")' }]],
    ['{"cniVersion":"1.0.0","name":"-n","type":"bridge"}', [{ code: "cni.config", path: "f.conf.name", message: "must be letters, digits, '_', '.' and '-', starting with a letter or digit" }]],
    ['{"cniVersion":"1.0.0","name":"n","plugins":[]}', [{ code: "cni.config", path: "f.conf.plugins", message: "must hold at least one plugin config" }]],
    ['{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"../../bin/sh"}]}', [{ code: "cni.config", path: "f.conf.plugins[1].type", message: "must be a plugin name, not a path" }]],
    ['{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","capabilities":{"mac":"yes"}}]}', [{ code: "cni.config", path: "f.conf.plugins[0].capabilities.mac", message: expect.stringContaining("expected boolean") }]],
    ['{"cniVersion":"1.0.0","name":"n","disableCheck":"maybe","plugins":[{"type":"bridge"}]}', [{ code: "cni.config", path: "f.conf.disableCheck", message: expect.any(String) }]],
  ])("refuses %s naming where", (text, problems) => {
    expect(parseNetworkConfig(text, "f.conf")).toEqual({ ok: false, error: problems });
  });
});
