// Schemas of the Kubernetes objects nadguard reads. Each is strict about the fields nadguard uses
// and loose about everything else: unknown fields pass through untouched, because a pod with a
// field this code has never heard of must never fail a review.
import { z } from "zod";

export const ANNOTATION_NETWORKS = "k8s.v1.cni.cncf.io/networks";
export const ANNOTATION_NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status";
export const ANNOTATION_RESOURCE_NAME = "k8s.v1.cni.cncf.io/resourceName";
export const ANNOTATION_NODE_SELECTOR = "k8s.v1.cni.cncf.io/nodeSelector";
export const ANNOTATION_POLICY_FOR = "k8s.v1.cni.cncf.io/policy-for";
export const ANNOTATION_DEFAULT_NETWORK = "v1.multus-cni.io/default-network";
export const ANNOTATION_RESOURCE_CONTAINER = "nadguard.io/resource-container";
export const ANNOTATION_INJECTED_RESOURCES = "nadguard.io/injected-resources";

export const NAD_GROUP = "k8s.cni.cncf.io";
export const NAD_RESOURCE = "network-attachment-definitions";

const StringMap = z.record(z.string(), z.string());

export const ObjectMeta = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  labels: StringMap.nullish(),
  annotations: StringMap.nullish(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

export const Protocol = z.enum(["TCP", "UDP", "SCTP"]);
export type Protocol = z.infer<typeof Protocol>;

export const ContainerPort = z.looseObject({
  name: z.string().optional(),
  containerPort: z.number().int(),
  protocol: Protocol.optional(),
});
export type ContainerPort = z.infer<typeof ContainerPort>;

/** Quantities are strings on the wire; YAML written by hand may give numbers. */
const Quantity = z.union([z.string(), z.number()]);
export const ResourceRequirements = z.looseObject({
  requests: z.record(z.string(), Quantity).nullish(),
  limits: z.record(z.string(), Quantity).nullish(),
});

export const Container = z.looseObject({
  name: z.string(),
  ports: z.array(ContainerPort).nullish(),
  resources: ResourceRequirements.nullish(),
  volumeMounts: z
    .array(z.looseObject({ name: z.string(), mountPath: z.string(), readOnly: z.boolean().optional() }))
    .nullish(),
});
export type Container = z.infer<typeof Container>;

export const PodSpec = z.looseObject({
  containers: z.array(Container),
  initContainers: z.array(Container).nullish(),
  serviceAccountName: z.string().optional(),
  serviceAccount: z.string().optional(),
  nodeName: z.string().optional(),
  nodeSelector: StringMap.nullish(),
  hostNetwork: z.boolean().optional(),
  volumes: z.array(z.looseObject({ name: z.string() })).nullish(),
});

export const PodStatus = z.looseObject({
  phase: z.string().optional(),
  podIP: z.string().optional(),
  podIPs: z.array(z.looseObject({ ip: z.string() })).nullish(),
});

export const Pod = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: ObjectMeta,
  spec: PodSpec,
  status: PodStatus.nullish(),
});
export type Pod = z.infer<typeof Pod>;

export const NetworkAttachmentDefinition = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.literal("NetworkAttachmentDefinition").optional(),
  metadata: ObjectMeta,
  spec: z.looseObject({ config: z.string().optional() }).nullish(),
});
export type NetworkAttachmentDefinition = z.infer<typeof NetworkAttachmentDefinition>;

export const LabelSelectorOperator = z.enum(["In", "NotIn", "Exists", "DoesNotExist"]);
export const LabelSelectorRequirement = z.looseObject({
  key: z.string(),
  operator: LabelSelectorOperator,
  values: z.array(z.string()).nullish(),
});
export const LabelSelector = z.looseObject({
  matchLabels: StringMap.nullish(),
  matchExpressions: z.array(LabelSelectorRequirement).nullish(),
});
export type LabelSelector = z.infer<typeof LabelSelector>;

export const IPBlock = z.looseObject({ cidr: z.string(), except: z.array(z.string()).nullish() });
export const PolicyPeer = z.looseObject({
  podSelector: LabelSelector.nullish(),
  namespaceSelector: LabelSelector.nullish(),
  ipBlock: IPBlock.nullish(),
});
export type PolicyPeer = z.infer<typeof PolicyPeer>;

export const PolicyPort = z.looseObject({
  protocol: Protocol.nullish(),
  port: z.union([z.number().int(), z.string()]).nullish(),
  endPort: z.number().int().nullish(),
});
export type PolicyPort = z.infer<typeof PolicyPort>;

export const IngressRule = z.looseObject({
  from: z.array(PolicyPeer).nullish(),
  ports: z.array(PolicyPort).nullish(),
});
export const EgressRule = z.looseObject({
  to: z.array(PolicyPeer).nullish(),
  ports: z.array(PolicyPort).nullish(),
});
export type IngressRule = z.infer<typeof IngressRule>;
export type EgressRule = z.infer<typeof EgressRule>;

export const PolicyType = z.enum(["Ingress", "Egress"]);
export type PolicyType = z.infer<typeof PolicyType>;

export const MultiNetworkPolicy = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.literal("MultiNetworkPolicy").optional(),
  metadata: ObjectMeta,
  spec: z.looseObject({
    // The CRD accepts `podSelector: null`; it means the same as `{}` (every pod).
    podSelector: LabelSelector.nullish(),
    policyTypes: z.array(PolicyType).nullish(),
    ingress: z.array(IngressRule).nullish(),
    egress: z.array(EgressRule).nullish(),
  }),
});
export type MultiNetworkPolicy = z.infer<typeof MultiNetworkPolicy>;

