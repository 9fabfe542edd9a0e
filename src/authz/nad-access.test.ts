import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
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
/** The ClusterRole that manifests/ ships and every denial names. */
const NAD_USER_ROLE = Role.parse(parseYaml(readFileSync(new URL("../../manifests/rbac/nad-user.yaml", import.meta.url), "utf8")));
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

  describe("a change of a running pod's networks (grantee both): the updater and the pod's service account must both be granted", () => {
    const both = (overrides: Partial<NadUseRequest>) => request({ grantee: "both", ...overrides });
    it("allows it when both are, naming both", async () => {
      expect(await authorizeNadUse(both({ requester: { username: "alice" }, serviceAccountName: "builder" }), rbacMode, reviewer)).toEqual({
        allowed: true,
        reason: "rbac",
        grantedBy: `${GRANT}; ${GRANT}`,
        subject: "alice and system:serviceaccount:tenant-a:builder",
        grants: [
          { subject: "alice", grantedBy: GRANT },
          { subject: "system:serviceaccount:tenant-a:builder", grantedBy: GRANT },
        ],
      });
    });

    it.each<[string, Partial<NadUseRequest>, string, string[]]>([
      [
        "the service account alone (the pod did not ask)",
        { requester: { username: "bob" }, serviceAccountName: "builder" },
        "the updating user bob (no groups) is not (the pod's service account system:serviceaccount:tenant-a:builder is).",
        ["kubectl -n tenant-b create rolebinding nadguard-nad-user-bob --clusterrole=nadguard:nad-user --user=bob"],
      ],
      [
        "the updater alone (the sandbox is re-created for the pod's service account)",
        { requester: { username: "alice" } },
        "the pod's service account system:serviceaccount:tenant-a:default is not (the updating user alice (no groups) is).",
        ["kubectl -n tenant-b create rolebinding nadguard-nad-user-tenant-a-default --clusterrole=nadguard:nad-user --serviceaccount=tenant-a:default"],
      ],
      [
        "a controller updating for a granted service account",
        { requester: CONTROLLER, serviceAccountName: "builder" },
        "the updating user system:serviceaccount:kube-system:replicaset-controller (groups system:serviceaccounts, system:serviceaccounts:kube-system, system:authenticated) is not",
        ["kubectl -n tenant-b create rolebinding nadguard-nad-user-kube-system-replicaset-controller --clusterrole=nadguard:nad-user --serviceaccount=kube-system:replicaset-controller"],
      ],
      [
        "no updater named",
        { requester: {}, serviceAccountName: "builder" },
        "no updating user was given.",
        [],
      ],
    ])("denies %s", async (_title, overrides, fragment, remedy) => {
      const decision = await authorizeNadUse(both(overrides), rbacMode, reviewer);
      if (decision.allowed) throw new Error("expected a denial");
      expect(decision.message).toContain("a change of a pod's networks needs both the user making it and the pod's service account");
      expect(decision.message).toContain(fragment);
      expect(decision.remedy?.split("\n") ?? []).toEqual(remedy);
      expect(decision.message.endsWith(remedy.length > 0 ? " there:" : fragment)).toBe(true);
    });
  });

  it("rbac denial: the whole message and the one-line grant of the shipped ClusterRole", async () => {
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
        "in namespace tenant-b. If namespace tenant-b is misspelt, correct it: nadguard does not say which NADs other namespaces hold. " +
        "Otherwise a cluster admin allows it by binding the ClusterRole nadguard:nad-user (every NAD of tenant-b) to the pod's service account there:",
      remedy: "kubectl -n tenant-b create rolebinding nadguard-nad-user-tenant-a-default --clusterrole=nadguard:nad-user --serviceaccount=tenant-a:default",
      missing:
        'a grant of verb "use" on network-attachment-definitions.k8s.cni.cncf.io "sriov-net" in namespace tenant-b to the requesting user bob ' +
        "(groups devs, qa, oncall, system:authenticated and 1 more) or to the pod's service account system:serviceaccount:tenant-a:default",
    });
  });

  it("namespace-isolation denial: the whole message", async () => {
    expect(await authorizeNadUse(request(), isolation, reviewer)).toEqual({
      allowed: false,
      reason: "namespace-isolation",
      message:
        'may not use NetworkAttachmentDefinition tenant-b/sriov-net: under authorization mode "namespace-isolation" a pod in ' +
        "namespace tenant-a may use only NADs in its own namespace and in the global namespaces (shared-nets). If namespace tenant-b " +
        "is misspelt, correct it: nadguard does not say which NADs other namespaces hold. Otherwise a cluster admin adds tenant-b to " +
        'globalNamespaces (every namespace may then use its NADs) or switches to authorization mode "rbac" and grants verb "use" on this NAD.',
      missing: 'authorization mode "namespace-isolation" allows only NADs of the pod\'s namespace tenant-a and of the global namespaces (shared-nets)',
    });
  });

  it.each<[string, NadUseRequest["requester"], string]>([
    ["no requester", {}, "no requesting user was given and the pod's service account system:serviceaccount:tenant-a:default is not granted"],
    ["requester without groups", { username: "bob" }, "neither the requesting user bob (no groups) nor"],
  ])("rbac denial names who was checked: %s", async (_title, requester, fragment) => {
    const decision = await authorizeNadUse(request({ requester }), rbacMode, reviewer);
    expect(decision.allowed ? "" : decision.message).toContain(fragment);
  });

  it.for<[string, Partial<NadUseRequest>]>([
    ["a plain service account", { nadName: "true", serviceAccountName: "on" }],
    ["a service account name no shell may read unquoted", { serviceAccountName: "x'; touch /tmp/nadguard-pwned; echo '" }],
    ["an update by a person and a service account, neither granted", { grantee: "both", requester: { username: "oidc:https://id.example/bob" } }],
  ])("the remedy, run as printed by the real kubectl, makes a binding that allows it (%s)", async ([, overrides], context) => {
    const nad = request(overrides);
    const denied = await authorizeNadUse(nad, rbacMode, reviewer);
    if (denied.allowed || denied.remedy === undefined) throw new Error("expected a denial with a remedy");
    const bindings: RoleBinding[] = [];
    for (const command of denied.remedy.split("\n")) {
      expect(command).toMatch(/^kubectl -n tenant-b create rolebinding \S+ --clusterrole=nadguard:nad-user --(serviceaccount|user)=/);
      let json: string;
      try {
        json = execFileSync("sh", ["-c", `${command} --dry-run=client -o json`], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: "/nonexistent" } });
      } catch (error) {
        if ((error as { status?: number }).status === 127) return context.skip("kubectl is not installed");
        throw error;
      }
      bindings.push(RoleBinding.parse(JSON.parse(json)));
    }
    const rbac: RbacObjects = {
      roles: new Map(),
      clusterRoles: new Map([[NAD_USER_ROLE.metadata.name!, NAD_USER_ROLE]]),
      roleBindings: bindings,
      clusterRoleBindings: [],
    };
    expect(await authorizeNadUse(nad, rbacMode, offlineReviewer(rbac))).toMatchObject({ allowed: true, reason: "rbac" });
    expect(existsSync("/tmp/nadguard-pwned")).toBe(false);
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
