// resolveNetworks: the references of a pod's network annotations resolved to NADs, each with the
// access trail that says what granted its use or what was missing, the limits on what a refusal
// lists, and the deadline reaching the access reviewer.
import { describe, expect, it } from "vitest";
import { snapshotFrom } from "../../test/support/cluster.js";
import type { AccessReviewer, NadAccessOptions } from "./nad-access.js";
import { offlineReviewer } from "./nad-access.js";
import { type NetworkAccessContext, type NetworkRequest, resolveNetworks } from "./network-access.js";
import type { AccessAttributes } from "./rbac.js";

const SNAPSHOT = snapshotFrom(`
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: macvlan-a, namespace: tenant-a }
spec: { config: '{"cniVersion":"1.0.0","type":"macvlan"}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: sriov-b, namespace: tenant-b }
spec: { config: '{"cniVersion":"1.0.0","type":"sriov"}' }
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
metadata: { name: builders, namespace: tenant-b }
subjects: [{ kind: ServiceAccount, name: builder, namespace: tenant-a }]
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nad-user }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: carol, namespace: tenant-b }
subjects: [{ kind: User, name: carol, apiGroup: rbac.authorization.k8s.io }]
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: nad-user }
`);

const RBAC: NadAccessOptions = { mode: "rbac", globalNamespaces: ["infra"] };
const OFFLINE = offlineReviewer(SNAPSHOT.rbac);

const context = (overrides: Partial<NetworkAccessContext> = {}): NetworkAccessContext => ({
  snapshot: SNAPSHOT,
  authorization: RBAC,
  multusNamespace: "kube-system",
  reviewer: OFFLINE,
  ...overrides,
});

const request = (networks: unknown, overrides: Partial<NetworkRequest> = {}): NetworkRequest => ({
  namespace: "tenant-a",
  networks,
  defaultNetwork: undefined,
  ...overrides,
});

