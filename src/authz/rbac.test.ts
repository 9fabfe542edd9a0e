import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { PolicyRule, Role, RoleBinding, Subject } from "../api/objects.js";
import type { RbacObjects } from "../api/snapshot.js";
import type { AccessAttributes } from "./rbac.js";
import { checkAccess, serviceAccountUser } from "./rbac.js";

const NAD_RULE: PolicyRule = {
  apiGroups: ["k8s.cni.cncf.io"],
  resources: ["network-attachment-definitions"],
  verbs: ["use"],
};

function role(namespace: string, name: string, rules: PolicyRule[]): Role {
  return { kind: "Role", metadata: { namespace, name }, rules };
}
function clusterRole(name: string, rules: PolicyRule[]): Role {
  return { kind: "ClusterRole", metadata: { name }, rules };
}
function roleBinding(namespace: string, name: string, ref: RoleBinding["roleRef"], subjects: Subject[]): RoleBinding {
  return { kind: "RoleBinding", metadata: { namespace, name }, roleRef: ref, subjects };
}
function clusterRoleBinding(name: string, ref: RoleBinding["roleRef"], subjects: Subject[]): RoleBinding {
  return { kind: "ClusterRoleBinding", metadata: { name }, roleRef: ref, subjects };
}
const user = (name: string): Subject => ({ kind: "User", name });
const group = (name: string): Subject => ({ kind: "Group", name });
const sa = (name: string, namespace?: string): Subject =>
  namespace === undefined ? { kind: "ServiceAccount", name } : { kind: "ServiceAccount", name, namespace };

function rbacOf(roles: Role[], bindings: RoleBinding[]): RbacObjects {
  return {
    roles: new Map(roles.filter((r) => r.kind === "Role").map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r])),
    clusterRoles: new Map(roles.filter((r) => r.kind === "ClusterRole").map((r) => [r.metadata.name ?? "", r])),
    roleBindings: bindings.filter((b) => b.kind === "RoleBinding"),
    clusterRoleBindings: bindings.filter((b) => b.kind === "ClusterRoleBinding"),
  };
}

/** `alice` asks to `use` NAD tenant-b/sriov-net unless a case overrides a field. */
function ask(overrides: Partial<AccessAttributes> = {}): AccessAttributes {
  return {
    user: "alice",
    groups: [],
    verb: "use",
    apiGroup: "k8s.cni.cncf.io",
    resource: "network-attachment-definitions",
    name: "sriov-net",
    namespace: "tenant-b",
    ...overrides,
  };
}

/** One Role `r` in tenant-b with `rule`, bound to alice in tenant-b. */
function withRule(rule: PolicyRule): RbacObjects {
  return rbacOf(
    [role("tenant-b", "r", [rule])],
    [roleBinding("tenant-b", "rb", { kind: "Role", name: "r" }, [user("alice")])],
  );
}
const BY_RB = "RoleBinding tenant-b/rb → Role tenant-b/r";

