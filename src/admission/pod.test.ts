import { describe, expect, it } from "vitest";
import type { AccessAttributes } from "../authz/rbac.js";
import { createRequest, envOf, pod, snapshotFrom, updateRequest } from "../../test/support/cluster.js";
import { toAdmissionResponse } from "./decision.js";
import { MAX_DENIAL_LENGTH } from "./denial.js";
import { applyPatch } from "./json-patch.js";
import { decide } from "./review.js";

const CLUSTER = `
apiVersion: v1
kind: Namespace
metadata: { name: tenant-a }
---
apiVersion: v1
kind: Namespace
metadata: { name: tenant-b }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: macvlan-a, namespace: tenant-a }
spec: { config: '{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","ipam":{"type":"whereabouts","range":"198.18.1.0/24"}}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: sriov-a
  namespace: tenant-a
  annotations: { k8s.v1.cni.cncf.io/resourceName: intel.com/sriov_a }
spec: { config: '{"cniVersion":"1.0.0","type":"sriov"}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: sriov-b
  namespace: tenant-b
  annotations:
    k8s.v1.cni.cncf.io/resourceName: intel.com/sriov_b
    k8s.v1.cni.cncf.io/nodeSelector: "sriov=true, zone"
spec: { config: '{"cniVersion":"1.0.0","type":"sriov"}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: pinned-b
  namespace: tenant-b
  annotations: { k8s.v1.cni.cncf.io/nodeSelector: "sriov=false" }
spec: { config: '{"cniVersion":"1.0.0","type":"bridge"}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: ovn-b, namespace: tenant-b }
spec: { config: '{"cniVersion":"1.0.0","type":"ovn-k8s-cni-overlay"}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: shared, namespace: infra }
spec: { config: '{"cniVersion":"1.0.0","type":"bridge"}' }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: nad-user }
rules: [{ apiGroups: [k8s.cni.cncf.io], resources: [network-attachment-definitions], verbs: [use] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: tenant-a-sa, namespace: tenant-b }
subjects: [{ kind: ServiceAccount, name: builder, namespace: tenant-a }]
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nad-user }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: carol, namespace: tenant-b }
subjects: [{ kind: User, name: carol, apiGroup: rbac.authorization.k8s.io }]
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nad-user }
`;

const snapshot = snapshotFrom(CLUSTER);
const env = envOf(snapshot);

async function admit(object: Record<string, unknown>, options: { user?: string; config?: unknown; endpoint?: "mutate" | "validate" } = {}) {
  const request = createRequest(object, options.user ?? "alice");
  const decision = await decide(request, options.config ? envOf(snapshot, options.config) : env, options.endpoint ?? "mutate");
  return { decision, after: applyPatch(object, decision.patch), response: toAdmissionResponse(request.uid, decision) };
}

describe("pods without secondary networks", () => {
  it("are allowed with no patch and no warnings", async () => {
    const { decision, response } = await admit(pod());
    expect(decision).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
    expect(response).toEqual({ uid: expect.any(String), allowed: true });
  });

  it("are not even parsed: a pod no schema could read is still allowed", async () => {
    const { decision } = await admit({ kind: "Pod", metadata: { name: "x" }, spec: "not a spec" });
    expect(decision.allowed).toBe(true);
  });
});