describe("resolveNetworks", () => {
  it("resolves each reference in order, default network first, each with its NAD and what allowed it", async () => {
    const result = await resolveNetworks(
      request("macvlan-a@data0, infra/shared", { serviceAccountName: "builder", defaultNetwork: "tenant-b/sriov-b" }),
      context(),
    );
    if (!result.ok) throw new Error(JSON.stringify(result));
    expect(result.attachments.map(({ interfaceName, network, label, nad, access }) => ({ interfaceName, network, label, nad: nad.metadata.name, access }))).toEqual([
      {
        interfaceName: "eth0",
        network: "tenant-b/sriov-b",
        label: "annotation v1.multus-cni.io/default-network",
        nad: "sriov-b",
        access: {
          allowed: true,
          mode: "rbac",
          reason: "rbac",
          reviewer: "offline-rbac",
          grants: [{ subject: "system:serviceaccount:tenant-a:builder", grantedBy: "RoleBinding tenant-b/builders → ClusterRole nad-user" }],
          summary: "allowed by RoleBinding tenant-b/builders → ClusterRole nad-user, granted to the pod's service account system:serviceaccount:tenant-a:builder",
        },
      },
      {
        interfaceName: "data0",
        network: "tenant-a/macvlan-a",
        label: 'element 1 ("macvlan-a@data0")',
        nad: "macvlan-a",
        access: { allowed: true, mode: "rbac", reason: "own-namespace", summary: `allowed: in the pod's own namespace tenant-a (authorization mode "rbac")` },
      },
      {
        interfaceName: "net2",
        network: "infra/shared",
        label: 'element 2 ("infra/shared")',
        nad: "shared",
        access: { allowed: true, mode: "rbac", reason: "global-namespace", summary: `allowed: infra is a global namespace (authorization mode "rbac")` },
      },
    ]);
  });

  it("names the requesting user's grant, and both grants for a change of a running pod's networks", async () => {
    const create = await resolveNetworks(request("tenant-b/sriov-b", { requester: { username: "carol" } }), context());
    if (!create.ok) throw new Error("expected an allow");
    expect(create.attachments[0]!.access.summary).toBe("allowed by RoleBinding tenant-b/carol → ClusterRole nad-user, granted to the requesting user carol");
    const update = await resolveNetworks(request("tenant-b/sriov-b", { requester: { username: "carol" }, serviceAccountName: "builder", grantee: "both" }), context());
    if (!update.ok) throw new Error("expected an allow");
    expect(update.attachments[0]!.access.summary).toBe(
      "allowed by RoleBinding tenant-b/carol → ClusterRole nad-user, granted to the updating user carol; " +
        "and by RoleBinding tenant-b/builders → ClusterRole nad-user, granted to the pod's service account system:serviceaccount:tenant-a:builder",
    );
  });

  it("names the SubjectAccessReview and the API server's reason when a cluster decided", async () => {
    const sar = (reason?: string): AccessReviewer => ({
      kind: "subjectaccessreview",
      review: async (attrs) => ({ allowed: attrs.user === "dave", ...(reason !== undefined && { grantedBy: reason }) }),
    });
    const withReason = await resolveNetworks(request("tenant-b/sriov-b", { requester: { username: "dave" } }), context({ reviewer: sar('RBAC: allowed by RoleBinding "x/tenant-b"') }));
    if (!withReason.ok) throw new Error("expected an allow");
    expect(withReason.attachments[0]!.access).toEqual({
      allowed: true,
      mode: "rbac",
      reason: "rbac",
      reviewer: "subjectaccessreview",
      grants: [{ subject: "dave", grantedBy: 'RBAC: allowed by RoleBinding "x/tenant-b"' }],
      summary: 'allowed by SubjectAccessReview for the requesting user dave: RBAC: allowed by RoleBinding "x/tenant-b"',
    });
    const bare = await resolveNetworks(request("tenant-b/sriov-b", { requester: { username: "dave" } }), context({ reviewer: sar("SubjectAccessReview") }));
    expect(bare.ok && bare.attachments[0]!.access.summary).toBe("allowed by SubjectAccessReview for the requesting user dave");
  });

  it("mode none: every NAD that exists, saying why", async () => {
    const result = await resolveNetworks(request("tenant-b/sriov-b"), context({ authorization: { mode: "none", globalNamespaces: [] } }));
    expect(result.ok && result.attachments[0]!.access).toEqual({
      allowed: true,
      mode: "none",
      reason: "mode-none",
      summary: 'allowed: authorization mode "none" lets every pod use every NAD',
    });
  });

  it("refuses what may not be used before asking whether it exists, and what does not exist; each problem names its element", async () => {
    const result = await resolveNetworks(request("tenant-b/sriov-b, tenant-b/nope, missing@x0"), context());
    if (result.ok) throw new Error("expected a refusal");
    expect(result.reason).toBe("network-forbidden");
    expect(result.problems.map((p) => [p.code, p.path])).toEqual([
      ["network.forbidden", 'element 1 ("tenant-b/sriov-b")'],
      ["network.forbidden", 'element 2 ("tenant-b/nope")'],
      ["network.not-found", 'element 3 ("missing@x0")'],
    ]);
    expect(result.problems[2]!.message).toBe("NetworkAttachmentDefinition tenant-a/missing does not exist; NetworkAttachmentDefinitions in namespace tenant-a: macvlan-a");
    const missing =
      'a grant of verb "use" on network-attachment-definitions.k8s.cni.cncf.io "nope" in namespace tenant-b to the pod\'s service account system:serviceaccount:tenant-a:default';
    expect(result.refused[1]).toEqual({
      interfaceName: "net2",
      network: "tenant-b/nope",
      label: 'element 2 ("tenant-b/nope")',
      notFound: false,
      missing,
      access: { allowed: false, mode: "rbac", reason: "rbac", missing, summary: `denied: missing ${missing}` },
    });
    expect(result.refused[2]).toMatchObject({
      interfaceName: "x0",
      network: "tenant-a/missing",
      notFound: true,
      missing: "NetworkAttachmentDefinition tenant-a/missing does not exist",
      access: { allowed: true, reason: "own-namespace" },
    });
  });

  it("namespace-isolation: what the mode allows instead", async () => {
    const result = await resolveNetworks(request("tenant-b/sriov-b"), context({ authorization: { mode: "namespace-isolation", globalNamespaces: [] } }));
    if (result.ok) throw new Error("expected a refusal");
    expect(result.refused[0]!.access.summary).toBe(
      'denied: missing authorization mode "namespace-isolation" allows only NADs of the pod\'s namespace tenant-a and of the global namespaces (none configured)',
    );
  });

  it("stops authorizing after maxProblems refusals and counts the distinct NADs left unchecked", async () => {
    const asked: AccessAttributes[] = [];
    const counting: AccessReviewer = { kind: "offline-rbac", review: (attrs) => (asked.push(attrs), OFFLINE.review(attrs)) };
    const result = await resolveNetworks(request("tenant-b/a, tenant-b/b, tenant-b/c, tenant-b/c, tenant-b/d"), context({ reviewer: counting, maxProblems: 2 }));
    if (result.ok) throw new Error("expected a refusal");
    expect(result.problems).toHaveLength(2);
    expect(result.unlisted).toBe(2);
    expect(new Set(asked.map((a) => a.name))).toEqual(new Set(["a", "b"]));
  });

  it("an invalid annotation: the parser's problems, nothing authorized", async () => {
    const result = await resolveNetworks(request(42, { defaultNetwork: "a, b" }), context());
    if (result.ok) throw new Error("expected a refusal");
    expect(result.reason).toBe("invalid-network-selection");
    expect(result.problems.map((p) => p.path)).toEqual([
      'metadata.annotations["v1.multus-cni.io/default-network"]',
      'metadata.annotations["k8s.v1.cni.cncf.io/networks"]',
    ]);
    expect(result.refused).toEqual([]);
  });
});

describe("resolveNetworks and the deadline", () => {
  it("gives the signal to a reviewer that waits on the network, and rejects with its reason when it aborts", async () => {
    const signals: (AbortSignal | undefined)[] = [];
    const hanging: AccessReviewer = {
      kind: "subjectaccessreview",
      review: (_, signal) =>
        new Promise((_, reject) => {
          signals.push(signal);
          signal?.addEventListener("abort", () => reject(signal.reason));
        }),
    };
    const controller = new AbortController();
    const pending = resolveNetworks(request("tenant-b/sriov-b"), context({ reviewer: hanging, signal: controller.signal }));
    await new Promise((resolve) => setImmediate(resolve));
    const reason = new DOMException("the review's 900 ms budget ran out", "TimeoutError");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(signals).toEqual([controller.signal]);
  });

  it("never reads the signal for the offline evaluator (reading a review's signal allocates)", async () => {
    let reads = 0;
    const ctx = {
      ...context(),
      get signal(): AbortSignal {
        reads += 1;
        return new AbortController().signal;
      },
    };
    const result = await resolveNetworks(request("tenant-b/sriov-b", { serviceAccountName: "builder" }), ctx);
    expect(result.ok).toBe(true);
    expect(reads).toBe(0);
  });
});