describe("rule matching", () => {
  it.each<[string, PolicyRule, Partial<AccessAttributes>, string | undefined]>([
    ["exact rule", NAD_RULE, {}, BY_RB],
    ["verb mismatch", { ...NAD_RULE, verbs: ["get", "list"] }, {}, undefined],
    ["verb *", { ...NAD_RULE, verbs: ["*"] }, {}, BY_RB],
    ["apiGroup mismatch", { ...NAD_RULE, apiGroups: ["k8s.v1.cni.cncf.io"] }, {}, undefined],
    ["apiGroup core does not match a named group", { ...NAD_RULE, apiGroups: [""] }, {}, undefined],
    ["apiGroup *", { ...NAD_RULE, apiGroups: ["*"] }, {}, BY_RB],
    ["no apiGroups matches nothing", { ...NAD_RULE, apiGroups: null }, {}, undefined],
    ["resource mismatch", { ...NAD_RULE, resources: ["pods"] }, {}, undefined],
    ["resource *", { ...NAD_RULE, resources: ["*"] }, {}, BY_RB],
    ["resource * covers subresources", { ...NAD_RULE, resources: ["*"] }, { subresource: "status" }, BY_RB],
    ["resource/subresource", { ...NAD_RULE, resources: ["network-attachment-definitions/status"] }, { subresource: "status" }, BY_RB],
    ["resource does not cover its subresource", NAD_RULE, { subresource: "status" }, undefined],
    ["resource/subresource does not cover the resource", { ...NAD_RULE, resources: ["network-attachment-definitions/status"] }, {}, undefined],
    ["*/subresource", { ...NAD_RULE, resources: ["*/status"] }, { subresource: "status" }, BY_RB],
    ["*/subresource, other subresource", { ...NAD_RULE, resources: ["*/status"] }, { subresource: "scale" }, undefined],
    ["*/subresource does not cover the resource", { ...NAD_RULE, resources: ["*/status"] }, {}, undefined],
    ["resourceNames contains the name", { ...NAD_RULE, resourceNames: ["other", "sriov-net"] }, {}, BY_RB],
    ["resourceNames lacks the name", { ...NAD_RULE, resourceNames: ["other"] }, {}, undefined],
    ["empty resourceNames means every name", { ...NAD_RULE, resourceNames: [] }, {}, BY_RB],
    ["resourceNames and a request without name", { ...NAD_RULE, resourceNames: ["sriov-net"] }, { name: undefined }, undefined],
    ["* in resourceNames is a literal name, as in Kubernetes", { ...NAD_RULE, resourceNames: ["*"] }, {}, undefined],
    ["all wildcards", { apiGroups: ["*"], resources: ["*"], verbs: ["*"] }, {}, BY_RB],
    ["nonResourceURLs rule does not match resources", { verbs: ["*"], nonResourceURLs: ["*"] }, {}, undefined],
  ])("%s", (_title, rule, overrides, grantedBy) => {
    const result = checkAccess(withRule(rule), ask(overrides));
    expect(result).toEqual(grantedBy === undefined ? { allowed: false } : { allowed: true, grantedBy });
  });

  it("matches one of several rules", () => {
    const rbac = rbacOf(
      [role("tenant-b", "r", [{ apiGroups: [""], resources: ["pods"], verbs: ["get"] }, NAD_RULE])],
      [roleBinding("tenant-b", "rb", { kind: "Role", name: "r" }, [user("alice")])],
    );
    expect(checkAccess(rbac, ask())).toEqual({ allowed: true, grantedBy: BY_RB });
    expect(checkAccess(rbac, ask({ apiGroup: "", resource: "pods", verb: "get", name: "p" }))).toEqual({
      allowed: true,
      grantedBy: BY_RB,
    });
  });
});