describe("NAD resolution", () => {
  it("resolves a bare name in the pod's namespace and names the interfaces as Multus does", async () => {
    const { decision } = await admit(pod({ networks: "macvlan-a@data0, macvlan-a" }));
    expect(decision.allowed).toBe(true);
    const access = {
      allowed: true,
      mode: "rbac",
      reason: "own-namespace",
      summary: `allowed: in the pod's own namespace tenant-a (authorization mode "rbac")`,
    };
    expect(decision.attachments).toEqual([
      { interfaceName: "data0", network: "tenant-a/macvlan-a", cniType: "macvlan", access },
      { interfaceName: "net2", network: "tenant-a/macvlan-a", cniType: "macvlan", access },
    ]);
  });

  it("never resolves a bare name in default", async () => {
    const { decision } = await admit(pod({ namespace: "tenant-b", networks: "macvlan-a" }));
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toBe("network-not-found");
    expect(decision.message).toBe(
      'pod tenant-b/app: element 1 ("macvlan-a"): NetworkAttachmentDefinition tenant-b/macvlan-a does not exist; ' +
        "NetworkAttachmentDefinitions in namespace tenant-b: ovn-b, pinned-b, sriov-b",
    );
  });

  it("lists only the pod's own namespace's NADs when a missing NAD is elsewhere", async () => {
    const { decision } = await admit(pod({ networks: "infra/nope" }), { config: { authorization: { mode: "none" } } });
    expect(decision.message).toBe(
      'pod tenant-a/app: element 1 ("infra/nope"): NetworkAttachmentDefinition infra/nope does not exist; ' +
        "NetworkAttachmentDefinitions in namespace tenant-a: macvlan-a, sriov-a",
    );
  });

  it("reports every missing NAD, once each, in one denial", async () => {
    const { decision } = await admit(pod({ namespace: "empty", networks: "x, y, x@other" }));
    expect(decision.message).toBe(
      "pod empty/app:" +
        '\n- element 1 ("x"): NetworkAttachmentDefinition empty/x does not exist; namespace empty has no NetworkAttachmentDefinitions' +
        '\n- element 2 ("y"): NetworkAttachmentDefinition empty/y does not exist; namespace empty has no NetworkAttachmentDefinitions',
    );
  });

  it("denies a malformed annotation with the element and the rule", async () => {
    const { decision, response } = await admit(pod({ networks: "macvlan-a,,sriov-a" }));
    expect(decision.reason).toBe("invalid-network-selection");
    expect(decision.message).toBe(
      'pod tenant-a/app: metadata.annotations["k8s.v1.cni.cncf.io/networks"]: element 2 ("") is empty; remove the extra comma',
    );
    expect(response.status?.code).toBe(403);
  });
});

describe("authorization", () => {
  it("denies a cross-namespace NAD without a grant, before saying whether it exists", async () => {
    const exists = await admit(pod({ networks: "tenant-b/sriov-b" }));
    const missing = await admit(pod({ networks: "tenant-b/no-such-nad" }));
    expect(exists.decision.reason).toBe("network-forbidden");
    expect(missing.decision.reason).toBe("network-forbidden");
    expect(exists.decision.message).toContain(
      'element 1 ("tenant-b/sriov-b"): may not use NetworkAttachmentDefinition tenant-b/sriov-b: it is not in the pod\'s namespace tenant-a',
    );
    expect(exists.decision.message).toContain("system:serviceaccount:tenant-a:default");
    expect(exists.decision.message).toContain(
      "to the pod's service account there:\nkubectl -n tenant-b create rolebinding nadguard-nad-user-tenant-a-default --clusterrole=nadguard:nad-user --serviceaccount=tenant-a:default",
    );
    expect(missing.decision.message!.replaceAll("no-such-nad", "sriov-b")).toBe(exists.decision.message);
  });

  it("says a namespace may be misspelt, without saying whether it or its NAD exists", async () => {
    const { decision } = await admit(pod({ networks: "tenant-bb/sriov-b" }));
    expect(decision.message).toContain("If namespace tenant-bb is misspelt, correct it: nadguard does not say which NADs other namespaces hold.");
  });

  it("allows it through the pod's service account (pods made by controllers keep working)", async () => {
    const object = pod({ networks: "tenant-b/sriov-b", spec: { serviceAccountName: "builder" } });
    const { decision } = await admit(object, { user: "system:serviceaccount:kube-system:replicaset-controller" });
    expect(decision.allowed).toBe(true);
  });

  it("allows it through the requesting user", async () => {
    expect((await admit(pod({ networks: "tenant-b/sriov-b" }), { user: "carol" })).decision.allowed).toBe(true);
  });

  it.each([
    ["namespace-isolation with a global namespace", { mode: "namespace-isolation", globalNamespaces: ["infra"] }, "infra/shared", true],
    ["namespace-isolation elsewhere", { mode: "namespace-isolation", globalNamespaces: ["infra"] }, "tenant-b/sriov-b", false],
    ["rbac with a global namespace", { mode: "rbac", globalNamespaces: ["infra"] }, "infra/shared", true],
    ["none", { mode: "none" }, "tenant-b/sriov-b", true],
  ])("mode %s", async (_, authorization, networks, allowed) => {
    const { decision } = await admit(pod({ networks }), { config: { authorization } });
    expect(decision.allowed).toBe(allowed);
  });
});

