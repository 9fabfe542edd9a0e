// The PodSandboxConfig built for a pod is the one kubelet builds (kuberuntime_sandbox.go,
// cgroupfs driver): the fields containerd hands to the CNI plugins (annotations, port mappings,
// DNS) and those that place the sandbox (cgroup parent by QoS class, namespace modes).
import { describe, expect, it } from "vitest";
import { Pod } from "../api/objects.js";
import { podCgroupParent, podSandboxConfig, qosClass } from "./pod-sandbox-config.js";

const KUBELET = { cgroupRoot: "/", clusterDns: ["198.18.255.10"], clusterDomain: "cluster.local", hostSearches: ["example.internal"] };

function pod(spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): Pod {
  return Pod.parse({ metadata: { name: "web", namespace: "team-a", uid: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", ...metadata }, spec });
}

describe("podSandboxConfig", () => {
  it("builds kubelet's config for a plain pod", () => {
    const config = podSandboxConfig(
      pod(
        { containers: [{ name: "app", ports: [{ containerPort: 8080 }, { containerPort: 53, protocol: "UDP", hostPort: 5353, hostIP: "198.18.0.1" }] }, { name: "side", ports: [{ containerPort: 9090, protocol: "SCTP" }] }] },
        { labels: { app: "web" }, annotations: { "k8s.v1.cni.cncf.io/networks": "nets/blue" } },
      ),
      KUBELET,
      2,
    );
    expect(config).toEqual({
      metadata: { name: "web", namespace: "team-a", uid: "1b4e28ba-2fa1-11d2-883f-0016d3cca427", attempt: 2 },
      hostname: "web",
      logDirectory: "/var/log/pods/team-a_web_1b4e28ba-2fa1-11d2-883f-0016d3cca427",
      dnsConfig: {
        servers: ["198.18.255.10"],
        searches: ["team-a.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.internal"],
        options: ["ndots:5"],
      },
      portMappings: [
        { protocol: "TCP", containerPort: 8080, hostPort: 0, hostIp: "" },
        { protocol: "UDP", containerPort: 53, hostPort: 5353, hostIp: "198.18.0.1" },
        { protocol: "SCTP", containerPort: 9090, hostPort: 0, hostIp: "" },
      ],
      labels: { app: "web", "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "team-a", "io.kubernetes.pod.uid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427" },
      annotations: { "k8s.v1.cni.cncf.io/networks": "nets/blue" },
      linux: {
        cgroupParent: "/kubepods/besteffort/pod1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        securityContext: { namespaceOptions: { network: "POD", pid: "CONTAINER", ipc: "POD" }, privileged: false },
        sysctls: {},
      },
    });
  });

  it("takes hostname, dnsConfig, shared process namespace and sysctls from the spec", () => {
    const config = podSandboxConfig(
      pod({
        hostname: "db-0",
        shareProcessNamespace: true,
        dnsConfig: { nameservers: ["198.18.0.53"], searches: ["corp.internal"], options: [{ name: "ndots", value: "2" }, { name: "edns0" }] },
        securityContext: { sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }] },
        containers: [{ name: "app" }],
      }),
      KUBELET,
    );
    expect(config.hostname).toBe("db-0");
    expect(config.dnsConfig).toEqual({
      servers: ["198.18.255.10", "198.18.0.53"],
      searches: ["team-a.svc.cluster.local", "svc.cluster.local", "cluster.local", "example.internal", "corp.internal"],
      options: ["ndots:5", "ndots:2", "edns0"],
    });
    expect(config.linux.securityContext.namespaceOptions.pid).toBe("POD");
    expect(config.linux.sysctls).toEqual({ "net.ipv4.ip_unprivileged_port_start": "0" });
  });

  it("gives a host-network pod the node's namespaces, no hostname and no DNS config", () => {
    const config = podSandboxConfig(pod({ hostNetwork: true, hostPID: true, hostIPC: true, containers: [{ name: "agent" }] }), KUBELET);
    expect(config.hostname).toBe("");
    expect(config.dnsConfig).toBeUndefined();
    expect(config.linux.securityContext.namespaceOptions).toEqual({ network: "NODE", pid: "NODE", ipc: "NODE" });
  });

  it("dnsPolicy Default uses the node's resolv.conf, None only the pod's dnsConfig", () => {
    const node = { ...KUBELET, hostServers: ["198.18.0.2"] };
    expect(podSandboxConfig(pod({ dnsPolicy: "Default", containers: [{ name: "a" }] }), node).dnsConfig).toEqual({ servers: ["198.18.0.2"], searches: ["example.internal"], options: [] });
    expect(podSandboxConfig(pod({ dnsPolicy: "None", dnsConfig: { nameservers: ["198.18.0.3"] }, containers: [{ name: "a" }] }), node).dnsConfig).toEqual({ servers: ["198.18.0.3"], searches: [], options: [] });
  });

  it("refuses a pod without a uid, and a malformed field, naming it", () => {
    expect(() => podSandboxConfig(pod({ containers: [{ name: "a" }] }, { uid: undefined }), KUBELET)).toThrow("pod team-a/web has no metadata.uid");
    expect(() => podSandboxConfig(pod({ containers: [{ name: "a", ports: [{ containerPort: 80, hostPort: "80" }] }] }), KUBELET)).toThrow(/^pod team-a\/web: spec\.containers\.0\.ports\.0\.hostPort: /);
  });
});

describe("QoS class and cgroup parent", () => {
  it.each([
    [[{ name: "a" }], "BestEffort", "/kubelet/kubepods/besteffort/pod"],
    [[{ name: "a", resources: { requests: { cpu: "100m" } } }], "Burstable", "/kubelet/kubepods/burstable/pod"],
    [[{ name: "a", resources: { limits: { cpu: "1", memory: "64Mi" } } }], "Guaranteed", "/kubelet/kubepods/pod"],
    [[{ name: "a", resources: { requests: { cpu: "1", memory: "64Mi" }, limits: { cpu: "1", memory: "64Mi" } } }, { name: "b" }], "Burstable", "/kubelet/kubepods/burstable/pod"],
  ])("containers %j are %s under %s<uid>", (containers, qos, parent) => {
    const p = pod({ containers });
    expect(qosClass(p)).toBe(qos);
    expect(podCgroupParent(p, "/kubelet/")).toBe(`${parent}${p.metadata.uid}`);
  });
});
