// Builds a Snapshot from objects of any source (state directory, informers), applying what the
// API server would: namespaced objects without a namespace land in `default`, every namespace
// carries the `kubernetes.io/metadata.name` label, and a namespace referenced by an object but
// never declared still exists (with that label only).
import type { Problem } from "../api/errors.js";
import {
  type MultiNetworkPolicy,
  type Namespace,
  type NetworkAttachmentDefinition,
  type Pod,
  type Role,
  type RoleBinding,
  type ServiceAccount,
  objectKey,
} from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";

export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

type Named = { metadata: { name?: string | undefined; namespace?: string | undefined } };

export class SnapshotBuilder {
  readonly #version: number;
  readonly #namespaces = new Map<string, Namespace>();
  readonly #nads = new Map<string, NetworkAttachmentDefinition>();
  readonly #pods = new Map<string, Pod>();
  readonly #policies = new Map<string, MultiNetworkPolicy>();
  readonly #serviceAccounts = new Map<string, ServiceAccount>();
  readonly #roles = new Map<string, Role>();
  readonly #clusterRoles = new Map<string, Role>();
  readonly #roleBindings: RoleBinding[] = [];
  readonly #clusterRoleBindings: RoleBinding[] = [];
  readonly #problems: Problem[] = [];
  readonly #seen = new Map<string, string>();

  constructor(version: number) {
    this.#version = version;
  }

  problem(problem: Problem): void {
    this.#problems.push(problem);
  }

  /** Adds a parsed object of `kind`; `place` names where it came from for duplicate notes. */
  add(kind: string, object: Named, place: string): void {
    const name = object.metadata.name;
    if (!name) {
      this.problem({ code: "state.no-name", path: place, message: "has no metadata.name; skipped" });
      return;
    }
    if (kind === "Namespace" || kind === "ClusterRole" || kind === "ClusterRoleBinding") {
      this.#addClusterScoped(kind, object, name, place);
      return;
    }
    const namespace = object.metadata.namespace || "default";
    // Objects that carry their namespace are shared with the previous snapshot, not copied.
    const withNamespace = object.metadata.namespace === namespace ? object : { ...object, metadata: { ...object.metadata, namespace } };
    const key = objectKey(namespace, name);
    if (!this.#firstSighting(`${kind}/${key}`, place)) return;
    switch (kind) {
      case "Pod":
        this.#pods.set(key, withNamespace as Pod);
        break;
      case "NetworkAttachmentDefinition":
        this.#nads.set(key, withNamespace as NetworkAttachmentDefinition);
        break;
      case "MultiNetworkPolicy":
        this.#policies.set(key, withNamespace as MultiNetworkPolicy);
        break;
      case "ServiceAccount":
        this.#serviceAccounts.set(key, withNamespace as ServiceAccount);
        break;
      case "Role":
        this.#roles.set(key, withNamespace as Role);
        break;
      case "RoleBinding":
        this.#roleBindings.push(withNamespace as RoleBinding);
        break;
      default:
        this.problem({ code: "state.kind-ignored", path: place, message: `kind ${kind} is not read by nadguard; ignored` });
    }
  }

  #addClusterScoped(kind: string, object: Named, name: string, place: string): void {
    if (!this.#firstSighting(`${kind}/${name}`, place)) return;
    if (kind === "Namespace") this.#namespaces.set(name, object as Namespace);
    else if (kind === "ClusterRole") this.#clusterRoles.set(name, object as Role);
    else this.#clusterRoleBindings.push(object as RoleBinding);
  }

  /** The first definition of an object wins; a later one is reported with both places. */
  #firstSighting(id: string, place: string): boolean {
    const earlier = this.#seen.get(id);
    if (earlier !== undefined) {
      this.problem({ code: "state.duplicate", path: place, message: `duplicates ${id} already defined at ${earlier}; ignored` });
      return false;
    }
    this.#seen.set(id, place);
    return true;
  }

  build(): Snapshot {
    const namespaces = this.#completeNamespaces();
    const nadNamesByNamespace = new Map<string, string[]>();
    for (const nad of this.#nads.values()) {
      const ns = nad.metadata.namespace!;
      let names = nadNamesByNamespace.get(ns);
      if (!names) nadNamesByNamespace.set(ns, (names = []));
      names.push(nad.metadata.name!);
    }
    for (const names of nadNamesByNamespace.values()) names.sort();
    return {
      version: this.#version,
      namespaces,
      nads: this.#nads,
      nadNamesByNamespace,
      pods: this.#pods,
      policies: this.#policies,
      serviceAccounts: this.#serviceAccounts,
      rbac: {
        roles: this.#roles,
        clusterRoles: this.#clusterRoles,
        roleBindings: this.#roleBindings,
        clusterRoleBindings: this.#clusterRoleBindings,
      },
      problems: this.#problems,
    };
  }

  #completeNamespaces(): Map<string, Namespace> {
    const namespaces = new Map<string, Namespace>();
    const ensure = (name: string, declared?: Namespace): void => {
      const base: Namespace = declared ?? { apiVersion: "v1", kind: "Namespace", metadata: { name } };
      const labels = { ...(base.metadata.labels ?? {}), [NAMESPACE_NAME_LABEL]: name };
      namespaces.set(name, { ...base, metadata: { ...base.metadata, labels } });
    };
    for (const [name, namespace] of this.#namespaces) ensure(name, namespace);
    const referenced = [this.#pods, this.#nads, this.#policies, this.#serviceAccounts, this.#roles];
    for (const map of referenced) {
      for (const object of map.values()) {
        const ns = object.metadata.namespace!;
        if (!namespaces.has(ns)) ensure(ns);
      }
    }
    return namespaces;
  }
}