describe("bindings and scope", () => {
  const nadUser = clusterRole("nad-user", [NAD_RULE]);
  const cases: [string, RbacObjects, Partial<AccessAttributes>, string | undefined][] = [
    [
      "RoleBinding → Role in its namespace",
      rbacOf([role("tenant-b", "r", [NAD_RULE])], [roleBinding("tenant-b", "rb", { kind: "Role", name: "r" }, [user("alice")])]),
      {},
      "RoleBinding tenant-b/rb → Role tenant-b/r",
    ],
    [
      "RoleBinding → Role of another namespace with that name does not resolve",
      rbacOf([role("tenant-a", "r", [NAD_RULE])], [roleBinding("tenant-b", "rb", { kind: "Role", name: "r" }, [user("alice")])]),
      {},
      undefined,
    ],
    [
      "RoleBinding → ClusterRole, scoped to the binding's namespace",
      rbacOf([nadUser], [roleBinding("tenant-b", "nad-users", { kind: "ClusterRole", name: "nad-user" }, [user("alice")])]),
      {},
      "RoleBinding tenant-b/nad-users → ClusterRole nad-user",
    ],
    [
      "RoleBinding in ns A does not grant in ns B",
      rbacOf([nadUser], [roleBinding("tenant-a", "nad-users", { kind: "ClusterRole", name: "nad-user" }, [user("alice")])]),
      {},
      undefined,
    ],
    [
      "RoleBinding does not grant a cluster-scoped request",
      rbacOf([nadUser], [roleBinding("tenant-b", "nad-users", { kind: "ClusterRole", name: "nad-user" }, [user("alice")])]),
      { namespace: undefined },
      undefined,
    ],
    [
      "ClusterRoleBinding grants in every namespace",
      rbacOf([nadUser], [clusterRoleBinding("nad-users-all", { kind: "ClusterRole", name: "nad-user" }, [user("alice")])]),
      { namespace: "anywhere" },
      "ClusterRoleBinding nad-users-all → ClusterRole nad-user",
    ],
    [
      "ClusterRoleBinding grants cluster-scoped requests",
      rbacOf([nadUser], [clusterRoleBinding("nad-users-all", { kind: "ClusterRole", name: "nad-user" }, [user("alice")])]),
      { namespace: undefined },
      "ClusterRoleBinding nad-users-all → ClusterRole nad-user",
    ],
    [
      "ClusterRoleBinding → Role grants nothing",
      rbacOf([role("tenant-b", "r", [NAD_RULE])], [clusterRoleBinding("crb", { kind: "Role", name: "r" }, [user("alice")])]),
      {},
      undefined,
    ],
    [
      "missing ClusterRole grants nothing",
      rbacOf([], [roleBinding("tenant-b", "rb", { kind: "ClusterRole", name: "gone" }, [user("alice")])]),
      {},
      undefined,
    ],
    [
      "missing Role grants nothing",
      rbacOf([], [roleBinding("tenant-b", "rb", { kind: "Role", name: "gone" }, [user("alice")])]),
      {},
      undefined,
    ],
    [
      "ClusterRoleBinding wins over RoleBinding (checked first, as the API server does)",
      rbacOf(
        [nadUser, role("tenant-b", "r", [NAD_RULE])],
        [
          roleBinding("tenant-b", "rb", { kind: "Role", name: "r" }, [user("alice")]),
          clusterRoleBinding("crb", { kind: "ClusterRole", name: "nad-user" }, [group("nad-admins")]),
        ],
      ),
      { groups: ["nad-admins"] },
      "ClusterRoleBinding crb → ClusterRole nad-user",
    ],
  ];
  it.each(cases)("%s", (_title, rbac, overrides, grantedBy) => {
    expect(checkAccess(rbac, ask(overrides))).toEqual(grantedBy === undefined ? { allowed: false } : { allowed: true, grantedBy });
  });
});

