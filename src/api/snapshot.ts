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
  /**
   * State files (or directories) whose newest version is not what this snapshot holds, so that a
   * decision can say "its file is unreadable" instead of "it does not exist". Absent or empty when
   * everything was read (and always for Kubernetes informers).
   */
  readonly stateFaults?: readonly StateFault[];
}

/** Why a state file's newest version is not in use: the label of nadguard_state_file_errors_total. */
export type StateFaultKind = "unreadable" | "invalid-yaml" | "invalid-object" | "directory";

/** What one object of a state file is: enough to tell whether a lookup may concern that file. */
export interface HeldObject {
  readonly kind: string;
  /** The namespace of a namespaced object; undefined for Namespaces, ClusterRoles and ClusterRoleBindings. */
  readonly namespace?: string | undefined;
}

export interface StateFault {
  /** The file relative to the state directory; a directory ends with `/`, and `""` is the state directory itself. */
  readonly path: string;
  readonly kind: StateFaultKind;
  /** A few words: "permission denied", "not valid YAML: … at line 3, column 1", "is empty". */
  readonly reason: string;
  /** True when the last good version of the file (or the last good state of a directory) is in use instead. */
  readonly lastGoodInUse: boolean;
  /**
   * The objects of the version in use, which the unreadable one most likely holds too; undefined
   * when no good version was ever read (a directory, a file broken since it appeared): then any
   * object may be missing.
   */
  readonly holds?: readonly HeldObject[] | undefined;
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
