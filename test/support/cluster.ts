// Test support: snapshots from YAML text and admission requests from pods, as the API server sends them.
import type { AdmissionRequest } from "../../src/api/admission-review.js";
import type { Snapshot } from "../../src/api/snapshot.js";
import type { AdmissionEnv } from "../../src/admission/decision.js";
import { requestForManifest } from "../../src/admission/review.js";
import { offlineReviewer } from "../../src/authz/nad-access.js";
import { SnapshotBuilder } from "../../src/cluster/snapshot-builder.js";
import { addStateText } from "../../src/cluster/state-dir.js";
import { type Config, parseConfig } from "../../src/config/config.js";

export function snapshotFrom(...yamlTexts: string[]): Snapshot {
  const builder = new SnapshotBuilder(1);
  yamlTexts.forEach((text, i) => addStateText(builder, `fixture-${i}.yaml`, text));
  const snapshot = builder.build();
  const problems = snapshot.problems.filter((p) => p.code !== "state.kind-ignored");
  if (problems.length > 0) throw new Error(`fixture has problems: ${JSON.stringify(problems)}`);
  return snapshot;
}

export function envOf(snapshot: Snapshot, config: unknown = {}): AdmissionEnv {
  return { snapshot, config: parseConfig(config) as Config, access: offlineReviewer(snapshot.rbac) };
}

export interface PodSpecInput {
  namespace?: string;
  name?: string;
  networks?: string;
  annotations?: Record<string, string>;
  containers?: Record<string, unknown>[];
  spec?: Record<string, unknown>;
}

/** A minimal pod as kubectl would send it. */
export function pod(input: PodSpecInput = {}): Record<string, unknown> {
  const annotations = { ...(input.networks !== undefined && { "k8s.v1.cni.cncf.io/networks": input.networks }), ...input.annotations };
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: input.name ?? "app",
      namespace: input.namespace ?? "tenant-a",
      ...(Object.keys(annotations).length > 0 && { annotations }),
    },
    spec: { containers: input.containers ?? [{ name: "app", image: "registry.example/app:1" }], ...input.spec },
  };
}

export function createRequest(object: Record<string, unknown>, username = "alice", groups: string[] = []): AdmissionRequest {
  return requestForManifest(object, { username, groups });
}

/** The UPDATE request kube-apiserver sends when `username` changes `oldObject` into `object`. */
export function updateRequest(
  oldObject: Record<string, unknown>,
  object: Record<string, unknown>,
  username = "alice",
  groups: string[] = [],
): AdmissionRequest {
  return { ...createRequest(object, username, groups), operation: "UPDATE", oldObject, options: { apiVersion: "meta.k8s.io/v1", kind: "UpdateOptions" } };
}