describe("SR-IOV resource injection", () => {
  it("counts one per reference and sets requests and limits on the first container", async () => {
    const { after, decision } = await admit(pod({ networks: "sriov-a, sriov-a@vf1, macvlan-a" }));
    const spec = (after as { spec: { containers: { resources: unknown }[] } }).spec;
    expect(spec.containers[0]!.resources).toEqual({ requests: { "intel.com/sriov_a": "2" }, limits: { "intel.com/sriov_a": "2" } });
    expect((after as { metadata: { annotations: Record<string, string> } }).metadata.annotations["nadguard.io/injected-resources"]).toBe(
      '{"intel.com/sriov_a":2}',
    );
    expect(decision.patch.some((op) => op.path.includes("nadguard.io~1injected-resources"))).toBe(true);
  });

  it("sums across namespaces and targets the container named by nadguard.io/resource-container", async () => {
    const object = pod({
      networks: "sriov-a, tenant-b/sriov-b",
      annotations: { "nadguard.io/resource-container": "dataplane" },
      containers: [{ name: "sidecar" }, { name: "dataplane", resources: { requests: { cpu: "1" } } }],
    });
    const { after } = await admit(object, { config: { authorization: { mode: "none" } } });
    const containers = (after as { spec: { containers: { name: string; resources?: unknown }[] } }).spec.containers;
    expect(containers[0]).toEqual({ name: "sidecar" });
    expect(containers[1]!.resources).toEqual({
      requests: { cpu: "1", "intel.com/sriov_a": "1", "intel.com/sriov_b": "1" },
      limits: { "intel.com/sriov_a": "1", "intel.com/sriov_b": "1" },
    });
  });

  it("denies a resource container that does not exist", async () => {
    const object = pod({ networks: "sriov-a", annotations: { "nadguard.io/resource-container": "nope" } });
    const { decision } = await admit(object);
    expect(decision.reason).toBe("resource-container-missing");
    expect(decision.message).toBe(
      'pod tenant-a/app: metadata.annotations["nadguard.io/resource-container"]: names container "nope", which the pod does not have (containers: app)',
    );
  });

  it("leaves a resource the pod already asks for alone (any container)", async () => {
    const object = pod({
      networks: "sriov-a",
      containers: [{ name: "app" }, { name: "other", resources: { limits: { "intel.com/sriov_a": "1" } } }],
    });
    const { decision } = await admit(object);
    expect(decision.patch).toEqual([]);
  });

  it("adds to the existing value with honorExistingResources, once", async () => {
    const object = pod({ networks: "sriov-a", containers: [{ name: "app", resources: { requests: { "intel.com/sriov_a": "1" }, limits: { "intel.com/sriov_a": "1" } } }] });
    const config = { resources: { honorExistingResources: true } };
    const first = await admit(object, { config });
    const resources = (first.after as { spec: { containers: { resources: unknown }[] } }).spec.containers[0]!.resources;
    expect(resources).toEqual({ requests: { "intel.com/sriov_a": "2" }, limits: { "intel.com/sriov_a": "2" } });
    const second = await admit(first.after as Record<string, unknown>, { config });
    expect(second.decision.patch).toEqual([]);
  });

  it("uses the configured resourceName keys", async () => {
    const config = { resources: { resourceNameKeys: ["example.com/device"] } };
    const { decision } = await admit(pod({ networks: "sriov-a" }), { config });
    expect(decision.patch).toEqual([]);
  });
});