describe("subjects", () => {
  const nadUser = clusterRole("nad-user", [NAD_RULE]);
  const bound = (subjects: Subject[]): RbacObjects =>
    rbacOf([nadUser], [roleBinding("tenant-b", "rb", { kind: "ClusterRole", name: "nad-user" }, subjects)]);
  const boundCluster = (subjects: Subject[]): RbacObjects =>
    rbacOf([nadUser], [clusterRoleBinding("crb", { kind: "ClusterRole", name: "nad-user" }, subjects)]);
  const builder = serviceAccountUser("tenant-a", "builder");
  const builderB = serviceAccountUser("tenant-b", "builder");

  it.each<[string, RbacObjects, Partial<AccessAttributes>, boolean]>([
    ["User by name", bound([user("alice")]), {}, true],
    ["User, other name", bound([user("bob")]), {}, false],
    ["User name is not a group name", bound([user("devs")]), { groups: ["devs"] }, false],
    ["Group membership", bound([group("devs")]), { groups: ["devs"] }, true],
    ["Group, not a member", bound([group("devs")]), { groups: ["ops"] }, false],
    ["Group name is not a user name", bound([group("alice")]), {}, false],
    ["ServiceAccount with namespace", bound([sa("builder", "tenant-a")]), builder, true],
    ["ServiceAccount, other namespace", bound([sa("builder", "tenant-c")]), builder, false],
    ["ServiceAccount without namespace defaults to the RoleBinding's", bound([sa("builder")]), builderB, true],
    ["ServiceAccount without namespace is not another namespace's", bound([sa("builder")]), builder, false],
    ["ServiceAccount without namespace in a ClusterRoleBinding matches nobody", boundCluster([sa("builder")]), builder, false],
    ["ServiceAccount in a ClusterRoleBinding", boundCluster([sa("builder", "tenant-a")]), builder, true],
    ["group system:serviceaccounts", bound([group("system:serviceaccounts")]), builder, true],
    ["group system:serviceaccounts:<ns>", bound([group("system:serviceaccounts:tenant-a")]), builder, true],
    ["group system:serviceaccounts:<other ns>", bound([group("system:serviceaccounts:tenant-c")]), builder, false],
    ["group system:authenticated", bound([group("system:authenticated")]), builder, true],
    ["groups are used as given, nothing is added", bound([group("system:authenticated")]), {}, false],
    ["no subjects", bound([]), {}, false],
  ])("%s", (_title, rbac, overrides, allowed) => {
    expect(checkAccess(rbac, ask(overrides)).allowed).toBe(allowed);
  });

  it("serviceAccountUser gives the API server's identity of a service account", () => {
    expect(serviceAccountUser("tenant-a", "builder")).toEqual({
      user: "system:serviceaccount:tenant-a:builder",
      groups: ["system:serviceaccounts", "system:serviceaccounts:tenant-a", "system:authenticated"],
    });
  });
});

describe("index", () => {
  it("answers the same for the same RbacObjects on repeated calls (cached index)", () => {
    const rbac = withRule(NAD_RULE);
    expect(checkAccess(rbac, ask())).toEqual(checkAccess(rbac, ask()));
    expect(checkAccess(rbac, ask({ namespace: "tenant-c" }))).toEqual({ allowed: false });
  });

  it("agrees with a direct scan of every binding (property)", () => {
    const names = fc.constantFrom("a", "b", "c");
    const rule = fc.record({
      apiGroups: fc.subarray(["k8s.cni.cncf.io", "", "*"]),
      resources: fc.subarray(["network-attachment-definitions", "pods", "*", "*/status"]),
      resourceNames: fc.subarray(["sriov-net", "other"]),
      verbs: fc.subarray(["use", "get", "*"]),
    });
    const subject = fc.oneof(
      names.map((n): Subject => user(n)),
      names.map((n): Subject => group(n)),
      fc.tuple(names, fc.option(fc.constantFrom("ns1", "ns2"), { nil: undefined })).map(([n, ns]) => sa(n, ns)),
    );
    const binding = fc.record({
      cluster: fc.boolean(),
      ns: fc.constantFrom("ns1", "ns2"),
      refCluster: fc.boolean(),
      ref: names,
      subjects: fc.array(subject, { maxLength: 3 }),
    });
    const world = fc.record({
      clusterRoles: fc.array(fc.tuple(names, fc.array(rule, { maxLength: 2 })), { maxLength: 3 }),
      roles: fc.array(fc.tuple(fc.constantFrom("ns1", "ns2"), names, fc.array(rule, { maxLength: 2 })), { maxLength: 3 }),
      bindings: fc.array(binding, { maxLength: 6 }),
    });
    const request = fc.record({
      who: fc.oneof(names.map((n) => ({ user: n, groups: [] as string[] })), fc.constant(serviceAccountUser("ns1", "a"))),
      groups: fc.subarray(["a", "b"]),
      verb: fc.constantFrom("use", "get"),
      apiGroup: fc.constantFrom("k8s.cni.cncf.io", ""),
      resource: fc.constantFrom("network-attachment-definitions", "pods"),
      subresource: fc.option(fc.constant("status"), { nil: undefined }),
      name: fc.option(fc.constantFrom("sriov-net", "other"), { nil: undefined }),
      namespace: fc.option(fc.constantFrom("ns1", "ns2"), { nil: undefined }),
    });
    fc.assert(
      fc.property(world, request, (w, r) => {
        const rbac = rbacOf(
          [...w.clusterRoles.map(([n, rules]) => clusterRole(n, rules)), ...w.roles.map(([ns, n, rules]) => role(ns, n, rules))],
          w.bindings.map((b, i) => {
            const ref = { kind: b.refCluster ? ("ClusterRole" as const) : ("Role" as const), name: b.ref };
            return b.cluster ? clusterRoleBinding(`b${i}`, ref, b.subjects) : roleBinding(b.ns, `b${i}`, ref, b.subjects);
          }),
        );
        const attrs: AccessAttributes = { ...r, user: r.who.user, groups: [...r.who.groups, ...r.groups] };
        expect(checkAccess(rbac, attrs).allowed).toBe(referenceAllows(rbac, attrs));
      }),
    );
  });

  it("stays in microseconds per check with thousands of bindings", () => {
    const roles = [clusterRole("nad-user", [NAD_RULE])];
    const bindings: RoleBinding[] = [];
    for (let i = 0; i < 5000; i++) {
      bindings.push(
        roleBinding(`ns${i}`, "nad-users", { kind: "ClusterRole", name: "nad-user" }, [user(`u${i}`), group(`g${i}`), sa("default")]),
      );
    }
    const rbac = rbacOf(roles, bindings);
    checkAccess(rbac, ask());
    const n = 20_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const ns = `ns${i % 5000}`;
      checkAccess(rbac, ask({ ...serviceAccountUser(ns, "default"), namespace: ns }));
    }
    const microsPerCheck = Number(process.hrtime.bigint() - start) / 1000 / n;
    // Generous bound for slow CI machines; locally this is well under 1 µs.
    expect(microsPerCheck).toBeLessThan(50);
  });
});

