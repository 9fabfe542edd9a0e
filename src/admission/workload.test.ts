import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AdmissionRequest } from "../api/admission-review.js";
import { createRequest, envOf, snapshotFrom } from "../../test/support/cluster.js";
import { MAX_WARNING } from "./decision.js";
import { decide, verdict } from "./review.js";
import { MAX_DENIAL_WARNINGS, WORKLOAD_KINDS, asWarnings, wrap } from "./workload.js";

const EXAMPLE_CLUSTER = join(import.meta.dirname, "../../examples/cluster");

/**
 * The example cluster, plus carol, who may use the NADs of shared-networks herself, tenant-b's
 * service account builder, granted the same, and a NAD of a CNI type MultiNetworkPolicy does not reach.
 */
const env = envOf(
  snapshotFrom(
    ...readdirSync(EXAMPLE_CLUSTER).map((file) => readFileSync(join(EXAMPLE_CLUSTER, file), "utf8")),
    `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: uses-nads }
rules: [{ apiGroups: [k8s.cni.cncf.io], resources: [network-attachment-definitions], verbs: [use] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: carol-and-builder, namespace: shared-networks }
subjects:
  - { kind: User, name: carol, apiGroup: rbac.authorization.k8s.io }
  - { kind: ServiceAccount, name: builder, namespace: tenant-b }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: uses-nads }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: ovn-b, namespace: tenant-b }
spec: { config: '{"cniVersion":"1.0.0","type":"ovn-k8s-cni-overlay"}' }
`,
  ),
);

const API_VERSIONS: Record<string, string> = { apps: "apps/v1", batch: "batch/v1", "": "v1" };

/** A workload of `kind` in tenant-b whose pod template carries this networks annotation. */
function workload(kind: string, networks: string | undefined, podSpec: Record<string, unknown> = {}): Record<string, unknown> {
  const known = WORKLOAD_KINDS.find((w) => w.kind === kind)!;
  const template = {
    metadata: { labels: { app: "w" }, ...(networks !== undefined && { annotations: { "k8s.v1.cni.cncf.io/networks": networks } }) },
    spec: { containers: [{ name: "app", image: "registry.example/app:1" }], ...podSpec },
  };
  const object: Record<string, unknown> = { apiVersion: API_VERSIONS[known.group], kind, metadata: { name: "w", namespace: "tenant-b" } };
  // Builds the nesting the kind's template path names, e.g. spec.jobTemplate.spec.template.
  let at = object;
  known.template.forEach((key, i) => {
    const last = i === known.template.length - 1;
    at[key] = last ? template : ((at[key] as Record<string, unknown>) ?? {});
    at = at[key] as Record<string, unknown>;
  });
  return object;
}

