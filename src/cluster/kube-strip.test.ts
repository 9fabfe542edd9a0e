import { describe, expect, it } from "vitest";
import { RESOURCES, ingest, problemsOf } from "./kube-resources.js";
import { stripNad, stripNamespace, stripPod, stripPolicy } from "./kube-strip.js";

/** A pod roughly as the API server sends it, with what nadguard never reads. */
const FULL_POD = {
  apiVersion: "v1",
  kind: "Pod",
  metadata: {
    name: "app",
    namespace: "tenant-a",
    uid: "0b5e",
    resourceVersion: "4711",
    generation: 1,
    creationTimestamp: "2024-01-01T00:00:00Z",
    labels: { app: "web" },
    annotations: {
      "k8s.v1.cni.cncf.io/networks": "tenant-a/macvlan@net1",
      "k8s.v1.cni.cncf.io/network-status": '[{"name":"tenant-a/macvlan","interface":"net1","ips":["198.18.0.5"]}]',
      "nadguard.io/injected-resources": "intel.com/sriov",
      "kubectl.kubernetes.io/last-applied-configuration": "{…}",
    },
    ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "app-1", uid: "9" }],
    managedFields: [{ manager: "kubectl", operation: "Update", fieldsV1: { "f:metadata": {} } }],
  },
  spec: {
    nodeName: "node-1",
    serviceAccountName: "app",
    hostNetwork: false,
    volumes: [{ name: "token", projected: {} }],
    containers: [
      {
        name: "web",
        image: "nginx",
        env: [{ name: "A", value: "1" }],
        ports: [{ name: "http", containerPort: 8080, protocol: "TCP", hostPort: 80 }],
        resources: { requests: { cpu: "1" } },
      },
    ],
    tolerations: [{ key: "x" }],
  },
  status: {
    phase: "Running",
    podIP: "10.0.0.5",
    podIPs: [{ ip: "10.0.0.5" }, { ip: "fd00::5" }],
    conditions: [{ type: "Ready", status: "True" }],
    containerStatuses: [{ name: "web", ready: true }],
  },
};

describe("strip", () => {
  it("keeps of a pod only what nadguard reads", () => {
    expect(stripPod(FULL_POD)).toEqual({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "app",
        namespace: "tenant-a",
        uid: "0b5e",
        resourceVersion: "4711",
        labels: { app: "web" },
        annotations: {
          "k8s.v1.cni.cncf.io/networks": "tenant-a/macvlan@net1",
          "k8s.v1.cni.cncf.io/network-status": '[{"name":"tenant-a/macvlan","interface":"net1","ips":["198.18.0.5"]}]',
          "nadguard.io/injected-resources": "intel.com/sriov",
        },
      },
      spec: {
        nodeName: "node-1",
        hostNetwork: false,
        serviceAccountName: "app",
        containers: [{ name: "web", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] }],
      },
      status: { phase: "Running", podIPs: [{ ip: "10.0.0.5" }, { ip: "fd00::5" }] },
    });
  });

  it("is a fraction of the size", () => {
    expect(JSON.stringify(stripPod(FULL_POD)).length).toBeLessThan(JSON.stringify(FULL_POD).length * 0.6);
  });

  it("keeps a NAD's config and resourceName, a namespace's labels, a policy's spec", () => {
    const nad = stripNad({
      metadata: { name: "sriov", namespace: "n", annotations: { "k8s.v1.cni.cncf.io/resourceName": "intel.com/vf", other: "x" } },
      spec: { config: "{}", extra: 1 },
    });
    expect(nad).toEqual({
      apiVersion: "k8s.cni.cncf.io/v1",
      kind: "NetworkAttachmentDefinition",
      metadata: { name: "sriov", namespace: "n", annotations: { "k8s.v1.cni.cncf.io/resourceName": "intel.com/vf" } },
      spec: { config: "{}" },
    });
    const ns = stripNamespace({ metadata: { name: "n", labels: { team: "a" }, annotations: { a: "b" } }, spec: { finalizers: ["kubernetes"] }, status: { phase: "Active" } });
    expect(ns).toEqual({ apiVersion: "v1", kind: "Namespace", metadata: { name: "n", labels: { team: "a" } } });
    const spec = { podSelector: {}, policyTypes: ["Ingress"], ingress: [{ from: [{ ipBlock: { cidr: "198.18.0.0/24" } }] }] };
    expect(stripPolicy({ metadata: { name: "p", namespace: "n", annotations: { "k8s.v1.cni.cncf.io/policy-for": "macvlan" } }, spec }).spec).toEqual(spec);
  });

  it.each([null, 42, "text", [], { metadata: null }, { metadata: { annotations: "x" }, spec: { containers: "y" } }])("never throws, for %j", (raw) => {
    expect(() => stripPod(raw)).not.toThrow();
    expect(() => stripNad(raw)).not.toThrow();
    expect(stripPod(raw).spec).toEqual({ containers: [] });
  });
});

describe("ingest", () => {
  it("returns the validated object", () => {
    const pod = ingest(RESOURCES.Pod, FULL_POD);
    expect(problemsOf(pod)).toBeUndefined();
    expect(pod.metadata.name).toBe("app");
  });

  it("keeps an object that fails its schema, with problems naming it and the field", () => {
    const raw = { metadata: { name: "p", namespace: "n", resourceVersion: "7" }, spec: { policyTypes: ["Sideways"] } };
    const policy = ingest(RESOURCES.MultiNetworkPolicy, raw);
    expect(policy.metadata.resourceVersion).toBe("7");
    const problems = problemsOf(policy);
    expect(problems).toHaveLength(1);
    expect(problems![0]!.path).toBe("cluster: MultiNetworkPolicy n/p: spec.policyTypes[0]");
    expect(problems![0]!.code).toBe("state.invalid");
  });
});
