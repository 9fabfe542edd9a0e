// Validation of built-in Kubernetes objects against the Kubernetes OpenAPI schemas, as
// `kubectl apply` (strict field validation, its default) would do it:
// - kubernetes-models' `.validate()`: types, required fields, enums and formats, from the OpenAPI
//   schemas; it lets unknown fields through (its schemas allow additional properties), so
// - unknownFields(): every field must exist in the OpenAPI model, walked with the attribute
//   tables that @kubernetes/client-node generates from the same spec (its models module only:
//   plain data, no client, no network).
// cert-manager's Certificate and Issuer (examples/overlays/cert-manager) are validated against
// cert-manager's own schemas (@kubernetes-models/cert-manager, same validator): types, required
// fields, enums; client-node has no field table for them, so their unknown fields go unchecked
// here (kustomize.test.ts asserts the fields that matter by value).
import * as models from "@kubernetes/client-node/dist/gen/models/all.js";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Pod } from "kubernetes-models/v1/Pod";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { CronJob } from "kubernetes-models/batch/v1/CronJob";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { PriorityClass } from "kubernetes-models/scheduling.k8s.io/v1/PriorityClass";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition";
import { MutatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration";
import { ValidatingWebhookConfiguration } from "kubernetes-models/admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration";
import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import { Issuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer";

interface Validating {
  validate(): void;
}
type ModelClass = new (data: never) => Validating;

/** `apiVersion/kind` → the kubernetes-models class and the client-node OpenAPI model name (none for cert-manager's kinds). */
const KINDS: Record<string, { model: ModelClass; openapi?: string }> = {
  "v1/Namespace": { model: Namespace as unknown as ModelClass, openapi: "V1Namespace" },
  "v1/Pod": { model: Pod as unknown as ModelClass, openapi: "V1Pod" },
  "v1/ServiceAccount": { model: ServiceAccount as unknown as ModelClass, openapi: "V1ServiceAccount" },
  "v1/Service": { model: Service as unknown as ModelClass, openapi: "V1Service" },
  "v1/ConfigMap": { model: ConfigMap as unknown as ModelClass, openapi: "V1ConfigMap" },
  "v1/Secret": { model: Secret as unknown as ModelClass, openapi: "V1Secret" },
  "apps/v1/Deployment": { model: Deployment as unknown as ModelClass, openapi: "V1Deployment" },
  "apps/v1/DaemonSet": { model: DaemonSet as unknown as ModelClass, openapi: "V1DaemonSet" },
  "batch/v1/CronJob": { model: CronJob as unknown as ModelClass, openapi: "V1CronJob" },
  "policy/v1/PodDisruptionBudget": { model: PodDisruptionBudget as unknown as ModelClass, openapi: "V1PodDisruptionBudget" },
  "scheduling.k8s.io/v1/PriorityClass": { model: PriorityClass as unknown as ModelClass, openapi: "V1PriorityClass" },
  "rbac.authorization.k8s.io/v1/ClusterRole": { model: ClusterRole as unknown as ModelClass, openapi: "V1ClusterRole" },
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": { model: ClusterRoleBinding as unknown as ModelClass, openapi: "V1ClusterRoleBinding" },
  "rbac.authorization.k8s.io/v1/Role": { model: Role as unknown as ModelClass, openapi: "V1Role" },
  "rbac.authorization.k8s.io/v1/RoleBinding": { model: RoleBinding as unknown as ModelClass, openapi: "V1RoleBinding" },
  "apiextensions.k8s.io/v1/CustomResourceDefinition": { model: CustomResourceDefinition as unknown as ModelClass, openapi: "V1CustomResourceDefinition" },
  "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration": {
    model: MutatingWebhookConfiguration as unknown as ModelClass,
    openapi: "V1MutatingWebhookConfiguration",
  },
  "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration": {
    model: ValidatingWebhookConfiguration as unknown as ModelClass,
    openapi: "V1ValidatingWebhookConfiguration",
  },
  "cert-manager.io/v1/Certificate": { model: Certificate as unknown as ModelClass },
  "cert-manager.io/v1/Issuer": { model: Issuer as unknown as ModelClass },
};

export const KNOWN_KINDS = Object.keys(KINDS);

/**
 * Problems of one built-in object against the OpenAPI schemas: kubernetes-models' validation
 * errors and the fields the API does not define. Empty when `kubectl apply` would accept it.
 */
export function openApiProblems(object: Record<string, unknown>): string[] {
  const key = `${String(object.apiVersion)}/${String(object.kind)}`;
  const entry = KINDS[key];
  if (!entry) return [`${key}: no OpenAPI model known to this test`];
  const problems: string[] = [];
  try {
    new entry.model(object as never).validate();
  } catch (error) {
    const errors = (error as { errors?: Array<{ instancePath: string; message?: string }> }).errors;
    problems.push(...(errors?.map((e) => `${e.instancePath || "/"}: ${e.message ?? "invalid"}`) ?? [(error as Error).message]));
  }
  if (entry.openapi) problems.push(...unknownFields(object, entry.openapi, ""));
  return problems;
}

interface Attribute {
  baseName: string;
  type: string;
}
type Model = { getAttributeTypeMap(): Attribute[] };

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

/** Fields of `value` that the OpenAPI model `type` (a client-node type string) does not define. */
export function unknownFields(value: unknown, type: string, path: string): string[] {
  if (value === null || value === undefined) return [];
  const array = ARRAY.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((item, i) => unknownFields(item, array[1]!, `${path}[${i}]`)) : [];
  const map = MAP.exec(type);
  if (map) {
    return typeof value === "object" ? Object.entries(value).flatMap(([k, v]) => unknownFields(v, map[1]!, `${path}.${k}`)) : [];
  }
  const model = (models as unknown as Record<string, Model | undefined>)[type];
  if (!model || typeof model.getAttributeTypeMap !== "function" || typeof value !== "object") return [];
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  const problems: string[] = [];
  for (const [field, child] of Object.entries(value)) {
    const childType = attributes.get(field);
    if (childType === undefined) {
      problems.push(`${path}.${field}: unknown field (${type} has no such field)`);
      continue;
    }
    // The schema of a CRD nests itself where the generated table can only say `any`.
    const nested = type === "V1JSONSchemaProps" && (field === "items" || field === "additionalProperties") && typeof child === "object" ? "V1JSONSchemaProps" : childType;
    problems.push(...unknownFields(child, nested, `${path}.${field}`));
  }
  return problems;
}
