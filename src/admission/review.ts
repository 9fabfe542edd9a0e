// One code path from an AdmissionRequest to a response, shared by the webhook's routes and by
// `nadguard admit`: dispatch on the request's kind, decide, encode.
import { randomUUID } from "node:crypto";
import type { AdmissionRequest, AdmissionResponse } from "../api/admission-review.js";
import { type AdmissionEnv, type Deadline, type Decision, type Endpoint, ALLOW, toAdmissionResponse } from "./decision.js";
import { admitNad } from "./nad.js";
import { admitPod } from "./pod.js";
import { admitPolicy } from "./policy.js";
import { admitWorkload, asWarnings, workloadKindOf } from "./workload.js";

/**
 * Decides one request. Workloads (pod templates) are answered on /validate only, with warnings;
 * kinds nadguard does not judge are allowed untouched. When `deadline` aborts, pending access
 * reviews (SubjectAccessReview requests) are aborted and the promise rejects.
 */
export async function decide(request: AdmissionRequest, env: AdmissionEnv, endpoint: Endpoint, deadline?: Deadline): Promise<Decision> {
  switch (request.kind.kind) {
    case "Pod":
      // The pod itself, and its status: kube-apiserver's status strategy keeps the metadata of the
      // update (Multus writes network-status that way), so pods/status can change the network
      // annotations too. Other subresources (binding, ephemeralcontainers, resize…) cannot.
      return !request.subResource || request.subResource === "status" ? admitPod(request, env, endpoint, deadline) : ALLOW;
    case "NetworkAttachmentDefinition":
      return request.subResource ? ALLOW : admitNad(request, env, endpoint);
    case "MultiNetworkPolicy":
      return request.subResource ? ALLOW : admitPolicy(request, env, endpoint);
    default: {
      const workload = endpoint === "validate" ? workloadKindOf(request.kind) : undefined;
      return workload ? asWarnings(await admitWorkload(request, env, deadline), workload) : ALLOW;
    }
  }
}

/**
 * What `nadguard admit` reports: /mutate's decision, and for a workload the decision its pods
 * will get at creation (a denial, where the webhook only warns).
 */
export async function verdict(request: AdmissionRequest, env: AdmissionEnv): Promise<Decision> {
  return workloadKindOf(request.kind) ? admitWorkload(request, env) : decide(request, env, "mutate");
}

/** Kinds whose objects `decide` or `verdict` look at; any other kind is allowed unread. */
export function isJudged(kind: { group: string; kind: string }): boolean {
  return Object.hasOwn(RESOURCES, kind.kind) || workloadKindOf(kind) !== undefined;
}

export async function review(request: AdmissionRequest, env: AdmissionEnv, endpoint: Endpoint, deadline?: Deadline): Promise<AdmissionResponse> {
  return toAdmissionResponse(request.uid, await decide(request, env, endpoint, deadline));
}

const RESOURCES: Record<string, { group: string; version: string; resource: string }> = {
  Pod: { group: "", version: "v1", resource: "pods" },
  NetworkAttachmentDefinition: { group: "k8s.cni.cncf.io", version: "v1", resource: "network-attachment-definitions" },
  MultiNetworkPolicy: { group: "k8s.cni.cncf.io", version: "v1beta1", resource: "multi-networkpolicies" },
};

/**
 * Wraps a bare manifest as the CREATE request kube-apiserver would send for it. The kinds above
 * keep their group whatever the manifest says; others take group and version from `apiVersion`
 * (`apps/v1` → apps, v1) and the lower-case plural of their kind as resource.
 */
export function requestForManifest(
  object: Record<string, unknown>,
  user: { username?: string; groups?: readonly string[] },
): AdmissionRequest {
  const kind = typeof object.kind === "string" ? object.kind : "Unknown";
  const resource = RESOURCES[kind] ?? { ...groupVersion(object.apiVersion), resource: `${kind.toLowerCase()}s` };
  const metadata = (object.metadata ?? {}) as { name?: string; namespace?: string };
  const gvk = { group: resource.group, version: resource.version, kind };
  const gvr = { group: resource.group, version: resource.version, resource: resource.resource };
  return {
    uid: randomUUID(),
    kind: gvk,
    resource: gvr,
    requestKind: gvk,
    requestResource: gvr,
    ...(metadata.name !== undefined && { name: metadata.name }),
    namespace: metadata.namespace ?? "default",
    operation: "CREATE",
    userInfo: {
      ...(user.username !== undefined && { username: user.username }),
      groups: [...(user.groups ?? []), "system:authenticated"],
    },
    object,
    dryRun: false,
  };
}

function groupVersion(apiVersion: unknown): { group: string; version: string } {
  if (typeof apiVersion !== "string" || apiVersion === "") return { group: "", version: "v1" };
  const slash = apiVersion.lastIndexOf("/");
  return slash === -1 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}
