import { describe, expect, it } from "vitest";
import { parseNetworkSelections } from "../networks/selection.js";
import { deviceAssigner } from "./checkpoint.js";
import { type NetworkSource, type PlanInput, gatewayFilters, planDelegates } from "./plan.js";

const CLUSTER: NetworkSource = { name: "k8s-pod-network", where: "/etc/cni/net.d/10-bridge.conflist", config: { cniVersion: "1.0.0", name: "k8s-pod-network", plugins: [{ type: "bridge" }, { type: "portmap", capabilities: { portMappings: true } }] } };
const NADS: Record<string, NetworkSource> = {
  "nets/blue": { name: "nets/blue", where: "NetworkAttachmentDefinition nets/blue spec.config", config: JSON.stringify({ cniVersion: "1.0.0", name: "blue", type: "macvlan", master: "eth1", args: { cni: { keep: 1 } } }) },
  "nets/sriov": { name: "nets/sriov", where: "NetworkAttachmentDefinition nets/sriov spec.config", resourceName: "intel.com/sriov", config: { cniVersion: "1.0.0", name: "sriov", plugins: [{ type: "host-device" }, { type: "tuning" }] } },
  "nets/green": { name: "nets/green", where: "NetworkAttachmentDefinition nets/green spec.config", config: { cniVersion: "1.0.0", name: "green", type: "bridge" } },
};
const RUNTIME_CONFIG = { portMappings: [{ HostPort: 8080, ContainerPort: 80, Protocol: "tcp" }] };

function input(annotation: string, over: Partial<PlanInput> = {}): PlanInput {
  const parsed = parseNetworkSelections(annotation, "tenant-a");
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return {
    ifname: "eth0",
    clusterNetwork: CLUSTER,
    defaultNetworks: [],
    selections: parsed.value.map((a) => ({ selection: a.selection, network: NADS[a.key]! })),
    runtimeConfig: RUNTIME_CONFIG,
    runtime: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] },
    nextDevice: deviceAssigner(new Map([["intel.com/sriov", ["0000:3b:02.1", "0000:3b:02.2"]]])),
    ...over,
  };
}

describe("the attach plan", () => {
  it("orders and names the delegates as Multus does, with devices, cni-args and capability arguments", () => {
    const annotation = JSON.stringify([
      { name: "blue", namespace: "nets", "cni-args": { vlan: 10 }, mac: "02:00:00:00:00:0b", ips: ["198.18.80.5/24"] },
      { name: "sriov", namespace: "nets", interface: "fast0" },
      { name: "sriov", namespace: "nets" },
    ]);
    const planned = planDelegates(input(annotation, { defaultNetworks: [NADS["nets/green"]!] }));
    if (!planned.ok) throw new Error(JSON.stringify(planned.error));
    const delegates = planned.value;
    // Cluster network 0, default network 1, then the elements from 2; a named element still takes its index.
    expect(delegates.map((d) => [d.name, d.ifname, d.deviceId])).toEqual([
      ["k8s-pod-network", "eth0", undefined],
      ["nets/green", "net1", undefined],
      ["nets/blue", "net2", undefined],
      ["nets/sriov", "fast0", "0000:3b:02.1"],
      ["nets/sriov", "net4", "0000:3b:02.2"],
    ]);
    expect(delegates[0]!.capabilityArgs).toEqual(RUNTIME_CONFIG);
    expect(delegates[1]!.capabilityArgs).toEqual({ portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }] });
    expect(delegates[2]!.config.plugins[0]!.raw.args).toEqual({ cni: { keep: 1, vlan: 10 } });
    expect(delegates[2]!.capabilityArgs).toMatchObject({ mac: "02:00:00:00:00:0b", ips: ["198.18.80.5/24"] });
    expect(delegates[2]).toMatchObject({ macRequest: "02:00:00:00:00:0b", ipRequest: ["198.18.80.5/24"], element: expect.stringContaining('"name":"blue"') });
    expect(delegates[3]!.config.plugins.map((p) => p.raw)).toEqual([{ type: "host-device", deviceID: "0000:3b:02.1", pciBusID: "0000:3b:02.1" }, { type: "tuning" }]);
    expect(delegates[3]!.capabilityArgs).toMatchObject({ deviceID: "0000:3b:02.1" });
    expect(delegates[4]).toMatchObject({ resourceName: "intel.com/sriov", deviceId: "0000:3b:02.2" });
  });

  it("refuses a delegate whose resource has no device left, naming the element", () => {
    const planned = planDelegates(input("nets/sriov,nets/sriov@x1,nets/sriov@x2"));
    expect(planned).toEqual({
      ok: false,
      error: [
        {
          code: "cni.no-device",
          path: 'NetworkAttachmentDefinition nets/sriov spec.config (element 3, "nets/sriov@x2")',
          message: "network nets/sriov needs a device of resource intel.com/sriov, and the kubelet gave the pod none left (its resource requests must count one per network of that resource)",
        },
      ],
    });
  });

  it("refuses an interface a default network already has, and a config that is not JSON", () => {
    const collide = planDelegates(input("nets/blue@net1", { defaultNetworks: [NADS["nets/green"]!] }));
    expect(collide.ok ? [] : collide.error.map((p) => p.message)).toEqual(["interface net1 of network nets/blue is already nets/green's; name the interface of one of them (name@ifname or \"interface\")"]);
    const broken = planDelegates(input("nets/blue", { clusterNetwork: { ...CLUSTER, config: "{" } }));
    expect(broken.ok ? [] : broken.error.map((p) => `${p.path}: ${p.code}`)).toEqual(["/etc/cni/net.d/10-bridge.conflist: cni.config-json"]);
  });

  it("default-route: every other interface loses its default routes, the asking one keeps its family and gets the gateway", () => {
    const planned = planDelegates(input(JSON.stringify([{ name: "blue", namespace: "nets", "default-route": ["198.18.80.1"] }, { name: "green", namespace: "nets" }])));
    if (!planned.ok) throw new Error(JSON.stringify(planned.error));
    expect(gatewayFilters(planned.value)).toEqual({
      ok: true,
      value: [
        { ifname: "eth0", filterV4: true, filterV6: true, gateways: [] },
        { ifname: "net1", filterV4: false, filterV6: true, gateways: ["198.18.80.1"] },
        { ifname: "net2", filterV4: true, filterV6: true, gateways: [] },
      ],
    });
    const none = planDelegates(input("nets/blue"));
    expect(none.ok && gatewayFilters(none.value)).toEqual({ ok: true, value: [] });
  });

  it("refuses two default gateways of one family (no ECMP), naming the elements", () => {
    const planned = planDelegates(input(JSON.stringify([{ name: "blue", namespace: "nets", "default-route": ["198.18.80.1", "198.18.80.2", "fd00:80::1"] }])));
    expect(planned).toEqual({
      ok: false,
      error: [
        {
          code: "cni.default-route-ecmp",
          path: expect.stringContaining('"name":"blue"'),
          message: "asks for 2 IPv4 default gateways (198.18.80.1, 198.18.80.2); a pod gets at most one per family",
        },
      ],
    });
  });
});
