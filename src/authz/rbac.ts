// Offline Kubernetes RBAC: answers "may this user do this?" from Role, ClusterRole, RoleBinding and
// ClusterRoleBinding objects alone, with the semantics of the kube-apiserver RBAC authorizer
// (plugin/pkg/auth/authorizer/rbac and pkg/apis/rbac/v1/evaluation_helpers.go). It runs on the
// admission hot path, so the objects are indexed once per RbacObjects (by subject, then by
// namespace) and a check only visits the bindings that name one of the caller's identities.
import type { PolicyRule, Role, RoleBinding, Subject } from "../api/objects.js";
import { objectKey } from "../api/objects.js";
import type { RbacObjects } from "../api/snapshot.js";

/** What is asked: the resource-request attributes of a SubjectAccessReview. */
export interface AccessAttributes {
  readonly user: string;
  /** The caller's groups, used as given: nothing is added (see serviceAccountUser). */
  readonly groups: readonly string[];
  readonly verb: string;
  /** `""` is the core group. */
  readonly apiGroup: string;
  /** Plural resource name, e.g. `network-attachment-definitions`. */
  readonly resource: string;
  readonly subresource?: string;
  /** Absent for requests on collections; then rules with resourceNames do not match. */
  readonly name?: string;
  /** Absent or `""` for cluster-scoped requests; then only ClusterRoleBindings apply. */
  readonly namespace?: string;
}

export interface AccessResult {
  readonly allowed: boolean;
  /** The binding and role that allowed it, e.g. `RoleBinding tenant-b/nad-users → ClusterRole nad-user`. */
  readonly grantedBy?: string;
}