/** A literal reading of the Kubernetes RBAC authorizer, without any index. */
function referenceAllows(rbac: RbacObjects, a: AccessAttributes): boolean {
  const has = (list: readonly string[] | null | undefined, v: string): boolean => (list ?? []).some((x) => x === "*" || x === v);
  const resourceOk = (rule: PolicyRule): boolean =>
    (rule.resources ?? []).some(
      (r) =>
        r === "*" ||
        r === (a.subresource ? `${a.resource}/${a.subresource}` : a.resource) ||
        (a.subresource !== undefined && r === `*/${a.subresource}`),
    );
  const ruleOk = (rule: PolicyRule): boolean =>
    has(rule.verbs, a.verb) &&
    has(rule.apiGroups, a.apiGroup) &&
    resourceOk(rule) &&
    ((rule.resourceNames ?? []).length === 0 || (rule.resourceNames ?? []).includes(a.name ?? ""));
  const subjectOk = (s: Subject, ns: string): boolean => {
    if (s.kind === "User") return s.name === a.user;
    if (s.kind === "Group") return a.groups.includes(s.name);
    const saNs = s.namespace || ns;
    return saNs !== "" && a.user === `system:serviceaccount:${saNs}:${s.name}`;
  };
  const rulesOf = (b: RoleBinding, ns: string): PolicyRule[] => {
    if (b.roleRef.kind === "ClusterRole") return rbac.clusterRoles.get(b.roleRef.name)?.rules ?? [];
    return ns === "" ? [] : (rbac.roles.get(`${ns}/${b.roleRef.name}`)?.rules ?? []);
  };
  const grants = (b: RoleBinding, ns: string): boolean =>
    (b.subjects ?? []).some((s) => subjectOk(s, ns)) && rulesOf(b, ns).some(ruleOk);
  if (rbac.clusterRoleBindings.some((b) => grants(b, ""))) return true;
  return rbac.roleBindings.some((b) => !!a.namespace && b.metadata.namespace === a.namespace && grants(b, a.namespace));
}
