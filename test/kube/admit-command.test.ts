// `nadguard admit FILE --kubeconfig FILE` as a person checks a pod against a live cluster: objects
// listed through the informers, cross-namespace use decided by SubjectAccessReview, and per network
// the access trail naming the SubjectAccessReview and the API server's reason (against the fake API
// server, or KUBECONFIG's cluster).
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestCluster, grantNadUse, nad, startTestCluster } from "./cluster.js";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "..", "bin", "nadguard.js");
const SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

let cluster: TestCluster;
let dir: string;
let kubeconfig: string;
let podNs: string;
let nadNs: string;

async function admit(file: string, ...args: string[]): Promise<{ code: number; out: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, "admit", file, "--kubeconfig", kubeconfig, ...args]);
    return { code: 0, out: stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout, stderr: failed.stderr };
  }
}

/** A pod of podNs asking for its own NAD `local` and for nadNs's `shared`. */
async function podFile(name: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(
    file,
    [
      "apiVersion: v1",
      "kind: Pod",
      `metadata: { name: ${name}, namespace: ${podNs}, annotations: { k8s.v1.cni.cncf.io/networks: "local, ${nadNs}/shared@data0" } }`,
      "spec: { containers: [{ name: app, image: registry.invalid/app:1 }] }",
    ].join("\n"),
  );
  return file;
}

/** The API server's reason for alice's grant: the fake's offline RBAC, or a real cluster's RBAC authorizer. */
function aliceReason(): string | RegExp {
  return cluster.real
    ? new RegExp(`^RBAC: allowed by RoleBinding "alice/${nadNs}" of Role "use-shared" to User "alice"$`)
    : `RBAC: allowed by RoleBinding ${nadNs}/alice → Role ${nadNs}/use-shared`;
}

beforeAll(async () => {
  cluster = await startTestCluster();
  podNs = await cluster.namespace("admit-pods");
  nadNs = await cluster.namespace("admit-nets");
  await cluster.api.create(nad(podNs, "local"));
  await cluster.api.create(nad(nadNs, "shared"));
  await grantNadUse(cluster.api, nadNs, "shared", { alice: { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "alice" } });
  dir = await mkdtemp(join(tmpdir(), "nadguard-kube-admit-"));
  kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, cluster.kubeConfig.exportConfig(), { mode: 0o600 });
}, 60_000);

afterAll(async () => {
  await cluster?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("nadguard admit --kubeconfig: the access trail of SubjectAccessReview mode", () => {
  it("allowed: the own-namespace network, and the SubjectAccessReview that granted alice the other namespace's", async () => {
    const before = cluster.proxy.count({ method: "POST", path: SAR_PATH });
    const { code, out } = await admit(await podFile("web"), "--as", "alice");
    expect(code).toBe(0);
    const lines = out.split("\n");
    const access = lines.slice(lines.indexOf("access:") + 1, lines.indexOf("access:") + 3);
    expect(access[0]).toBe(`  net1   ${podNs}/local   allowed: in the pod's own namespace ${podNs} (authorization mode "rbac")`);
    const prefix = `  data0  ${nadNs}/shared  allowed by SubjectAccessReview for the requesting user alice: `;
    expect(access[1]!.startsWith(prefix)).toBe(true);
    expect(access[1]!.slice(prefix.length)).toMatch(aliceReason());
    expect(cluster.proxy.count({ method: "POST", path: SAR_PATH }) - before).toBe(1);
  });

  it("--output json: the trail of each attachment under `nadguard`, naming the reviewer and the grant", async () => {
    const { code, out } = await admit(await podFile("web"), "--as", "alice", "--output", "json");
    expect(code).toBe(0);
    const review = JSON.parse(out) as { response: { allowed: boolean }; nadguard: { attachments: Array<{ interfaceName: string; access: Record<string, unknown> }> } };
    expect(review.response.allowed).toBe(true);
    const [local, shared] = review.nadguard.attachments;
    expect(local!.access).toEqual({
      allowed: true,
      mode: "rbac",
      reason: "own-namespace",
      summary: `allowed: in the pod's own namespace ${podNs} (authorization mode "rbac")`,
    });
    expect(shared!.access).toMatchObject({ allowed: true, mode: "rbac", reason: "rbac", reviewer: "subjectaccessreview" });
    const grants = shared!.access.grants as Array<{ subject: string; grantedBy: string }>;
    expect(grants.map((g) => g.subject)).toEqual(["alice"]);
    expect(grants[0]!.grantedBy).toMatch(aliceReason());
  });

  it("denied: what was missing, after both SubjectAccessReviews said no", async () => {
    const { code, out } = await admit(await podFile("db"), "--as", "bob");
    expect(code).toBe(3);
    expect(out.split("\n")[0]).toBe("DENIED (network-forbidden)");
    expect(out).toContain(
      `\naccess:\n  data0  ${nadNs}/shared  denied: missing a grant of verb "use" on network-attachment-definitions.k8s.cni.cncf.io "shared" ` +
        `in namespace ${nadNs} to the requesting user bob (groups system:authenticated) or to the pod's service account system:serviceaccount:${podNs}:default\n`,
    );
  });
});
