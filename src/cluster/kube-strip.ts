// Keeps only what nadguard reads of each object an informer receives, before it is cached: the
// webhook's budget is 200 MB with 10,000 NADs and 10,000 pods watched (bench/kube.ts), and a pod as
// the API server sends it (managedFields, env, volumes, probes, conditions…) weighs 10–30 KB where
// nadguard needs a few hundred bytes. Each function is total: any JSON value in, an object out,
// never a throw (client-node swallows a throw inside a watch callback, losing the event).
// Validation is not done here; see kube-resources.ts.
import {
  ANNOTATION_DEFAULT_NETWORK,
  ANNOTATION_NETWORK_STATUS,
  ANNOTATION_NETWORKS,
  ANNOTATION_NODE_SELECTOR,
  ANNOTATION_POLICY_FOR,
  ANNOTATION_RESOURCE_NAME,
} from "../api/objects.js";

/** What an informer caches: a plain JSON object with at least metadata. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: Record<string, unknown> & { name?: string; namespace?: string; resourceVersion?: string };
  [key: string]: unknown;
}

/** The annotations nadguard reads; every other one is dropped. */
export const KEPT_ANNOTATIONS: ReadonlySet<string> = new Set([
  ANNOTATION_NETWORKS,
  ANNOTATION_NETWORK_STATUS,
  ANNOTATION_RESOURCE_NAME,
  ANNOTATION_NODE_SELECTOR,
  ANNOTATION_POLICY_FOR,
  ANNOTATION_DEFAULT_NETWORK,
]);
/** nadguard's own annotations (`nadguard.io/…`) are all kept. */
export const KEPT_ANNOTATION_PREFIX = "nadguard.io/";

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json => typeof value === "object" && value !== null && !Array.isArray(value);
const asObject = (value: unknown): Json => (isObject(value) ? value : {});
const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

/** Copies the defined keys of `from` named in `keys`. */
function pick(from: unknown, keys: readonly string[]): Json {
  const source = asObject(from);
  const out: Json = {};
  for (const key of keys) if (source[key] !== undefined && source[key] !== null) out[key] = source[key];
  return out;
}

function keptAnnotations(value: unknown): Record<string, unknown> | undefined {
  if (!isObject(value)) return undefined;
  let out: Json | undefined;
  for (const [key, text] of Object.entries(value)) {
    if (KEPT_ANNOTATIONS.has(key) || key.startsWith(KEPT_ANNOTATION_PREFIX)) (out ??= {})[key] = text;
  }
  return out;
}

/** name, namespace, uid, resourceVersion, labels and the kept annotations; nothing else. */
export function stripMetadata(metadata: unknown): KubeObject["metadata"] {
  const out = pick(metadata, ["name", "namespace", "uid", "resourceVersion", "labels"]);
  const annotations = keptAnnotations(asObject(metadata).annotations);
  if (annotations) out.annotations = annotations;
  return out;
}

function base(raw: unknown, apiVersion: string, kind: string): KubeObject {
  return { apiVersion, kind, metadata: stripMetadata(asObject(raw).metadata) };
}

/** Containers keep their name and ports (named ports of MultiNetworkPolicy rules). */
function stripContainer(container: unknown): Json {
  const out = pick(container, ["name"]);
  const ports = asArray(asObject(container).ports).map((port) => pick(port, ["name", "containerPort", "protocol"]));
  if (ports.length > 0) out.ports = ports;
  return out;
}

export function stripPod(raw: unknown): KubeObject {
  const spec = asObject(asObject(raw).spec);
  const status = asObject(asObject(raw).status);
  const podIPs = asArray(status.podIPs).map((entry) => pick(entry, ["ip"]));
  return {
    ...base(raw, "v1", "Pod"),
    spec: {
      ...pick(spec, ["nodeName", "hostNetwork", "serviceAccountName"]),
      containers: asArray(spec.containers).map(stripContainer),
    },
    status: { ...pick(status, ["phase"]), ...(podIPs.length > 0 && { podIPs }) },
  };
}

export function stripNamespace(raw: unknown): KubeObject {
  return base(raw, "v1", "Namespace");
}

export function stripNad(raw: unknown): KubeObject {
  return { ...base(raw, "k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"), spec: pick(asObject(raw).spec, ["config"]) };
}

/** A policy is read whole: every field of its spec is semantics. */
export function stripPolicy(raw: unknown): KubeObject {
  return { ...base(raw, "k8s.cni.cncf.io/v1beta1", "MultiNetworkPolicy"), spec: asObject(asObject(raw).spec) };
}

export function stripRole(kind: "Role" | "ClusterRole"): (raw: unknown) => KubeObject {
  return (raw) => ({ ...base(raw, "rbac.authorization.k8s.io/v1", kind), rules: asArray(asObject(raw).rules) });
}

export function stripBinding(kind: "RoleBinding" | "ClusterRoleBinding"): (raw: unknown) => KubeObject {
  return (raw) => {
    const source = asObject(raw);
    return { ...base(raw, "rbac.authorization.k8s.io/v1", kind), subjects: asArray(source.subjects), roleRef: asObject(source.roleRef) };
  };
}
