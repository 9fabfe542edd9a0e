// The Snapshot: an immutable, indexed view of the cluster objects nadguard reads. Built by
// src/cluster (from a state directory or informers), read by the pure decision functions.
import type { Problem } from "./errors.js";
import type {
  MultiNetworkPolicy,
  Namespace,
  NetworkAttachmentDefinition,
  Pod,
  Role,
  RoleBinding,
  ServiceAccount,
} from "./objects.js";

export interface RbacObjects {
  /** Roles by `namespace/name`. */
  readonly roles: ReadonlyMap<string, Role>;
  /** ClusterRoles by name. */
  readonly clusterRoles: ReadonlyMap<string, Role>;
  readonly roleBindings: readonly RoleBinding[];
  readonly clusterRoleBindings: readonly RoleBinding[];
}

export interface Snapshot {
  /** Increases with every new snapshot from the same source. */
  readonly version: number;
  /** Namespaces by name. */
  readonly namespaces: ReadonlyMap<string, Namespace>;
  /** NADs by `namespace/name`. */
  readonly nads: ReadonlyMap<string, NetworkAttachmentDefinition>;
  /** Sorted NAD names per namespace, for messages that list what exists. */
  readonly nadNamesByNamespace: ReadonlyMap<string, readonly string[]>;
  /** Pods by `namespace/name`. */
  readonly pods: ReadonlyMap<string, Pod>;
  /** MultiNetworkPolicies by `namespace/name`. */
  readonly policies: ReadonlyMap<string, MultiNetworkPolicy>;
  /** ServiceAccounts by `namespace/name`. */
  readonly serviceAccounts: ReadonlyMap<string, ServiceAccount>;
  readonly rbac: RbacObjects;
  /** What the source could not read (bad files, invalid objects), each with its place. */
  readonly problems: readonly Problem[];
}

const EMPTY_RBAC: RbacObjects = { roles: new Map(), clusterRoles: new Map(), roleBindings: [], clusterRoleBindings: [] };

/** An empty snapshot, for tests and for the moment before the first load. */
export function emptySnapshot(): Snapshot {
  return {
    version: 0,
    namespaces: new Map(),
    nads: new Map(),
    nadNamesByNamespace: new Map(),
    pods: new Map(),
    policies: new Map(),
    serviceAccounts: new Map(),
    rbac: EMPTY_RBAC,
    problems: [],
  };
}