describe("node selectors", () => {
  it("merges k=v and bare k from the NAD annotation", async () => {
    const { after } = await admit(pod({ networks: "tenant-b/sriov-b", spec: { nodeSelector: { disk: "ssd" } } }), { user: "carol" });
    expect((after as { spec: { nodeSelector: unknown } }).spec.nodeSelector).toEqual({ disk: "ssd", sriov: "true", zone: "" });
  });

  it("denies two NADs that disagree", async () => {
    const { decision } = await admit(pod({ namespace: "tenant-b", networks: "sriov-b, pinned-b" }));
    expect(decision.reason).toBe("node-selector-conflict");
    expect(decision.message).toBe(
      "pod tenant-b/app: spec.nodeSelector: NetworkAttachmentDefinition tenant-b/sriov-b needs sriov=true but tenant-b/pinned-b needs sriov=false; no node can satisfy both",
    );
  });

  it("denies a NAD that disagrees with the pod's own nodeSelector", async () => {
    const { decision } = await admit(pod({ namespace: "tenant-b", networks: "pinned-b", spec: { nodeSelector: { sriov: "true" } } }));
    expect(decision.message).toBe(
      "pod tenant-b/app: spec.nodeSelector: NetworkAttachmentDefinition tenant-b/pinned-b needs sriov=false but the pod's spec.nodeSelector has sriov=true",
    );
  });
});

describe("downward API volume", () => {
  const config = { injection: { downwardApi: true } };

  it("adds podnetinfo once, mounted read-only in every container", async () => {
    const object = pod({ networks: "macvlan-a", containers: [{ name: "a" }, { name: "b", volumeMounts: [{ name: "data", mountPath: "/data" }] }] });
    const { after } = await admit(object, { config });
    const spec = (after as { spec: { volumes: unknown[]; containers: { volumeMounts: unknown[] }[] } }).spec;
    expect(spec.volumes).toEqual([
      {
        name: "podnetinfo",
        downwardAPI: {
          items: [
            { path: "labels", fieldRef: { fieldPath: "metadata.labels" } },
            { path: "annotations", fieldRef: { fieldPath: "metadata.annotations" } },
          ],
        },
      },
    ]);
    expect(spec.containers[0]!.volumeMounts).toEqual([{ name: "podnetinfo", mountPath: "/etc/podnetinfo", readOnly: true }]);
    expect(spec.containers[1]!.volumeMounts).toEqual([
      { name: "data", mountPath: "/data" },
      { name: "podnetinfo", mountPath: "/etc/podnetinfo", readOnly: true },
    ]);
  });

  it("is off by default", async () => {
    expect((await admit(pod({ networks: "macvlan-a" }))).decision.patch).toEqual([]);
  });
});

describe("idempotence", () => {
  it.each([
    ["resources", "sriov-a, sriov-a", {}],
    ["resources, node selector and downward API", "tenant-b/sriov-b, sriov-a", { authorization: { mode: "none" }, injection: { downwardApi: true } }],
  ])("applying the webhook to its own output yields no patch (%s)", async (_, networks, config) => {
    const first = await admit(pod({ networks }), { config });
    expect(first.decision.patch.length).toBeGreaterThan(0);
    const second = await admit(first.after as Record<string, unknown>, { config });
    expect(second.decision.patch).toEqual([]);
  });
});

describe("warnings", () => {
  it("warns about a CNI type the enforcer does not handle, in under 120 characters", async () => {
    const { response } = await admit(pod({ namespace: "tenant-b", networks: "ovn-b" }));
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual(["net1 (tenant-b/ovn-b): CNI type ovn-k8s-cni-overlay is not enforced by MultiNetworkPolicy"]);
  });

  it("the validating endpoint says when mutations are missing, and never patches", async () => {
    const { decision } = await admit(pod({ networks: "sriov-a" }), { endpoint: "validate" });
    expect(decision.patch).toEqual([]);
    expect(decision.warnings).toEqual(["the pod lacks mutations nadguard would make (was the mutating webhook skipped?)"]);
  });
});

