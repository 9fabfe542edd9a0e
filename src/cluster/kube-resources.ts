// The resources nadguard watches in Kubernetes mode: where each is listed and watched, how it is
// stripped, and the schema it is validated with once, when it arrives. An object that fails
// its schema stays cached (so that deletes and relists keep the cache exact) but is left out of
// snapshots and reported as a problem, as the state directory does with a bad file.
import type { z } from "zod";
import { type Problem, problemsFromZod } from "../api/errors.js";
import { MultiNetworkPolicy, Namespace, NetworkAttachmentDefinition, Pod, Role, RoleBinding, objectKey } from "../api/objects.js";
import {
  type KubeObject,
  stripBinding,
  stripNad,
  stripNamespace,
  stripPod,
  stripPolicy,
  stripRole,
} from "./kube-strip.js";

export type WatchedKind =
  | "Namespace"
  | "NetworkAttachmentDefinition"
  | "MultiNetworkPolicy"
  | "Pod"
  | "Role"
  | "ClusterRole"
  | "RoleBinding"
  | "ClusterRoleBinding";

export interface KubeResource {
  readonly kind: WatchedKind;
  /** The cluster-wide collection path, listed and watched. */
  readonly path: string;
  /** `plural.group`, for messages and metric labels. */
  readonly name: string;
  readonly strip: (raw: unknown) => KubeObject;
  readonly schema: z.ZodType;
}

const RBAC = "/apis/rbac.authorization.k8s.io/v1";

export const RESOURCES: Readonly<Record<WatchedKind, KubeResource>> = {
  Namespace: { kind: "Namespace", path: "/api/v1/namespaces", name: "namespaces", strip: stripNamespace, schema: Namespace },
  NetworkAttachmentDefinition: {
    kind: "NetworkAttachmentDefinition",
    path: "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions",
    name: "network-attachment-definitions.k8s.cni.cncf.io",
    strip: stripNad,
    schema: NetworkAttachmentDefinition,
  },
  MultiNetworkPolicy: {
    kind: "MultiNetworkPolicy",
    path: "/apis/k8s.cni.cncf.io/v1beta1/multi-networkpolicies",
    name: "multi-networkpolicies.k8s.cni.cncf.io",
    strip: stripPolicy,
    schema: MultiNetworkPolicy,
  },
  Pod: { kind: "Pod", path: "/api/v1/pods", name: "pods", strip: stripPod, schema: Pod },
  Role: { kind: "Role", path: `${RBAC}/roles`, name: "roles.rbac.authorization.k8s.io", strip: stripRole("Role"), schema: Role },
  ClusterRole: {
    kind: "ClusterRole",
    path: `${RBAC}/clusterroles`,
    name: "clusterroles.rbac.authorization.k8s.io",
    strip: stripRole("ClusterRole"),
    schema: Role,
  },
  RoleBinding: {
    kind: "RoleBinding",
    path: `${RBAC}/rolebindings`,
    name: "rolebindings.rbac.authorization.k8s.io",
    strip: stripBinding("RoleBinding"),
    schema: RoleBinding,
  },
  ClusterRoleBinding: {
    kind: "ClusterRoleBinding",
    path: `${RBAC}/clusterrolebindings`,
    name: "clusterrolebindings.rbac.authorization.k8s.io",
    strip: stripBinding("ClusterRoleBinding"),
    schema: RoleBinding,
  },
};

/** Problems of cached objects that failed their schema, by object identity. */
const invalid = new WeakMap<object, readonly Problem[]>();

/** Where an object is named in problems: `Pod tenant-a/app`, `Namespace tenant-a`. */
export function placeOf(kind: string, object: { metadata: { name?: string; namespace?: string } }): string {
  const { name = "<no name>", namespace } = object.metadata;
  return `${kind} ${namespace ? objectKey(namespace, name) : name}`;
}

/**
 * Strips and validates an object as it arrives. Returns the parsed object, or, when it fails its
 * schema, the stripped one with its problems recorded (see problemsOf). Never throws.
 */
export function ingest(resource: KubeResource, raw: unknown): KubeObject {
  const stripped = resource.strip(raw);
  const parsed = resource.schema.safeParse(stripped);
  if (parsed.success) return parsed.data as KubeObject;
  const place = `cluster: ${placeOf(resource.kind, stripped)}`;
  const problems = problemsFromZod(parsed.error, "", "state.invalid").map((p) => ({ ...p, path: `${place}: ${p.path || "(object)"}` }));
  invalid.set(stripped, problems);
  return stripped;
}

/** The schema problems of an object returned by ingest, or undefined when it is valid. */
export function problemsOf(object: object): readonly Problem[] | undefined {
  return invalid.get(object);
}
