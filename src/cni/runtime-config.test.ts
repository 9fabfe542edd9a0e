import { describe, expect, it } from "vitest";
import { type RuntimeCapabilities, clusterNetworkCapabilityArgs, delegateCapabilityArgs, parseRuntimeCapabilities } from "./runtime-config.js";

// What containerd 1.6.20 (Debian bookworm) put in the meta-plugin's runtimeConfig, as observed: Go
// field names inside the values (go-cni's capability structs carry no json tags).
const FROM_CONTAINERD = {
  portMappings: [{ HostPort: 8080, ContainerPort: 80, Protocol: "tcp", HostIP: "" }],
  bandwidth: { IngressRate: 1000000, IngressBurst: 2000000, EgressRate: 500000, EgressBurst: 1000000 },
  dns: { Servers: ["198.18.0.10"], Searches: ["default.svc.cluster.local"], Options: ["ndots:5"] },
  "io.kubernetes.cri.pod-annotations": { "k8s.v1.cni.cncf.io/networks": "nets/blue@net1", "kubernetes.io/config.seen": "2026-01-01T00:00:00Z" },
};

describe("runtime capability arguments", () => {
  it("reads containerd's Go field names as the CNI conventions' keys", () => {
    expect(parseRuntimeCapabilities(FROM_CONTAINERD, "stdin runtimeConfig")).toEqual({
      ok: true,
      value: {
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp", hostIP: "" }],
        bandwidth: { ingressRate: 1000000, ingressBurst: 2000000, egressRate: 500000, egressBurst: 1000000 },
        dns: { servers: ["198.18.0.10"], searches: ["default.svc.cluster.local"], options: ["ndots:5"] },
        podAnnotations: FROM_CONTAINERD["io.kubernetes.cri.pod-annotations"],
      },
    });
    // Capability names in any case too, as Go would match them.
    expect(parseRuntimeCapabilities({ PortMappings: [{ hostport: 1, CONTAINERPORT: 2 }] }, "x")).toEqual({ ok: true, value: { portMappings: [{ hostPort: 1, containerPort: 2 }] } });
    expect(parseRuntimeCapabilities(undefined, "x")).toEqual({ ok: true, value: {} });
  });

  it("refuses a value of the wrong shape naming where", () => {
    expect(parseRuntimeCapabilities({ portMappings: [{ HostPort: "8080", ContainerPort: 80 }] }, "stdin runtimeConfig")).toEqual({
      ok: false,
      error: [{ code: "cni.runtime-config", path: "stdin runtimeConfig: portmappings[0].hostport", message: expect.stringContaining("expected number") }],
    });
  });

  it("gives a secondary delegate the runtime's port mappings and bandwidth unless its element has its own, plus what it asks for", () => {
    const parsed = parseRuntimeCapabilities(FROM_CONTAINERD, "x");
    const runtime = (parsed.ok ? parsed.value : {}) as RuntimeCapabilities;
    expect(delegateCapabilityArgs(runtime, { ips: ["198.18.30.5/24"], mac: "02:00:00:00:00:05", deviceId: "0000:3b:02.1" })).toEqual({
      portMappings: runtime.portMappings,
      bandwidth: runtime.bandwidth,
      ips: ["198.18.30.5/24"],
      mac: "02:00:00:00:00:05",
      deviceID: "0000:3b:02.1",
    });
    expect(delegateCapabilityArgs(runtime, { portMappings: [{ hostPort: 9, containerPort: 9 }], bandwidth: { egressRate: 1 }, infinibandGuid: "00:11:22:33:44:55:66:77", ips: [] })).toEqual({
      portMappings: [{ hostPort: 9, containerPort: 9 }],
      bandwidth: { egressRate: 1 },
      infinibandGUID: "00:11:22:33:44:55:66:77",
    });
    expect(delegateCapabilityArgs({}, {})).toEqual({});
  });

  it("gives the cluster network everything the runtime sent, as sent", () => {
    expect(clusterNetworkCapabilityArgs(FROM_CONTAINERD)).toEqual(FROM_CONTAINERD);
    expect(clusterNetworkCapabilityArgs(undefined)).toEqual({});
  });
});