describe("the AdmissionReview response", () => {
  it("carries a denial in status with code 403 and no patch", async () => {
    const { response } = await admit(pod({ networks: "nope" }));
    expect(response).toMatchObject({ allowed: false, status: { code: 403, reason: "Forbidden" } });
    expect(response.patch).toBeUndefined();
    expect(response.patchType).toBeUndefined();
  });

  it("sends patch and patchType together, the patch base64 JSON", async () => {
    const { response, decision } = await admit(pod({ networks: "sriov-a" }));
    expect(response.patchType).toBe("JSONPatch");
    expect(JSON.parse(Buffer.from(response.patch!, "base64").toString())).toEqual(decision.patch);
  });

  it("ignores DELETE, CONNECT and subresources other than status", async () => {
    for (const operation of ["DELETE", "CONNECT"] as const) {
      expect((await decide({ ...createRequest(pod({ networks: "nope" })), operation }, env, "mutate")).allowed).toBe(true);
    }
    for (const subResource of ["binding", "ephemeralcontainers", "resize", "eviction"]) {
      expect((await decide({ ...updateRequest(pod(), pod({ networks: "nope" })), subResource }, env, "mutate")).allowed).toBe(true);
    }
  });
});

describe("the default-network annotation", () => {
  const withDefault = (value: string) => pod({ annotations: { "v1.multus-cni.io/default-network": value } });

  it("resolves a bare name in Multus's namespace, as Multus does, and is authorized like any NAD", async () => {
    const { decision } = await admit(withDefault("cluster-net"), { config: { multus: { namespace: "infra" } } });
    expect(decision.reason).toBe("network-forbidden");
    expect(decision.message).toContain("may not use NetworkAttachmentDefinition infra/cluster-net");
    const global = await admit(withDefault("shared"), { config: { multus: { namespace: "infra" }, authorization: { globalNamespaces: ["infra"] } } });
    expect(global.decision.allowed).toBe(true);
    expect(global.decision.attachments).toEqual([
      {
        interfaceName: "eth0",
        network: "infra/shared",
        cniType: "bridge",
        access: { allowed: true, mode: "rbac", reason: "global-namespace", summary: 'allowed: infra is a global namespace (authorization mode "rbac")' },
      },
    ]);
  });

  it("rejects more than one element", async () => {
    const { decision } = await admit(withDefault("a, b"));
    expect(decision.reason).toBe("invalid-network-selection");
  });
});

describe("JSON form", () => {
  it("labels a JSON element by its JSON, without double quoting", async () => {
    const { decision } = await admit(pod({ networks: '[{"name":"nope","interface":"x0"}]' }));
    expect(decision.message).toBe(
      'pod tenant-a/app: element 1 ({"name":"nope","interface":"x0"}): NetworkAttachmentDefinition tenant-a/nope does not exist; ' +
        "NetworkAttachmentDefinitions in namespace tenant-a: macvlan-a, sriov-a",
    );
  });
});