describe("pod templates, judged as the pods their controllers create", () => {
  it.each(WORKLOAD_KINDS.map((w) => [w.kind, w.template.join(".")]))("%s: the template at %s, named in the denial", async (kind, path) => {
    const decision = await verdict(createRequest(workload(kind, "missing")), env);
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toBe("network-not-found");
    expect(decision.message).toBe(
      `${kind} tenant-b/w (pod template ${path}): pod tenant-b/w-<generated>: element 1 ("missing"): ` +
        "NetworkAttachmentDefinition tenant-b/missing does not exist; NetworkAttachmentDefinitions in namespace tenant-b: ipvlan-storage, ovn-b, sriov-fast",
    );
  });

  it("checks the template's service account and the controller, not the person applying the workload", async () => {
    // carol may use shared-networks' NADs herself, but the ReplicaSet controller creates the pods.
    const asCarol = await verdict(createRequest(workload("Deployment", "shared-networks/bridge-shared"), "carol"), env);
    expect(asCarol.reason).toBe("network-forbidden");
    expect(asCarol.message).toContain("system:serviceaccount:kube-system:replicaset-controller");
    expect((await verdict(createRequest(workload("Deployment", "shared-networks/bridge-shared", { serviceAccountName: "builder" }), "carol"), env)).allowed).toBe(true);
    expect((await verdict(createRequest(workload("CronJob", "shared-networks/bridge-shared", { serviceAccountName: "builder" })), env)).allowed).toBe(true);
  });

  it("an allowed template: its attachments, and no patch (each pod gets its own at creation)", async () => {
    const decision = await verdict(createRequest(workload("StatefulSet", "sriov-fast")), env);
    expect(decision).toEqual({
      allowed: true,
      patch: [],
      warnings: [],
      attachments: [
        {
          interfaceName: "net1",
          network: "tenant-b/sriov-fast",
          cniType: "sriov",
          resourceName: "intel.com/sriov_netdevice",
          access: { allowed: true, mode: "rbac", reason: "own-namespace", summary: `allowed: in the pod's own namespace tenant-b (authorization mode "rbac")` },
        },
      ],
    });
  });

  it.each([
    ["a template without networks", createRequest(workload("Deployment", undefined))],
    ["a DELETE", { ...createRequest(workload("Deployment", "missing")), operation: "DELETE" } as AdmissionRequest],
    ["the scale subresource", { ...createRequest(workload("Deployment", "missing")), subResource: "scale" } as AdmissionRequest],
    ["a Deployment of another API group", createRequest({ ...workload("Deployment", "missing"), apiVersion: "example.io/v1" })],
  ])("allows %s untouched", async (_label, request) => {
    expect(await verdict(request, env)).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
  });
});

describe("the webhook: warnings on /validate, nothing on /mutate", () => {
  it("/validate allows, the denial carried by warnings each under 120 characters", async () => {
    const decision = await decide(createRequest(workload("Deployment", "missing")), env, "validate");
    expect(decision.allowed).toBe(true);
    expect(decision.warnings).toEqual([
      "pods of this Deployment will be denied at creation (network-not-found):",
      'Deployment tenant-b/w (pod template spec.template): pod tenant-b/w-<generated>: element 1 ("missing"):',
      "NetworkAttachmentDefinition tenant-b/missing does not exist; NetworkAttachmentDefinitions in namespace tenant-b:",
      "ipvlan-storage, ovn-b, sriov-fast",
    ]);
  });

  it("/validate passes an allowed template's own warnings on, naming the template", async () => {
    const decision = await decide(createRequest(workload("Job", "ovn-b")), env, "validate");
    expect(decision.warnings).toEqual(["spec.template: net1 (tenant-b/ovn-b): CNI type ovn-k8s-cni-overlay is not enforced by MultiNetworkPolicy"]);
  });

  it("/mutate leaves workloads alone", async () => {
    expect(await decide(createRequest(workload("Deployment", "missing")), env, "mutate")).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
  });

  it("a long denial is cut to a bounded number of warnings, saying how much was left out", () => {
    const message = Array.from({ length: 30 }, (_, i) => `- element ${i + 1} ("n${i}/x"): ${"a long explanation ".repeat(4)}`).join("\n");
    const { warnings } = asWarnings({ allowed: false, reason: "network-not-found", message, patch: [], warnings: [], attachments: [] }, WORKLOAD_KINDS[0]!);
    // 30 lines of under 119 characters: the head, 7 of them, then the count of the other 23.
    expect(warnings).toHaveLength(MAX_DENIAL_WARNINGS + 1);
    expect(warnings.at(-1)).toBe("… 23 more lines: see the pods' denial, or nadguard admit");
    for (const warning of warnings) expect(warning.length).toBeLessThanOrEqual(MAX_WARNING);
  });
});

describe("wrap", () => {
  it.each([
    ["short", 10, ["short"]],
    ["one two three four", 9, ["one two", "three", "four"]],
    ["abcdefghijklmnop", 5, ["abcde", "fghij", "klmno", "p"]],
    ["  indented line", 40, ["  indented line"]],
    ["", 10, []],
  ])("%j at %d → %j", (line, width, pieces) => {
    expect(wrap(line, width)).toEqual(pieces);
  });
});
