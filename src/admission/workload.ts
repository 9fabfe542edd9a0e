// Pod templates of workloads. A Deployment whose template names a missing or forbidden network is
// accepted by the API server; the failure shows only later, as its ReplicaSet's pods are refused.
// Here the template is judged as the pod its controller will create: a pod CREATE in the object's
// namespace, with the template's service account, requested by that controller, through the same
// pod decision as /mutate (admitPod).
//
// `nadguard admit` reports that verdict as it is (a denial exits 3). The webhook only warns
// (/validate answers allowed with warnings, which kubectl prints at `apply`): the pods are still
// checked when they are created, and a hard denial would break applying a directory in which the
// Deployment happens to come before the NAD it uses.
import type { AdmissionRequest } from "../api/admission-review.js";
import { objectKey } from "../api/objects.js";
import { ALLOW, type AdmissionEnv, type Deadline, type Decision, MAX_WARNING } from "./decision.js";
import { admitPod } from "./pod.js";

/** A kind whose objects carry a pod template, and who creates the pods from it. */
export interface WorkloadKind {
  readonly group: string;
  readonly kind: string;
  /** Where the pod template is in the object. */
  readonly template: readonly string[];
  /**
   * The kube-controller-manager controller that creates the pods (its service account with
   * --use-service-account-credentials, kubeadm's default). The person applying the workload does
   * not create its pods, so a grant of theirs does not count at pod creation; nor here.
   */
  readonly creator?: string;
}

const TEMPLATE = ["spec", "template"];

export const WORKLOAD_KINDS: readonly WorkloadKind[] = [
  { group: "apps", kind: "Deployment", template: TEMPLATE, creator: "replicaset-controller" },
  { group: "apps", kind: "ReplicaSet", template: TEMPLATE, creator: "replicaset-controller" },
  { group: "apps", kind: "StatefulSet", template: TEMPLATE, creator: "statefulset-controller" },
  { group: "apps", kind: "DaemonSet", template: TEMPLATE, creator: "daemon-set-controller" },
  { group: "batch", kind: "Job", template: TEMPLATE, creator: "job-controller" },
  // The CronJob controller creates Jobs; the Job controller creates their pods.
  { group: "batch", kind: "CronJob", template: ["spec", "jobTemplate", "spec", "template"], creator: "job-controller" },
  { group: "", kind: "ReplicationController", template: TEMPLATE, creator: "replication-controller" },
  // No controller creates pods from a PodTemplate; only its service account is checked.
  { group: "", kind: "PodTemplate", template: ["template"] },
];

export function workloadKindOf(kind: { group: string; kind: string }): WorkloadKind | undefined {
  return WORKLOAD_KINDS.find((w) => w.group === kind.group && w.kind === kind.kind);
}

/** `spec.template`, `spec.jobTemplate.spec.template`, … as messages name it. */
export const templatePath = (workload: WorkloadKind): string => workload.template.join(".");

const POD_KIND = { group: "", version: "v1", kind: "Pod" };
const POD_RESOURCE = { group: "", version: "v1", resource: "pods" };

/**
 * The verdict on the pods a workload will create: the pod decision on its template, its message
 * prefixed with the workload. The patch is left out: it is made for each pod at its creation.
 * Kinds without a template, DELETE and subresources are allowed.
 */
export async function admitWorkload(request: AdmissionRequest, env: AdmissionEnv, deadline?: Deadline): Promise<Decision> {
  const workload = workloadKindOf(request.kind);
  if (!workload || request.subResource || (request.operation !== "CREATE" && request.operation !== "UPDATE")) return ALLOW;
  const metadata = field(request.object, ["metadata"]);
  const namespace = request.namespace || stringField(metadata, "namespace") || "default";
  const name = request.name || stringField(metadata, "name") || `${stringField(metadata, "generateName") ?? ""}<generated>`;
  const decision = await admitPod(templateRequest(request, workload, namespace, name), env, "mutate", deadline);
  const who = `${workload.kind} ${objectKey(namespace, name)} (pod template ${templatePath(workload)})`;
  return {
    ...decision,
    patch: [],
    ...(decision.message !== undefined && { message: `${who}: ${decision.message}` }),
  };
}

/** The CREATE request the controller will send for one pod of the template. */
function templateRequest(request: AdmissionRequest, workload: WorkloadKind, namespace: string, name: string): AdmissionRequest {
  const template = field(request.object, workload.template);
  const { name: _name, ...metadata } = asRecord(field(template, ["metadata"]));
  const creator = workload.creator;
  return {
    uid: request.uid,
    kind: POD_KIND,
    resource: POD_RESOURCE,
    requestKind: POD_KIND,
    requestResource: POD_RESOURCE,
    namespace,
    operation: "CREATE",
    userInfo: creator
      ? {
          username: `system:serviceaccount:kube-system:${creator}`,
          groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
        }
      : { groups: [] },
    // Controllers name pods after the workload (`web-7d4b9c-x2x9z`, `web-0`).
    object: { apiVersion: "v1", kind: "Pod", metadata: { ...metadata, namespace, generateName: `${name}-` }, spec: field(template, ["spec"]) },
    dryRun: request.dryRun ?? false,
  };
}

/** At most this many warnings carry one denial: kube-apiserver keeps about 4 KiB of warnings per response. */
export const MAX_DENIAL_WARNINGS = 8;

/**
 * The webhook's answer for a workload: allowed, the pods' denial turned into warnings (each under
 * MAX_WARNING characters, cut at spaces; lines kept apart), the pods' own warnings prefixed with
 * the template.
 */
export function asWarnings(decision: Decision, workload: WorkloadKind): Decision {
  const path = templatePath(workload);
  if (decision.allowed) {
    return { ...ALLOW, attachments: decision.attachments, warnings: decision.warnings.map((warning) => `${path}: ${warning}`) };
  }
  const head = `pods of this ${workload.kind} will be denied at creation (${decision.reason ?? "denied"}):`;
  const lines = (decision.message ?? "").split("\n").flatMap((line) => wrap(line, MAX_WARNING));
  const kept = lines.length <= MAX_DENIAL_WARNINGS ? lines : [...lines.slice(0, MAX_DENIAL_WARNINGS - 1), `… ${lines.length - MAX_DENIAL_WARNINGS + 1} more lines: see the pods' denial, or nadguard admit`];
  return { ...ALLOW, warnings: [head, ...kept] };
}

/** Cuts a line into pieces of at most `width` characters, at spaces where it can. */
export function wrap(line: string, width: number): string[] {
  const pieces: string[] = [];
  let rest = line.trimEnd();
  while (rest.length > width) {
    const space = rest.lastIndexOf(" ", width);
    const cut = space > width / 2 ? space : width;
    pieces.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  if (rest.trim() !== "") pieces.push(rest);
  return pieces;
}

function field(object: unknown, path: readonly string[]): unknown {
  let value = object;
  for (const key of path) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function stringField(object: unknown, key: string): string | undefined {
  const value = field(object, [key]);
  return typeof value === "string" && value !== "" ? value : undefined;
}