describe("UPDATE: a change of a running pod's networks is decided as a CREATE of the new value", () => {
  /** A pod of tenant-a; service account default has no grant in tenant-b, builder has one. */
  const running = (input: Parameters<typeof pod>[0] = {}) => pod({ ...input, spec: { nodeName: "node-1", ...input.spec } });
  const update = async (before: Record<string, unknown>, after: Record<string, unknown>, user = "mallory", endpoint: "mutate" | "validate" = "mutate") =>
    decide(updateRequest(before, after, user), env, endpoint);

  it.each([
    ["adds a forbidden network", running({ networks: "macvlan-a" }), running({ networks: "macvlan-a, tenant-b/ovn-b" }), 'element 2 ("tenant-b/ovn-b")'],
    ["changes an allowed network into a forbidden one", running({ networks: "macvlan-a" }), running({ networks: "tenant-b/ovn-b" }), 'element 1 ("tenant-b/ovn-b")'],
    [
      "adds a forbidden default network",
      running({ networks: "macvlan-a" }),
      running({ networks: "macvlan-a", annotations: { "v1.multus-cni.io/default-network": "tenant-b/ovn-b" } }),
      "annotation v1.multus-cni.io/default-network",
    ],
    ["adds networks to a pod that had none", running(), running({ networks: "tenant-b/ovn-b" }), 'element 1 ("tenant-b/ovn-b")'],
  ])("denies an update that %s, on /mutate and /validate alike", async (_title, before, after, label) => {
    for (const endpoint of ["mutate", "validate"] as const) {
      const decision = await update(before, after, "mallory", endpoint);
      expect(decision).toMatchObject({ allowed: false, reason: "network-forbidden", patch: [] });
      expect(decision.message).toBe(
        `pod tenant-a/app: ${label}: may not use NetworkAttachmentDefinition tenant-b/ovn-b: it is not in the pod's namespace tenant-a, ` +
          'and under authorization mode "rbac" a change of a pod\'s networks needs both the user making it and the pod\'s service account ' +
          'to be granted verb "use" on network-attachment-definitions.k8s.cni.cncf.io "ovn-b" in namespace tenant-b; neither the updating ' +
          "user mallory (groups system:authenticated) nor the pod's service account system:serviceaccount:tenant-a:default is. If namespace tenant-b is misspelt, " +
          "correct it: nadguard does not say which NADs other namespaces hold. Otherwise a cluster admin allows it by binding the ClusterRole " +
          "nadguard:nad-user (every NAD of tenant-b) there:\n" +
          "kubectl -n tenant-b create rolebinding nadguard-nad-user-mallory --clusterrole=nadguard:nad-user --user=mallory\n" +
          "kubectl -n tenant-b create rolebinding nadguard-nad-user-tenant-a-default --clusterrole=nadguard:nad-user --serviceaccount=tenant-a:default",
      );
    }
  });

  it("checks the pods/status subresource too (its updates keep the metadata they carry)", async () => {
    const request = { ...updateRequest(running({ networks: "macvlan-a" }), running({ networks: "tenant-b/ovn-b" }), "mallory"), subResource: "status" };
    expect(await decide(request, env, "validate")).toMatchObject({ allowed: false, reason: "network-forbidden" });
  });

  it("judges an update without an old object as a change", async () => {
    const request = { ...updateRequest(running(), running({ networks: "tenant-b/ovn-b" }), "mallory"), oldObject: null };
    expect(await decide(request, env, "mutate")).toMatchObject({ allowed: false, reason: "network-forbidden" });
  });

  describe("an update that leaves both annotations as they were is allowed untouched, whatever else it changes", () => {
    // The pod got tenant-b/ovn-b at creation through its service account's grant; mallory has none.
    const networks = { networks: "tenant-b/ovn-b", annotations: { "v1.multus-cni.io/default-network": "tenant-b/ovn-b" }, spec: { serviceAccountName: "builder" } };
    it.each<[string, (pod: Record<string, any>) => void]>([
      ["labels", (p) => (p.metadata.labels = { app: "changed" })],
      ["another annotation", (p) => (p.metadata.annotations["example.com/note"] = "hello")],
      ["the image", (p) => (p.spec.containers[0].image = "registry.example/app:2")],
    ])("%s", async (_title, edit) => {
      const old = running(networks);
      const changed = structuredClone(old) as Record<string, any>;
      edit(changed);
      for (const endpoint of ["mutate", "validate"] as const) {
        expect(await update(old, changed, "mallory", endpoint)).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
      }
    });

    it("even when the annotations hold what no CREATE would pass (a missing NAD)", async () => {
      const old = running({ networks: "no-such-nad" });
      const changed = running({ networks: "no-such-nad", spec: { activeDeadlineSeconds: 30 } });
      expect((await update(old, changed)).allowed).toBe(true);
    });
  });

  it("allows removing the networks", async () => {
    expect(await update(running({ networks: "tenant-b/ovn-b" }), running(), "mallory")).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
  });

  it("allows a change to NADs of the pod's own namespace, with no patch", async () => {
    const decision = await update(running({ networks: "macvlan-a" }), running({ networks: "macvlan-a, macvlan-a@data1" }), "mallory");
    expect(decision).toMatchObject({ allowed: true, patch: [] });
    expect(decision.attachments.map((a) => a.interfaceName)).toEqual(["net1", "data1"]);
  });

  it.each([
    ["the updater alone is granted", "carol", "default", false],
    ["the pod's service account alone is granted", "mallory", "builder", false],
    ["both are granted", "carol", "builder", true],
  ])("needs both the updater and the pod's service account: %s", async (_title, user, serviceAccountName, allowed) => {
    const spec = { serviceAccountName };
    const decision = await update(running({ networks: "macvlan-a", spec }), running({ networks: "tenant-b/ovn-b", spec }), user);
    expect(decision.allowed).toBe(allowed);
  });

  it("denies, and says the pod must be recreated, when the new networks need devices the pod does not request", async () => {
    const decision = await update(running({ networks: "macvlan-a" }), running({ networks: "macvlan-a, sriov-a, sriov-a@vf1" }), "alice");
    expect(decision).toMatchObject({ allowed: false, reason: "recreate-required", patch: [] });
    expect(decision.message).toBe(
      "pod tenant-a/app: spec.containers[0].resources: the new networks need 2 intel.com/sriov_a (the pod requests 0), and a pod's " +
        "resources cannot change once it exists; delete the pod and create it again with these networks (nadguard then adds what they need)",
    );
  });

  it("allows it when the pod already requests the devices (as nadguard injected them at creation)", async () => {
    const created = await admit(pod({ networks: "sriov-a, sriov-a@vf1" }));
    const before = created.after as Record<string, any>;
    const after = structuredClone(before);
    after.metadata.annotations["k8s.v1.cni.cncf.io/networks"] = "sriov-a@vf1, sriov-a, macvlan-a";
    expect(await update(before, after, "alice")).toMatchObject({ allowed: true, patch: [] });
    after.metadata.annotations["k8s.v1.cni.cncf.io/networks"] = "sriov-a, sriov-a@vf1, sriov-a@vf2";
    expect((await update(before, after, "alice")).message).toContain("need 3 intel.com/sriov_a (the pod requests 2)");
  });

  it("denies, and says the pod must be recreated, when the new networks need node labels its nodeSelector lacks", async () => {
    const spec = { serviceAccountName: "builder" };
    const containers = [{ name: "app", resources: { requests: { "intel.com/sriov_b": "1" }, limits: { "intel.com/sriov_b": "1" } } }];
    const decision = await update(running({ spec, containers }), running({ networks: "tenant-b/sriov-b", spec, containers }), "carol");
    expect(decision).toMatchObject({ allowed: false, reason: "recreate-required" });
    expect(decision.message).toBe(
      "pod tenant-a/app: spec.nodeSelector: the new networks need node labels sriov=true, zone=, which spec.nodeSelector lacks, and a " +
        "scheduled pod does not move to another node; delete the pod and create it again with these networks (nadguard then adds what they need)",
    );
  });
});

