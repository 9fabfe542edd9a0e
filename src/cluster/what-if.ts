// What-if changes for `nadguard matrix` and `verdict`: the cluster as it would be with
// the objects of some files added (replacing objects of the same kind, namespace and name) and
// some objects removed. The files are read as state files (state-file.ts: the same schemas), and
// the changed snapshot is built by the same SnapshotBuilder as the state directory, so defaults
// (namespace `default`, the namespace name label, namespaces that objects use) apply alike.
import { type Problem, type Result, fail, ok } from "../api/errors.js";
import { objectKey } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { SnapshotBuilder } from "./snapshot-builder.js";
import { type ParsedObject, finish, parseStateText } from "./state-file.js";

/** The kinds a what-if may add, replace or remove. */
export const CHANGE_KINDS = ["MultiNetworkPolicy", "NetworkAttachmentDefinition", "Pod", "Namespace"] as const;
export type ChangeKind = (typeof CHANGE_KINDS)[number];

/** Spellings of each kind in `--without` (kubectl's names and short names, any case). */
const KIND_NAMES: Record<string, ChangeKind> = {
  multinetworkpolicy: "MultiNetworkPolicy",
  multinetworkpolicies: "MultiNetworkPolicy",
  "multi-policy": "MultiNetworkPolicy",
  networkattachmentdefinition: "NetworkAttachmentDefinition",
  "network-attachment-definitions": "NetworkAttachmentDefinition",
  "net-attach-def": "NetworkAttachmentDefinition",
  nad: "NetworkAttachmentDefinition",
  pod: "Pod",
  pods: "Pod",
  po: "Pod",
  namespace: "Namespace",
  namespaces: "Namespace",
  ns: "Namespace",
};

/** One object a what-if removes: `key` is `ns/name`, or the name of a Namespace. */
export interface Removal {
  readonly kind: ChangeKind;
  readonly key: string;
}

export interface WhatIf {
  /** Objects of the `--with` files, each with the place that names it (`file#2 (Pod web)`). */
  readonly add: readonly ParsedObject[];
  readonly remove: readonly Removal[];
}

/** `KIND/NS/NAME` (`Namespace/NAME` for a namespace); problems name the flag. */
export function parseRemoval(text: string): Result<Removal> {
  const parts = text.trim().split("/");
  const kind = KIND_NAMES[parts[0]?.toLowerCase() ?? ""];
  const bad = (message: string): Result<Removal> => fail([{ code: "what-if.without", path: `--without ${text}`, message }]);
  if (!kind) return bad(`unknown kind "${parts[0]}"; expected one of ${CHANGE_KINDS.join(", ")} (or pod, nad, multi-policy, ns)`);
  const names = parts.slice(1);
  const want = kind === "Namespace" ? 1 : 2;
  if (names.length !== want || names.some((n) => n === "")) return bad(kind === "Namespace" ? "expected Namespace/NAME" : `expected ${kind}/NAMESPACE/NAME`);
  return ok({ kind, key: names.join("/") });
}

/** Reads the `--with` files' texts (`files`: name → text) as state files; any problem is bad input. */
export function parseWithFiles(files: ReadonlyMap<string, string>): Result<ParsedObject[]> {
  const objects: ParsedObject[] = [];
  const problems: Problem[] = [];
  const seen = new Map<string, string>();
  for (const [name, text] of files) {
    const content = finish(parseStateText(name, text));
    problems.push(...content.problems.map((p) => ({ ...p, path: `--with ${p.path}` })));
    if (content.objects.length === 0 && content.problems.length === 0) problems.push({ code: "what-if.empty", path: `--with ${name}`, message: "holds no object" });
    for (const object of content.objects) {
      if (!(CHANGE_KINDS as readonly string[]).includes(object.kind)) {
        problems.push({ code: "what-if.kind", path: `--with ${object.place}`, message: `a what-if changes ${CHANGE_KINDS.join(", ")} only, not ${object.kind}` });
        continue;
      }
      const id = `${object.kind}/${keyOf(object)}`;
      const earlier = seen.get(id);
      if (earlier !== undefined) problems.push({ code: "what-if.duplicate", path: `--with ${object.place}`, message: `${id} is given twice (also at ${earlier})` });
      seen.set(id, object.place);
      objects.push(object);
    }
  }
  return problems.length > 0 ? fail(problems) : ok(objects);
}

