import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { Role, RoleBinding } from "../api/objects.js";
import type { RbacObjects } from "../api/snapshot.js";
import type { AccessReviewer, NadAccessDecision, NadAccessOptions, NadUseRequest } from "./nad-access.js";
import { authorizeNadUse, offlineReviewer } from "./nad-access.js";

const NAD_RULE = { apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"], verbs: ["use"] };

/** ClusterRole nad-user (use any NAD), bound in tenant-b to user alice, group net-admins, and SA tenant-a/builder. */
const RBAC: RbacObjects = {
  roles: new Map(),
  clusterRoles: new Map([["nad-user", { kind: "ClusterRole", metadata: { name: "nad-user" }, rules: [NAD_RULE] }]]),
  roleBindings: [
    {
      kind: "RoleBinding",
      metadata: { namespace: "tenant-b", name: "nad-users" },
      roleRef: { kind: "ClusterRole", name: "nad-user" },
      subjects: [
        { kind: "User", name: "alice" },
        { kind: "Group", name: "net-admins" },
        { kind: "ServiceAccount", name: "builder", namespace: "tenant-a" },
      ],
    },
  ],
  clusterRoleBindings: [],
};
const reviewer = offlineReviewer(RBAC);
const GRANT = "RoleBinding tenant-b/nad-users → ClusterRole nad-user";
const CONTROLLER = {
  username: "system:serviceaccount:kube-system:replicaset-controller",
  groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
};

function request(overrides: Partial<NadUseRequest> = {}): NadUseRequest {
  return {
    podNamespace: "tenant-a",
    nadNamespace: "tenant-b",
    nadName: "sriov-net",
    requester: { username: "bob", groups: ["system:authenticated"] },
    serviceAccountName: "default",
    ...overrides,
  };
}
const rbacMode: NadAccessOptions = { mode: "rbac", globalNamespaces: ["shared-nets"] };
const isolation: NadAccessOptions = { mode: "namespace-isolation", globalNamespaces: ["shared-nets"] };
const none: NadAccessOptions = { mode: "none", globalNamespaces: [] };

describe("authorizeNadUse", () => {
  it.each<[string, NadAccessOptions, Partial<NadUseRequest>, Partial<NadAccessDecision>]>([
    ["none: another namespace", none, {}, { allowed: true, reason: "mode-none" }],
    ["none: own namespace", none, { nadNamespace: "tenant-a" }, { allowed: true, reason: "mode-none" }],
    ["isolation: own namespace", isolation, { nadNamespace: "tenant-a" }, { allowed: true, reason: "own-namespace" }],
    ["isolation: global namespace", isolation, { nadNamespace: "shared-nets" }, { allowed: true, reason: "global-namespace" }],
    ["isolation: another namespace, even with an RBAC grant", isolation, { requester: { username: "alice" } }, { allowed: false, reason: "namespace-isolation" }],
    ["rbac: own namespace", rbacMode, { nadNamespace: "tenant-a" }, { allowed: true, reason: "own-namespace" }],
    ["rbac: global namespace", rbacMode, { nadNamespace: "shared-nets" }, { allowed: true, reason: "global-namespace" }],
    ["rbac: no grant", rbacMode, {}, { allowed: false, reason: "rbac" }],
    ["rbac: user granted", rbacMode, { requester: { username: "alice" } }, { allowed: true, reason: "rbac", grantedBy: GRANT, subject: "alice" }],
    [
      "rbac: user granted through a group",
      rbacMode,
      { requester: { username: "carol", groups: ["net-admins"] } },
      { allowed: true, reason: "rbac", grantedBy: GRANT, subject: "carol" },
    ],
    [
      "rbac: the pod's service account granted",
      rbacMode,
      { serviceAccountName: "builder" },
      { allowed: true, reason: "rbac", grantedBy: GRANT, subject: "system:serviceaccount:tenant-a:builder" },
    ],
    [
      "rbac: pod made by a controller, allowed through its own service account",
      rbacMode,
      { requester: CONTROLLER, serviceAccountName: "builder" },
      { allowed: true, reason: "rbac", grantedBy: GRANT, subject: "system:serviceaccount:tenant-a:builder" },
    ],
    ["rbac: pod made by a controller, its service account not granted", rbacMode, { requester: CONTROLLER }, { allowed: false, reason: "rbac" }],
    [
      "rbac: user checked before the service account",
      rbacMode,
      { requester: { username: "alice" }, serviceAccountName: "builder" },
      { allowed: true, reason: "rbac", grantedBy: GRANT, subject: "alice" },
    ],
    [
      "rbac: no requester, service account granted",
      rbacMode,
      { requester: {}, serviceAccountName: "builder" },
      { allowed: true, reason: "rbac", subject: "system:serviceaccount:tenant-a:builder" },
    ],
    [
      "rbac: empty service account name means default",
      rbacMode,
      { serviceAccountName: "" },
      { allowed: false, reason: "rbac" },
    ],
    [
      "rbac: the grant is for tenant-b only",
      rbacMode,
      { nadNamespace: "tenant-c", requester: { username: "alice" }, serviceAccountName: "builder" },
      { allowed: false, reason: "rbac" },
    ],
  ])("%s", async (_title, options, overrides, expected) => {
    const decision = await authorizeNadUse(request(overrides), options, reviewer);
    expect(decision).toMatchObject(expected);
  });

  it("rbac denial: the whole message and the remedy", async () => {
    const decision = await authorizeNadUse(
      request({ requester: { username: "bob", groups: ["devs", "qa", "oncall", "system:authenticated", "extra"] } }),
      rbacMode,
      reviewer,
    );
    expect(decision).toEqual({
      allowed: false,
      reason: "rbac",
      message:
        'may not use NetworkAttachmentDefinition tenant-b/sriov-net: it is not in the pod\'s namespace tenant-a, and under authorization mode "rbac" ' +
        "neither the requesting user bob (groups devs, qa, oncall, system:authenticated and 1 more) nor the pod's service account " +
        'system:serviceaccount:tenant-a:default is granted verb "use" on network-attachment-definitions.k8s.cni.cncf.io "sriov-net" ' +
        "in namespace tenant-b. To allow it, a cluster admin applies a Role and a RoleBinding in namespace tenant-b that grant it to " +
        "the pod's service account.",
      remedy: `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: use-nad-sriov-net
  namespace: tenant-b
rules:
  - apiGroups: ["k8s.cni.cncf.io"]
    resources: ["network-attachment-definitions"]
    resourceNames: ["sriov-net"]
    verbs: ["use"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: use-nad-sriov-net-tenant-a-default
  namespace: tenant-b
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: use-nad-sriov-net
subjects:
  - kind: ServiceAccount
    name: default
    namespace: tenant-a
`,
    });
  });

  it("namespace-isolation denial: the whole message", async () => {
    expect(await authorizeNadUse(request(), isolation, reviewer)).toEqual({
      allowed: false,
      reason: "namespace-isolation",
      message:
        'may not use NetworkAttachmentDefinition tenant-b/sriov-net: under authorization mode "namespace-isolation" a pod in ' +
        "namespace tenant-a may use only NADs in its own namespace and in the global namespaces (shared-nets). To allow it, a " +
        "cluster admin adds tenant-b to globalNamespaces (every namespace may then use its NADs) or switches to authorization " +
        'mode "rbac" and grants verb "use" on this NAD.',
    });
  });

  it.each<[string, NadUseRequest["requester"], string]>([
    ["no requester", {}, "no requesting user was given and the pod's service account system:serviceaccount:tenant-a:default is not granted"],
    ["requester without groups", { username: "bob" }, "neither the requesting user bob (no groups) nor"],
  ])("rbac denial names who was checked: %s", async (_title, requester, fragment) => {
    const decision = await authorizeNadUse(request({ requester }), rbacMode, reviewer);
    expect(decision.allowed ? "" : decision.message).toContain(fragment);
  });

  it("the remedy, once applied, allows the pod (round trip through YAML and the schemas)", async () => {
    const nad = request({ nadName: "true", serviceAccountName: "on" });
    const denied = await authorizeNadUse(nad, rbacMode, reviewer);
    if (denied.allowed || denied.remedy === undefined) throw new Error("expected a denial with a remedy");
    const [roleDoc, bindingDoc] = parseAllDocuments(denied.remedy).map((d) => d.toJS() as unknown);
    const role = Role.parse(roleDoc);
    const binding = RoleBinding.parse(bindingDoc);
    const rbac: RbacObjects = {
      roles: new Map([[`${role.metadata.namespace}/${role.metadata.name}`, role]]),
      clusterRoles: new Map(),
      roleBindings: [binding],
      clusterRoleBindings: [],
    };
    expect(await authorizeNadUse(nad, rbacMode, offlineReviewer(rbac))).toEqual({
      allowed: true,
      reason: "rbac",
      grantedBy: 'RoleBinding tenant-b/use-nad-true-tenant-a-on → Role tenant-b/use-nad-true',
      subject: "system:serviceaccount:tenant-a:on",
    });
  });

  it("an async reviewer works; a failing reviewer denies and says why", async () => {
    const asyncReviewer: AccessReviewer = { review: async (attrs) => reviewer.review(attrs) };
    expect(await authorizeNadUse(request({ serviceAccountName: "builder" }), rbacMode, asyncReviewer)).toMatchObject({
      allowed: true,
      subject: "system:serviceaccount:tenant-a:builder",
    });
    const failing: AccessReviewer = {
      review: () => Promise.reject(new Error("SubjectAccessReview timed out")),
    };
    const decision = await authorizeNadUse(request(), rbacMode, failing);
    expect(decision).toMatchObject({ allowed: false, reason: "rbac" });
    expect(decision.allowed ? "" : decision.message).toContain(
      "The access review failed for bob: SubjectAccessReview timed out; system:serviceaccount:tenant-a:default: SubjectAccessReview timed out.",
    );
  });
});