describe("a bare name in the default-network annotation that resolves in the Multus namespace", () => {
  const config = { multus: { namespace: "infra" } };
  const withDefault = (value: string, namespace = "tenant-a") => pod({ namespace, annotations: { "v1.multus-cni.io/default-network": value } });

  it("is denied without suggesting a grant in the Multus namespace, pointing at the NAD of the pod's namespace", async () => {
    const { decision } = await admit(withDefault("macvlan-a"), { config });
    expect(decision.reason).toBe("network-forbidden");
    expect(decision.message).toBe(
      "pod tenant-a/app: annotation v1.multus-cni.io/default-network: may not use NetworkAttachmentDefinition infra/macvlan-a: a name " +
        "without a namespace in v1.multus-cni.io/default-network is looked up in the Multus namespace infra, as Multus does, not in the " +
        'pod\'s namespace. You probably meant tenant-a/macvlan-a: write the namespace, "tenant-a/macvlan-a". A grant of the NADs of infra ' +
        "to this namespace is rarely what is wanted, so none is suggested.",
    );
  });

  it("says so when the pod's namespace has no such NAD either, and names nothing of the Multus namespace", async () => {
    const { decision } = await admit(withDefault("shared"), { config });
    expect(decision.message).toContain("Namespace tenant-a has no NetworkAttachmentDefinition shared either; to use one of its NADs, write tenant-a/<name>.");
    const missing = await admit(withDefault("no-such-nad"), { config });
    expect(missing.decision.message!.replaceAll("no-such-nad", "shared")).toBe(decision.message);
  });

  it("when allowed but missing, says where the bare name was looked up", async () => {
    const { decision } = await admit(withDefault("nope"), { config: { ...config, authorization: { globalNamespaces: ["infra"] } } });
    expect(decision.message).toBe(
      "pod tenant-a/app: annotation v1.multus-cni.io/default-network: NetworkAttachmentDefinition infra/nope does not exist (a name without " +
        "a namespace in v1.multus-cni.io/default-network is looked up in the Multus namespace infra, as Multus does); " +
        "NetworkAttachmentDefinitions in namespace tenant-a: macvlan-a, sriov-a",
    );
  });
});