function keyOf(object: ParsedObject): string {
  const name = object.object.metadata.name ?? "";
  return object.kind === "Namespace" ? name : objectKey(object.object.metadata.namespace || "default", name);
}

function exists(snapshot: Snapshot, removal: Removal): boolean {
  switch (removal.kind) {
    case "Pod":
      return snapshot.pods.has(removal.key);
    case "NetworkAttachmentDefinition":
      return snapshot.nads.has(removal.key);
    case "MultiNetworkPolicy":
      return snapshot.policies.has(removal.key);
    case "Namespace":
      return snapshot.namespaces.has(removal.key);
  }
}

/**
 * The snapshot with the what-if applied: added objects replace those of the same kind, namespace
 * and name; removed ones go (a removed Namespace takes every object in it along, as deleting a
 * namespace does). Fails when a removal names an object that does not exist or that is also added.
 */
export function applyWhatIf(snapshot: Snapshot, change: WhatIf): Result<Snapshot> {
  const problems: Problem[] = [];
  const added = new Set(change.add.map((o) => `${o.kind}/${keyOf(o)}`));
  for (const removal of change.remove) {
    const id = `${removal.kind}/${removal.key}`;
    if (!exists(snapshot, removal)) problems.push({ code: "what-if.without", path: `--without ${id}`, message: `there is no ${removal.kind} ${removal.key} in the state` });
    else if (added.has(id)) problems.push({ code: "what-if.without", path: `--without ${id}`, message: "is also given with --with" });
  }
  if (problems.length > 0) return fail(problems);
  const removed = new Set(change.remove.map((r) => `${r.kind}/${r.key}`));
  const removedNamespaces = new Set(change.remove.filter((r) => r.kind === "Namespace").map((r) => r.key));
  const keep = (kind: string, key: string, namespace: string | undefined): boolean =>
    !added.has(`${kind}/${key}`) && !removed.has(`${kind}/${key}`) && !(namespace !== undefined && removedNamespaces.has(namespace));

  const builder = new SnapshotBuilder(snapshot.version + 1);
  for (const problem of snapshot.problems) builder.problem(problem);
  for (const o of change.add) builder.add(o.kind, o.object, o.place);
  const base = (kind: string, map: ReadonlyMap<string, { metadata: { namespace?: string | undefined; name?: string | undefined } }>, clusterScoped = false): void => {
    for (const [key, object] of map) {
      const namespace = clusterScoped ? (kind === "Namespace" ? key : undefined) : object.metadata.namespace;
      if (keep(kind, key, namespace)) builder.add(kind, object, `${kind} ${key}`);
    }
  };
  base("Namespace", snapshot.namespaces, true);
  base("NetworkAttachmentDefinition", snapshot.nads);
  base("Pod", snapshot.pods);
  base("MultiNetworkPolicy", snapshot.policies);
  base("ServiceAccount", snapshot.serviceAccounts);
  base("Role", snapshot.rbac.roles);
  base("ClusterRole", snapshot.rbac.clusterRoles, true);
  for (const binding of snapshot.rbac.roleBindings) {
    if (!removedNamespaces.has(binding.metadata.namespace ?? "default")) builder.add("RoleBinding", binding, `RoleBinding ${binding.metadata.name}`);
  }
  for (const binding of snapshot.rbac.clusterRoleBindings) builder.add("ClusterRoleBinding", binding, `ClusterRoleBinding ${binding.metadata.name}`);
  const built = builder.build();
  return ok(snapshot.stateFaults ? { ...built, stateFaults: snapshot.stateFaults } : built);
}