/** The user name Kubernetes gives a service account. */
export function serviceAccountUsername(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/**
 * The identity the API server authenticates a service account token as: its user name and the
 * groups `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`.
 */
export function serviceAccountUser(namespace: string, name: string): { user: string; groups: string[] } {
  return {
    user: serviceAccountUsername(namespace, name),
    groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"],
  };
}

interface CompiledRule {
  /** undefined means `*`. */
  readonly verbs: ReadonlySet<string> | undefined;
  readonly apiGroups: ReadonlySet<string> | undefined;
  readonly anyResource: boolean;
  /** Exact `resource` or `resource/subresource` entries. */
  readonly resources: ReadonlySet<string>;
  /** Subresources from `*\/subresource` entries. */
  readonly anyResourceSubresources: ReadonlySet<string>;
  /** undefined means every name; `*` is not a wildcard here (as in Kubernetes). */
  readonly resourceNames: ReadonlySet<string> | undefined;
}

interface Grant {
  readonly grantedBy: string;
  readonly rules: readonly CompiledRule[];
}

/** The grants one subject (a user or a group) holds: cluster-wide, and per namespace. */
interface SubjectGrants {
  readonly cluster: Grant[];
  readonly byNamespace: Map<string, Grant[]>;
}

interface RbacIndex {
  readonly users: Map<string, SubjectGrants>;
  readonly groups: Map<string, SubjectGrants>;
}

const WILDCARD = "*";

function setOrWildcard(values: readonly string[] | null | undefined): ReadonlySet<string> | undefined {
  const list = values ?? [];
  return list.includes(WILDCARD) ? undefined : new Set(list);
}

function compileRule(rule: PolicyRule): CompiledRule {
  const resources = rule.resources ?? [];
  const names = rule.resourceNames ?? [];
  return {
    verbs: setOrWildcard(rule.verbs),
    apiGroups: setOrWildcard(rule.apiGroups),
    anyResource: resources.includes(WILDCARD),
    resources: new Set(resources),
    anyResourceSubresources: new Set(resources.filter((r) => r.startsWith("*/")).map((r) => r.slice(2))),
    resourceNames: names.length === 0 ? undefined : new Set(names),
  };
}

function compileRole(role: Role): CompiledRule[] {
  return (role.rules ?? []).map(compileRule);
}

function resourceMatches(rule: CompiledRule, attrs: AccessAttributes): boolean {
  if (rule.anyResource) return true;
  const sub = attrs.subresource ?? "";
  if (sub === "") return rule.resources.has(attrs.resource);
  return rule.resources.has(`${attrs.resource}/${sub}`) || rule.anyResourceSubresources.has(sub);
}

function ruleAllows(rule: CompiledRule, attrs: AccessAttributes): boolean {
  return (
    (rule.verbs === undefined || rule.verbs.has(attrs.verb)) &&
    (rule.apiGroups === undefined || rule.apiGroups.has(attrs.apiGroup)) &&
    resourceMatches(rule, attrs) &&
    (rule.resourceNames === undefined || rule.resourceNames.has(attrs.name ?? ""))
  );
}

/** The target of a binding's roleRef, or undefined when it does not exist (then it grants nothing). */
function resolveRole(
  rbac: RbacObjects,
  binding: RoleBinding,
  bindingNamespace: string | undefined,
): { role: Role; label: string } | undefined {
  const ref = binding.roleRef;
  if (ref.kind === "ClusterRole") {
    const role = rbac.clusterRoles.get(ref.name);
    return role && { role, label: `ClusterRole ${ref.name}` };
  }
  // A ClusterRoleBinding cannot reference a Role: the API server finds none (no namespace).
  if (bindingNamespace === undefined) return undefined;
  const key = objectKey(bindingNamespace, ref.name);
  const role = rbac.roles.get(key);
  return role && { role, label: `Role ${key}` };
}

function bindingLabel(binding: RoleBinding, bindingNamespace: string | undefined): string {
  const name = binding.metadata.name ?? "";
  return bindingNamespace === undefined
    ? `ClusterRoleBinding ${name}`
    : `RoleBinding ${objectKey(bindingNamespace, name)}`;
}

function grantsOf(map: Map<string, SubjectGrants>, name: string): SubjectGrants {
  let grants = map.get(name);
  if (grants === undefined) {
    grants = { cluster: [], byNamespace: new Map() };
    map.set(name, grants);
  }
  return grants;
}

function addGrant(index: RbacIndex, subject: Subject, bindingNamespace: string | undefined, grant: Grant): void {
  const key = subjectKey(subject, bindingNamespace);
  if (key === undefined) return;
  const grants = grantsOf(key.group ? index.groups : index.users, key.name);
  if (bindingNamespace === undefined) {
    grants.cluster.push(grant);
    return;
  }
  const list = grants.byNamespace.get(bindingNamespace);
  if (list === undefined) grants.byNamespace.set(bindingNamespace, [grant]);
  else list.push(grant);
}

/**
 * The index key of a subject: a user name or a group name. A ServiceAccount subject is the user
 * `system:serviceaccount:<ns>:<name>`, its namespace defaulting to the RoleBinding's; in a
 * ClusterRoleBinding one without namespace matches nobody.
 */
function subjectKey(subject: Subject, bindingNamespace: string | undefined): { group: boolean; name: string } | undefined {
  switch (subject.kind) {
    case "User":
      return { group: false, name: subject.name };
    case "Group":
      return { group: true, name: subject.name };
    case "ServiceAccount": {
      const namespace = subject.namespace || bindingNamespace;
      return namespace ? { group: false, name: serviceAccountUsername(namespace, subject.name) } : undefined;
    }
    default:
      return undefined;
  }
}

function buildIndex(rbac: RbacObjects): RbacIndex {
  const index: RbacIndex = { users: new Map(), groups: new Map() };
  // Compile each role once, however many bindings reference it.
  const compiled = new Map<Role, CompiledRule[]>();
  const add = (binding: RoleBinding, bindingNamespace: string | undefined): void => {
    const target = resolveRole(rbac, binding, bindingNamespace);
    if (target === undefined) return;
    let rules = compiled.get(target.role);
    if (rules === undefined) compiled.set(target.role, (rules = compileRole(target.role)));
    const grant: Grant = { grantedBy: `${bindingLabel(binding, bindingNamespace)} → ${target.label}`, rules };
    for (const subject of binding.subjects ?? []) addGrant(index, subject, bindingNamespace, grant);
  };
  for (const binding of rbac.clusterRoleBindings) add(binding, undefined);
  for (const binding of rbac.roleBindings) {
    // A RoleBinding without a namespace is invalid and grants nothing.
    const namespace = binding.metadata.namespace;
    if (namespace) add(binding, namespace);
  }
  return index;
}

const indexes = new WeakMap<RbacObjects, RbacIndex>();

function indexOf(rbac: RbacObjects): RbacIndex {
  let index = indexes.get(rbac);
  if (index === undefined) {
    index = buildIndex(rbac);
    indexes.set(rbac, index);
  }
  return index;
}

function firstAllowing(grants: readonly Grant[] | undefined, attrs: AccessAttributes): string | undefined {
  for (const grant of grants ?? []) {
    for (const rule of grant.rules) if (ruleAllows(rule, attrs)) return grant.grantedBy;
  }
  return undefined;
}

function subjectsOf(index: RbacIndex, attrs: AccessAttributes): SubjectGrants[] {
  const found: SubjectGrants[] = [];
  const user = index.users.get(attrs.user);
  if (user !== undefined) found.push(user);
  for (const group of attrs.groups) {
    const grants = index.groups.get(group);
    if (grants !== undefined) found.push(grants);
  }
  return found;
}

/**
 * Whether RBAC allows the request. ClusterRoleBindings are consulted first (as the API server
 * does), then the RoleBindings of `attrs.namespace`. The index is built on the first call for a
 * given RbacObjects and reused while that object lives; RbacObjects must not be mutated.
 */
export function checkAccess(rbac: RbacObjects, attrs: AccessAttributes): AccessResult {
  const subjects = subjectsOf(indexOf(rbac), attrs);
  for (const subject of subjects) {
    const grantedBy = firstAllowing(subject.cluster, attrs);
    if (grantedBy !== undefined) return { allowed: true, grantedBy };
  }
  const namespace = attrs.namespace ?? "";
  if (namespace === "") return { allowed: false };
  for (const subject of subjects) {
    const grantedBy = firstAllowing(subject.byNamespace.get(namespace), attrs);
    if (grantedBy !== undefined) return { allowed: true, grantedBy };
  }
  return { allowed: false };
}
