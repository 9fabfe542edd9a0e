// What `nadguard node --kube` writes to the API server about a pod it attached, as Multus does:
// - its `k8s.v1.cni.cncf.io/network-status` annotation, through the `pods/status` subresource
//   (the node's service account needs `pods/status` update, not `pods` update: the pod status
//   strategy takes annotations but keeps the spec), read-modify-write with the pod's
//   resourceVersion and retried on 409 Conflict (client-go retry.RetryOnConflict, as multus-cni
//   pkg/k8sclient SetNetworkStatus). A pod that is gone, or that was created again under another
//   UID, is left alone.
// - an Event on the pod per attached interface (reason `AddedInterface`, Multus' wording:
//   `Add net1 [198.18.0.5/24] from tenant-a/blue`).
import { randomBytes } from "node:crypto";
import type { KubeConfig } from "@kubernetes/client-node";
import { type Result, fail, ok } from "../api/errors.js";
import { ANNOTATION_NETWORK_STATUS } from "../api/objects.js";
import { KubeApiError, kubeRequest } from "../authz/kube-http.js";

export interface PodName {
  readonly namespace: string;
  readonly name: string;
  /** When given, a pod with another UID is not touched. */
  readonly uid?: string | undefined;
}

/** One network-status entry as far as an event needs it. */
export interface AttachedInterface {
  readonly name: string;
  readonly interface?: string | undefined;
  readonly ips?: readonly string[] | undefined;
}

interface PodObject {
  metadata: { uid?: string; resourceVersion?: string; annotations?: Record<string, string> } & Record<string, unknown>;
  [key: string]: unknown;
}

/** Attempts of a read-modify-write before giving up (client-go retry.DefaultRetry: 5). */
const CONFLICT_ATTEMPTS = 5;
const CONFLICT_PAUSE_MS = 10;

const podPath = (pod: PodName): string => `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`;

/**
 * Sets the pod's network-status annotation to `statuses` (JSON list), or removes it when
 * `statuses` is undefined. Returns what happened, or why it could not be written.
 */
export async function writeNetworkStatus(kc: KubeConfig, pod: PodName, statuses: readonly unknown[] | undefined): Promise<Result<"written" | "removed" | "pod gone", string>> {
  const path = podPath(pod);
  for (let attempt = 1; ; attempt++) {
    try {
      const current = await kubeRequest<PodObject>(kc, { path, timeoutMs: 10_000 });
      if (pod.uid !== undefined && current.metadata.uid !== undefined && current.metadata.uid !== pod.uid) return ok("pod gone");
      const annotations = { ...(current.metadata.annotations ?? {}) };
      if (statuses === undefined) {
        if (!(ANNOTATION_NETWORK_STATUS in annotations)) return ok("removed");
        delete annotations[ANNOTATION_NETWORK_STATUS];
      } else annotations[ANNOTATION_NETWORK_STATUS] = JSON.stringify(statuses, null, 2);
      const body = { ...current, apiVersion: "v1", kind: "Pod", metadata: { ...current.metadata, annotations } };
      await kubeRequest(kc, { method: "PUT", path: `${path}/status`, body, timeoutMs: 10_000 });
      return ok(statuses === undefined ? "removed" : "written");
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 404) return ok("pod gone");
      if (error instanceof KubeApiError && error.statusCode === 409 && attempt < CONFLICT_ATTEMPTS) {
        await new Promise((resolve) => setTimeout(resolve, CONFLICT_PAUSE_MS * attempt));
        continue;
      }
      return fail(`pod ${pod.namespace}/${pod.name}: cannot update pods/status: ${(error as Error).message}`);
    }
  }
}

/** One Normal Event `AddedInterface` on the pod per interface, reported by `nadguard` on `node`. */
export async function addedInterfaceEvents(kc: KubeConfig, pod: PodName, node: string, interfaces: readonly AttachedInterface[]): Promise<Result<number, string>> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const errors: string[] = [];
  for (const attached of interfaces) {
    const body = {
      apiVersion: "v1",
      kind: "Event",
      // kubelet's recorder names events `<object>.<unique suffix>`.
      metadata: { name: `${pod.name}.${randomBytes(8).toString("hex")}`, namespace: pod.namespace },
      involvedObject: { apiVersion: "v1", kind: "Pod", namespace: pod.namespace, name: pod.name, ...(pod.uid !== undefined && { uid: pod.uid }) },
      reason: "AddedInterface",
      message: `Add ${attached.interface ?? ""} [${(attached.ips ?? []).join(" ")}] from ${attached.name}`,
      type: "Normal",
      source: { component: "nadguard", host: node },
      reportingComponent: "nadguard",
      reportingInstance: node,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await kubeRequest(kc, { method: "POST", path: `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/events`, body, timeoutMs: 10_000 });
    } catch (error) {
      errors.push((error as Error).message);
    }
  }
  return errors.length === 0 ? ok(interfaces.length) : fail(`pod ${pod.namespace}/${pod.name}: cannot create its AddedInterface events: ${errors.join("; ")}`);
}
