// `nadguard webhook --kubeconfig FILE` as a cluster admin runs it: a process that reads NADs through
// informers, authorizes cross-namespace use by SubjectAccessReview, turns ready only after its first
// lists, and answers reviews over HTTP/2 (against the fake API server, or KUBECONFIG's cluster).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestCluster, eventually, grantNadUse, nad, startTestCluster } from "./cluster.js";

const BIN = join(import.meta.dirname, "..", "..", "bin", "nadguard.js");
const SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

let cluster: TestCluster;
let dir: string;
let server: ChildProcess;
let port: number;
let ca: string;
let podNs: string;
/** The webhook's stdout: JSON log lines at --log-level warn. */
let stdout = "";
let nadNs: string;

function request(method: string, path: string, body?: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const session = connect(`https://127.0.0.1:${port}`, { ca });
    session.on("error", reject);
    const stream = session.request({ ":method": method, ":path": path, ...(body && { "content-type": "application/json" }) });
    let status = 0;
    let data = "";
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => (data += chunk.toString()));
    stream.on("end", () => {
      session.close();
      resolve({ status, json: data.startsWith("{") ? JSON.parse(data) : data });
    });
    stream.on("error", reject);
    stream.end(body);
  });
}

function review(username: string): string {
  return JSON.stringify(reviewOf(username));
}

function reviewOf(username: string) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `uid-${username}`,
      kind: { group: "", version: "v1", kind: "Pod" },
      resource: { group: "", version: "v1", resource: "pods" },
      namespace: podNs,
      operation: "CREATE",
      userInfo: { username, groups: ["system:authenticated"] },
      object: {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "app", namespace: podNs, annotations: { "k8s.v1.cni.cncf.io/networks": `${nadNs}/shared@data0` } },
        spec: { containers: [{ name: "app", image: "registry.invalid/app:1" }] },
      },
    },
  };
}

beforeAll(async () => {
  cluster = await startTestCluster();
  podNs = await cluster.namespace("cmd-pods");
  nadNs = await cluster.namespace("cmd-nets");
  await cluster.api.create(nad(nadNs, "shared"));
  await grantNadUse(cluster.api, nadNs, "shared", { alice: { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "alice" } });

  dir = await mkdtemp(join(tmpdir(), "nadguard-kube-cmd-"));
  const kubeconfig = join(dir, "kubeconfig");
  await writeFile(kubeconfig, cluster.kubeConfig.exportConfig(), { mode: 0o600 });
  server = spawn(
    process.execPath,
    [BIN, "webhook", "--kubeconfig", kubeconfig, "--listen", "127.0.0.1:0", "--certs-dir", join(dir, "certs"), "--log-level", "warn"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  server.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  // stdout is the JSON log (warnings and up here); the address is among the hints on stderr.
  let stderr = "";
  port = await new Promise<number>((resolve, reject) => {
    server.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on https:\/\/127\.0\.0\.1:(\d+) \(Kubernetes\)/.exec(stderr);
      if (match) resolve(Number(match[1]));
    });
    server.on("exit", (code) => reject(new Error(`webhook exited with ${code}: ${stderr}`)));
  });
  ca = await readFile(join(dir, "certs", "ca.crt"), "utf8");
}, 60_000);

afterAll(async () => {
  if (server?.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
  }
  await cluster?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("nadguard webhook --kubeconfig", () => {
  it("turns ready once its informers have listed the cluster", async () => {
    await eventually(async () => expect((await request("GET", "/readyz")).status).toBe(200), 20_000, 100);
  });

  it("allows a pod whose requesting user holds `use` on the other namespace's NAD", async () => {
    const { status, json } = await eventually(async () => {
      const answer = await request("POST", "/mutate", review("alice"));
      expect((answer.json as { response: { allowed: boolean } }).response.allowed).toBe(true);
      return answer;
    }, 20_000, 200);
    expect(status).toBe(200);
    expect((json as { response: { uid: string } }).response.uid).toBe("uid-alice");
  });

  it("denies one whose user and service account hold nothing, by SubjectAccessReview", async () => {
    const { json } = await request("POST", "/validate", review("bob"));
    const response = (json as { response: { allowed: boolean; status: { code: number; message: string } } }).response;
    expect(response.allowed).toBe(false);
    expect(response.status.code).toBe(403);
    expect(response.status.message).toContain(`element 1 ("${nadNs}/shared@data0"): may not use NetworkAttachmentDefinition ${nadNs}/shared`);
    expect(response.status.message).toContain(`system:serviceaccount:${podNs}:default`);
  });

  it("aborts a SubjectAccessReview the API server never answers once its review's deadline passes", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const remove = cluster.proxy.inject({ method: "POST", path: SAR_PATH, times: Infinity, fault: { hold: held } });
    try {
      const before = cluster.proxy.requests.length;
      // ?timeout=1s: the review's budget is 900 ms; the SubjectAccessReview's own limit is 3 s.
      const { json } = await request("POST", "/mutate?timeout=1s", review("dave"));
      const response = (json as { response: { allowed: boolean; status: { code: number; message: string } } }).response;
      expect(response.allowed).toBe(false);
      expect(response.status.code).toBe(504);
      expect(response.status.message).toBe(
        "nadguard: the review timed out inside nadguard after 900 ms (the API server allows 1000 ms); denied rather than admitted unchecked",
      );
      const asked = cluster.proxy.requests.slice(before).filter((r) => r.method === "POST" && r.path === SAR_PATH);
      expect(asked).toHaveLength(1);
      // Aborted with its review, not left to run into its own 3 s limit: the connection is closed well before that.
      const closed = await Promise.race([asked[0]!.abandoned.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 1_000))]);
      expect(closed).toBe(true);
    } finally {
      remove();
      release();
    }
  });

  it("counts the SubjectAccessReviews on /metrics", async () => {
    const { json } = await request("GET", "/metrics");
    expect(String(json)).toMatch(/nadguard_subjectaccessreview_requests_total\{[^}]*\} [1-9]/);
  });

  it("prints only JSON log lines at the chosen level on stdout", () => {
    for (const line of stdout.split("\n").filter(Boolean)) expect((JSON.parse(line) as { level: number }).level).toBeGreaterThanOrEqual(40);
  });
});