export const Namespace = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.literal("Namespace").optional(),
  metadata: ObjectMeta,
});
export type Namespace = z.infer<typeof Namespace>;

export const ServiceAccount = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.literal("ServiceAccount").optional(),
  metadata: ObjectMeta,
});
export type ServiceAccount = z.infer<typeof ServiceAccount>;

export const PolicyRule = z.looseObject({
  apiGroups: z.array(z.string()).nullish(),
  resources: z.array(z.string()).nullish(),
  resourceNames: z.array(z.string()).nullish(),
  verbs: z.array(z.string()),
  nonResourceURLs: z.array(z.string()).nullish(),
});
export type PolicyRule = z.infer<typeof PolicyRule>;

export const Role = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.enum(["Role", "ClusterRole"]),
  metadata: ObjectMeta,
  rules: z.array(PolicyRule).nullish(),
});
export type Role = z.infer<typeof Role>;

export const Subject = z.looseObject({
  kind: z.enum(["User", "Group", "ServiceAccount"]),
  name: z.string(),
  namespace: z.string().optional(),
  apiGroup: z.string().optional(),
});
export type Subject = z.infer<typeof Subject>;

export const RoleBinding = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.enum(["RoleBinding", "ClusterRoleBinding"]),
  metadata: ObjectMeta,
  subjects: z.array(Subject).nullish(),
  roleRef: z.looseObject({ apiGroup: z.string().optional(), kind: z.enum(["Role", "ClusterRole"]), name: z.string() }),
});
export type RoleBinding = z.infer<typeof RoleBinding>;

/** `namespace/name`, the key every index of namespaced objects uses. */
export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function annotationsOf(meta: ObjectMeta): Record<string, string> {
  return meta.annotations ?? {};
}

export function labelsOf(meta: ObjectMeta): Record<string, string> {
  return meta.labels ?? {};
}

// ---- a fast read of a Pod, for the admission review's hot path ----

type Obj = Record<string, unknown>;
const isObject = (value: unknown): value is Obj => typeof value === "object" && value !== null && !Array.isArray(value);
const isString = (value: unknown): boolean => typeof value === "string";
const optional = (value: unknown, valid: (value: unknown) => boolean): boolean => value === undefined || valid(value);
const nullish = (value: unknown, valid: (value: unknown) => boolean): boolean => value === undefined || value === null || valid(value);
const allOf = (value: Obj, keys: readonly string[], valid: (value: unknown) => boolean): boolean => keys.every((key) => optional(value[key], valid));
const arrayOf = (valid: (value: unknown) => boolean) => (value: unknown): boolean => Array.isArray(value) && value.every(valid);
const recordOf = (valid: (value: unknown) => boolean) => (value: unknown): boolean => {
  if (!isObject(value)) return false;
  for (const key in value) if (!valid(value[key])) return false;
  return true;
};
const isStringMap = recordOf(isString);
const isQuantity = (value: unknown): boolean => typeof value === "string" || (typeof value === "number" && Number.isFinite(value));
const isQuantities = recordOf(isQuantity);
const PROTOCOLS: ReadonlySet<unknown> = new Set(Protocol.options);

const isPort = (value: unknown): boolean =>
  isObject(value) && optional(value.name, isString) && Number.isSafeInteger(value.containerPort) /* z.int(): a safe integer */ && optional(value.protocol, (p) => PROTOCOLS.has(p));
const isResources = (value: unknown): boolean => isObject(value) && nullish(value.requests, isQuantities) && nullish(value.limits, isQuantities);
const isVolumeMount = (value: unknown): boolean =>
  isObject(value) && isString(value.name) && isString(value.mountPath) && optional(value.readOnly, (r) => typeof r === "boolean");
const isContainer = (value: unknown): boolean =>
  isObject(value) && isString(value.name) && nullish(value.ports, arrayOf(isPort)) && nullish(value.resources, isResources) && nullish(value.volumeMounts, arrayOf(isVolumeMount));
const isNamed = (value: unknown): boolean => isObject(value) && isString(value.name);
const isMeta = (value: unknown): boolean =>
  isObject(value) && allOf(value, ["name", "generateName", "namespace", "uid", "resourceVersion"], isString) && nullish(value.labels, isStringMap) && nullish(value.annotations, isStringMap);
const isSpec = (value: unknown): boolean =>
  isObject(value) &&
  arrayOf(isContainer)(value.containers) &&
  nullish(value.initContainers, arrayOf(isContainer)) &&
  allOf(value, ["serviceAccountName", "serviceAccount", "nodeName"], isString) &&
  nullish(value.nodeSelector, isStringMap) &&
  optional(value.hostNetwork, (h) => typeof h === "boolean") &&
  nullish(value.volumes, arrayOf(isNamed));
const isStatus = (value: unknown): boolean =>
  isObject(value) && allOf(value, ["phase", "podIP"], isString) && nullish(value.podIPs, arrayOf((ip) => isObject(ip) && isString(ip.ip)));

/**
 * Pod.safeParse with a fast path: a pod that meets every rule of the schema, checked by hand, is
 * returned as it is (the schema is loose everywhere, so its parse would return a copy equal to it);
 * any other value goes through the schema, whose problems a denial quotes word for word. The pod
 * returned may then be the object given: callers do not change it (the mutations work on a draft).
 */
export function readPod(value: unknown): z.ZodSafeParseResult<Pod> {
  if (isObject(value) && allOf(value, ["apiVersion", "kind"], isString) && isMeta(value.metadata) && isSpec(value.spec) && nullish(value.status, isStatus)) {
    return { success: true, data: value as Pod };
  }
  return Pod.safeParse(value);
}
