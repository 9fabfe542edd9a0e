// Changing a running pod's networks (UPDATE), as kube-apiserver sends it to `nadguard webhook` and
// as a CI job runs `nadguard admit` on the same AdmissionReview: the three ways a tenant could
// attach a network it may not use after creation are denied by both, and an update that leaves
// the network annotations alone is allowed untouched.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLES, type WebhookProcess, admitProcess, startWebhook } from "./support/webhook-process.js";

const REVIEWS = join(EXAMPLES, "reviews");
const STATE = ["--state", join(EXAMPLES, "cluster")];

/** What every denial of these updates says after the element it names (tenant-b's bob, service account default). */
const FORBIDDEN =
  "may not use NetworkAttachmentDefinition shared-networks/bridge-shared: it is not in the pod's namespace tenant-b, and under " +
  'authorization mode "rbac" a change of a pod\'s networks needs both the user making it and the pod\'s service account to be ' +
  'granted verb "use" on network-attachment-definitions.k8s.cni.cncf.io "bridge-shared" in namespace shared-networks; neither the ' +
  "updating user bob (groups tenant-b-developers, system:authenticated) nor the pod's service account system:serviceaccount:tenant-b:default " +
  "is. If namespace shared-networks is misspelt, correct it: nadguard does not say which NADs other namespaces hold. Otherwise a " +
  "cluster admin allows it by binding the ClusterRole nadguard:nad-user (every NAD of shared-networks) there:\n" +
  "kubectl -n shared-networks create rolebinding nadguard-nad-user-bob --clusterrole=nadguard:nad-user --user=bob\n" +
  "kubectl -n shared-networks create rolebinding nadguard-nad-user-tenant-b-default --clusterrole=nadguard:nad-user --serviceaccount=tenant-b:default";

/** What the access trail says was missing: both grants (`nadguard admit`'s access lines). */
const MISSING =
  'a grant of verb "use" on network-attachment-definitions.k8s.cni.cncf.io "bridge-shared" in namespace shared-networks to the ' +
  "updating user bob (groups tenant-b-developers, system:authenticated) and to the pod's service account system:serviceaccount:tenant-b:default";

const ATTACKS: Array<[string, string, string, string]> = [
  ["adds a forbidden network", "pod-update-add-network-denied.json", 'element 2 ("shared-networks/bridge-shared")', "net2"],
  ["changes an allowed network into a forbidden one", "pod-update-change-network-denied.json", 'element 1 ("shared-networks/bridge-shared")', "net1"],
  ["adds a forbidden default network", "pod-update-default-network-denied.json", "annotation v1.multus-cni.io/default-network", "eth0"],
];

interface Answer {
  response: { uid: string; allowed: boolean; patch?: string; status?: { code: number; message: string }; auditAnnotations?: Record<string, string> };
}

let webhook: WebhookProcess;
beforeAll(async () => {
  webhook = await startWebhook(join(EXAMPLES, "cluster"));
}, 60_000);
afterAll(async () => webhook?.stop());

describe("nadguard webhook: UPDATE of a pod", () => {
  it.each(ATTACKS)("denies an update that %s, on /mutate and on /validate", async (_title, file, label) => {
    const body = await readFile(join(REVIEWS, file), "utf8");
    const uid = JSON.parse(body).request.uid;
    for (const path of ["/mutate", "/validate"]) {
      const { status, text } = await webhook.post(path, body);
      expect(status).toBe(200);
      const { response } = JSON.parse(text) as Answer;
      expect(response).toMatchObject({ uid, allowed: false, status: { code: 403 }, auditAnnotations: { "nadguard.io/reason": "network-forbidden" } });
      expect(response.patch).toBeUndefined();
      expect(response.status!.message).toBe(`pod tenant-b/db: ${label}: ${FORBIDDEN}`);
    }
  });

  it("allows, untouched, a label change of a pod that runs on a network the updater may not use", async () => {
    const body = await readFile(join(REVIEWS, "pod-update-labels-allowed.json"), "utf8");
    for (const path of ["/mutate", "/validate"]) {
      const { response } = JSON.parse((await webhook.post(path, body)).text) as Answer;
      expect(response).toEqual({ uid: "e8f0a2c4-6b8d-4e1f-a3c5-7e9b1d3f5a62", allowed: true });
    }
  });
});

describe("nadguard admit on an AdmissionReview with operation UPDATE", () => {
  it.each(ATTACKS)("exits 3 with the denial for an update that %s", async (_title, file, label, iface) => {
    const { code, out } = await admitProcess(join(REVIEWS, file), ...STATE);
    expect(code).toBe(3);
    expect(out).toBe(
      `DENIED (network-forbidden)\npod tenant-b/db: ${label}: ${FORBIDDEN}\n\naccess:\n  ${iface}  shared-networks/bridge-shared  denied: missing ${MISSING}\n`,
    );
  });

  it("exits 0 for the label change", async () => {
    const { code, out } = await admitProcess(join(REVIEWS, "pod-update-labels-allowed.json"), ...STATE);
    expect([code, out]).toEqual([0, "ALLOWED\n"]);
  });

  it.each(["pod-update-add-network-denied.json", "pod-update-labels-allowed.json"])("gives the webhook's answer for %s (--output json)", async (file) => {
    const body = await readFile(join(REVIEWS, file), "utf8");
    const [served, admitted] = await Promise.all([webhook.post("/mutate", body), admitProcess(join(REVIEWS, file), ...STATE, "--output", "json")]);
    // What admit adds under `nadguard` (the access trail) is not part of the AdmissionReview.
    const { nadguard, ...review } = JSON.parse(admitted.out) as { nadguard?: { refused?: Array<{ access: { missing?: string } }> } };
    expect(review).toEqual(JSON.parse(served.text));
    if (file.includes("denied")) expect(nadguard?.refused?.map((r) => r.access.missing)).toEqual([MISSING]);
    else expect(nadguard).toBeUndefined();
  });
});
