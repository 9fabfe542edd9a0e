// One pod must not be able to take the webhook down: a networks annotation naming 30,000 missing
// NADs (`n0/x,n1/x,…`, 253 KiB, under kube-apiserver's 256 KiB annotation limit, which the mutating
// webhook sees before it applies) posted to `nadguard webhook` running with the Deployment's memory
// flags. It gets a denial of bounded size, and the process keeps answering.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { MAX_DENIAL_LENGTH } from "../src/admission/denial.js";
import { EXAMPLES, type WebhookProcess, startWebhook } from "./support/webhook-process.js";

/** NODE_OPTIONS of the webhook container in manifests/webhook/deployment.yaml. */
async function deploymentNodeOptions(): Promise<string> {
  const text = await readFile(join(import.meta.dirname, "..", "manifests", "webhook", "deployment.yaml"), "utf8");
  const deployment = parseAllDocuments(text).map((doc) => doc.toJS()).find((o) => o?.kind === "Deployment");
  const env: Array<{ name: string; value: string }> = deployment.spec.template.spec.containers[0].env;
  return env.find((e) => e.name === "NODE_OPTIONS")!.value;
}

function review(uid: string, networks: string): string {
  const gvk = { group: "", version: "v1", kind: "Pod" };
  const gvr = { group: "", version: "v1", resource: "pods" };
  const object = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "flood", namespace: "tenant-a", annotations: { "k8s.v1.cni.cncf.io/networks": networks } },
    spec: { containers: [{ name: "app", image: "registry.example/app:1" }] },
  };
  return JSON.stringify({
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: { uid, kind: gvk, resource: gvr, requestKind: gvk, requestResource: gvr, name: "flood", namespace: "tenant-a", operation: "CREATE", userInfo: { username: "mallory", groups: ["system:authenticated"] }, object, dryRun: false },
  });
}

const MISSING = Array.from({ length: 30_000 }, (_, i) => `n${i}/x`).join(",");

let webhook: WebhookProcess;
let nodeOptions: string;
beforeAll(async () => {
  nodeOptions = await deploymentNodeOptions();
  webhook = await startWebhook(join(EXAMPLES, "cluster"), { env: { NODE_OPTIONS: nodeOptions } });
}, 60_000);
afterAll(async () => webhook?.stop());

describe("nadguard webhook with the Deployment's NODE_OPTIONS", () => {
  it("runs with a bounded heap (the flag this test is about)", () => {
    expect(nodeOptions).toMatch(/--max-old-space-size=\d+/);
  });

  it("denies the 30,000-NAD pod with ten problems and a count, repeatedly, and stays up", async () => {
    expect(Buffer.byteLength(MISSING)).toBeGreaterThan(250 * 1024);
    for (let i = 0; i < 5; i++) {
      for (const path of ["/mutate", "/validate"]) {
        const { status, text } = await webhook.post(path, review(`flood-${i}-${path}`, MISSING));
        expect(status).toBe(200);
        const { response } = JSON.parse(text);
        expect(response).toMatchObject({ uid: `flood-${i}-${path}`, allowed: false, status: { code: 403 } });
        const lines: string[] = response.status.message.split("\n- ");
        expect(lines[0]).toBe("pod tenant-a/flood:");
        expect(lines[1]).toMatch(/^element 1 \("n0\/x"\): may not use NetworkAttachmentDefinition n0\/x: /);
        expect(lines.at(-1)).toBe("and 29,990 more networks not checked: the pod is denied already");
        expect(response.status.message.length).toBeLessThanOrEqual(MAX_DENIAL_LENGTH);
      }
    }
    expect(webhook.child.exitCode).toBeNull();
  }, 120_000);

  it("denies 120,000 broken elements with the exact count of problems", async () => {
    const { text } = await webhook.post("/mutate", review("broken", Array.from({ length: 120_000 }, () => "A").join(",")));
    const message: string = JSON.parse(text).response.status.message;
    expect(message.split("\n- ").at(-1)).toBe("and 119,990 more problems");
  }, 60_000);

  it("then still answers: healthy, ready, and the example pod allowed with its patch", async () => {
    expect((await webhook.get("/healthz")).status).toBe(200);
    expect((await webhook.get("/readyz")).status).toBe(200);
    const { text } = await webhook.post("/mutate", await readFile(join(EXAMPLES, "reviews", "pod-tenant-a-allowed.json"), "utf8"));
    expect(JSON.parse(text).response).toMatchObject({ allowed: true, patchType: "JSONPatch" });
    expect(webhook.child.exitCode).toBeNull();
  });
});