describe("bounded denials", () => {
  /** `n0/x,n1/x,…`: 30,000 NADs in as many namespaces, none granted, none existing (253 KiB). */
  const manyMissing = Array.from({ length: 30_000 }, (_, i) => `n${i}/x`).join(",");

  it("30,000 forbidden NADs: lists ten, counts the rest, and asks about no more than ten", async () => {
    const asked: AccessAttributes[] = [];
    const counting = { ...env, access: { review: (attrs: AccessAttributes) => (asked.push(attrs), env.access.review(attrs)) } };
    const decision = await decide(createRequest(pod({ networks: manyMissing }), "mallory"), counting, "mutate");
    expect(decision.reason).toBe("network-forbidden");
    const lines = decision.message!.split("\n- ");
    expect(lines[0]).toBe("pod tenant-a/app:");
    expect(lines.slice(1, 11).map((line) => line.slice(0, line.indexOf(":")))).toEqual(Array.from({ length: 10 }, (_, i) => `element ${i + 1} ("n${i}/x")`));
    expect(lines.at(-1)).toBe("and 29,990 more networks not checked: the pod is denied already");
    expect(lines).toHaveLength(12);
    expect(decision.message!.length).toBeLessThanOrEqual(MAX_DENIAL_LENGTH);
    // The requester and the service account, for each of the ten NADs reported.
    expect(new Set(asked.map((a) => a.namespace)).size).toBe(10);
  });

  it("counts the unchecked NADs once each, however often they are named", async () => {
    const networks = [...Array.from({ length: 10 }, (_, i) => `m${i}/x`), "a/x", "b/x", "a/x", "a/x@other"].join(",");
    const { decision } = await admit(pod({ networks }), { user: "mallory" });
    expect(decision.message!.split("\n- ").at(-1)).toBe("and 2 more networks not checked: the pod is denied already");
  });

  it("11 missing NADs of the pod's own namespace: ten listed, one counted", async () => {
    const networks = Array.from({ length: 11 }, (_, i) => `gone-${i}`).join(",");
    const { decision } = await admit(pod({ namespace: "empty", networks }));
    expect(decision.reason).toBe("network-not-found");
    expect(decision.message!.split("\n- ").at(-1)).toBe("and 1 more network not checked: the pod is denied already");
  });

  it("60,000 broken elements: ten problems listed, the exact count of the others", async () => {
    const { decision } = await admit(pod({ networks: Array.from({ length: 60_000 }, () => "A").join(",") }));
    expect(decision.reason).toBe("invalid-network-selection");
    const lines = decision.message!.split("\n- ");
    expect(lines).toHaveLength(12);
    expect(lines[1]).toBe('metadata.annotations["k8s.v1.cni.cncf.io/networks"]: element 1 ("A") names network "A", which has upper-case letters; Kubernetes names are lower-case');
    expect(lines.at(-1)).toBe("and 59,990 more problems");
  });

  it("network annotations over kube-apiserver's 256 KiB are refused before they are parsed", async () => {
    const { decision } = await admit(pod({ networks: "a,".repeat(140_000) }));
    expect(decision.message).toBe(
      "pod tenant-a/app: metadata.annotations: the network annotations hold 280,000 characters; kube-apiserver accepts at most 262,144 bytes of annotations per object",
    );
  });

  it("a pod the schema cannot read is named, with the field", async () => {
    const { decision } = await admit({ kind: "Pod", metadata: { name: "x", namespace: "tenant-a", annotations: { "k8s.v1.cni.cncf.io/networks": "a" } }, spec: { containers: "no" } });
    expect(decision.reason).toBe("invalid-object");
    expect(decision.message).toMatch(/^pod tenant-a\/x: the pod cannot be read: spec\.containers: /);
  });
});
