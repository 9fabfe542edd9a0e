// The whole admission path as a cluster admin runs it: `nadguard webhook` as a process on a real
// TLS socket, reviews posted over HTTP/1.1 and HTTP/2, and `nadguard admit` on the same input
// giving the same answer.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { connect } from "node:http2";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { requestForManifest } from "../src/admission/review.js";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "nadguard.js");
const EXAMPLES = join(import.meta.dirname, "..", "examples");

let server: ChildProcess;
let port: number;
let ca: string;
let certsDir: string;
let stdout = "";

beforeAll(async () => {
  certsDir = await mkdtemp(join(tmpdir(), "nadguard-certs-"));
  server = spawn(process.execPath, [BIN, "webhook", "--state", join(EXAMPLES, "cluster"), "--listen", "127.0.0.1:0", "--certs-dir", certsDir], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  server.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  port = await new Promise<number>((resolve, reject) => {
    server.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
      if (match && stdout.includes("try: curl")) resolve(Number(match[1]));
    });
    server.on("exit", (code) => reject(new Error(`webhook exited with ${code}: ${stderr}`)));
  });
  ca = await readFile(join(certsDir, "ca.crt"), "utf8");
}, 60_000);

afterAll(async () => {
  if (server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
  }
  await rm(certsDir, { recursive: true, force: true });
});

function postHttp1(path: string, body: string): Promise<{ status: number; json: unknown; alpn: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port, path, method: "POST", ca, headers: { "content-type": "application/json" } }, (res) => {
      let data = "";
      // Read now: a keep-alive agent detaches the socket from the response once it has ended.
      const alpn = String((res.socket as TLSSocket).alpnProtocol || "http/1.1");
      res.on("data", (chunk: Buffer) => (data += chunk.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(data), alpn }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function postHttp2(path: string, body: string): Promise<{ status: number; json: unknown; alpn: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(`https://127.0.0.1:${port}`, { ca });
    session.on("error", reject);
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
    let status = 0;
    let data = "";
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => (data += chunk.toString()));
    stream.on("end", () => {
      const alpn = String(session.alpnProtocol);
      session.close();
      resolve({ status, json: JSON.parse(data), alpn });
    });
    stream.end(body);
  });
}

async function admitJson(file: string): Promise<{ code: number; json: unknown }> {
  try {
    const { stdout: out } = await run(process.execPath, [BIN, "admit", file, "--state", join(EXAMPLES, "cluster"), "--output", "json"]);
    return { code: 0, json: JSON.parse(out) };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, json: JSON.parse(failed.stdout) };
  }
}

describe("nadguard webhook", () => {
  it("prints the CA bundle and a curl line for the example review", () => {
    expect(stdout).toContain("CA bundle (caBundle, base64): ");
    expect(stdout).toMatch(/try: curl --cacert \S+ca\.crt -H 'Content-Type: application\/json' --data @\S+pod-tenant-a-allowed\.json https:\/\/127\.0\.0\.1:\d+\/mutate/);
  });

  it.each([
    ["HTTP/1.1", postHttp1, "http/1.1"],
    ["HTTP/2", postHttp2, "h2"],
  ])("answers /mutate over %s with the SR-IOV and node-selector patch", async (_, post, alpn) => {
    const body = await readFile(join(EXAMPLES, "reviews", "pod-tenant-a-allowed.json"), "utf8");
    const { status, json, alpn: negotiated } = await post("/mutate", body);
    expect(status).toBe(200);
    expect(negotiated).toBe(alpn);
    const response = (json as { response: { uid: string; allowed: boolean; patch: string; patchType: string } }).response;
    expect(response.uid).toBe("0b7c3a52-6f1e-4c1a-9d7e-1a2b3c4d5e6f");
    expect(response.allowed).toBe(true);
    expect(response.patchType).toBe("JSONPatch");
    expect(JSON.parse(Buffer.from(response.patch, "base64").toString())).toEqual([
      { op: "add", path: "/metadata/annotations/nadguard.io~1injected-resources", value: '{"intel.com/sriov_vf_shared":1}' },
      {
        op: "add",
        path: "/spec/containers/0/resources",
        value: { requests: { "intel.com/sriov_vf_shared": "1" }, limits: { "intel.com/sriov_vf_shared": "1" } },
      },
      { op: "add", path: "/spec/nodeSelector", value: { "feature.node.kubernetes.io/network-sriov.capable": "true" } },
    ]);
  });

  it("denies over /validate with the full message, including the command that grants the shipped ClusterRole", async () => {
    const body = await readFile(join(EXAMPLES, "reviews", "pod-tenant-b-denied.json"), "utf8");
    const { json } = await postHttp2("/validate", body);
    const response = (json as { response: { allowed: boolean; status: { code: number; message: string } } }).response;
    expect(response.allowed).toBe(false);
    expect(response.status.code).toBe(403);
    expect(response.status.message).toMatch(/^pod tenant-b\/db: element 2 \("shared-networks\/bridge-shared"\): may not use NetworkAttachmentDefinition shared-networks\/bridge-shared/);
    expect(response.status.message).toContain(
      "\nkubectl -n shared-networks create rolebinding nadguard-nad-user-tenant-b-default --clusterrole=nadguard:nad-user --serviceaccount=tenant-b:default",
    );
  });

  it.each(["pod-tenant-a-allowed.json", "pod-tenant-b-denied.json"])("gives the same answer as nadguard admit for %s", async (file) => {
    const path = join(EXAMPLES, "reviews", file);
    const [{ json: served }, { code, json: admitted }] = await Promise.all([postHttp1("/mutate", await readFile(path, "utf8")), admitJson(path)]);
    expect(admitted).toEqual(served);
    expect(code).toBe((served as { response: { allowed: boolean } }).response.allowed ? 0 : 3);
  });

  it("warns about a Deployment whose pods will be denied (/validate), never denies it, and leaves it alone on /mutate", async () => {
    const body = await readFile(join(EXAMPLES, "reviews", "deployment-tenant-b-warned.json"), "utf8");
    const uid = "9a1f3e52-7c4d-4b6a-8e2f-0c1d2e3f4a5b";
    expect((await postHttp2("/validate", body)).json).toEqual({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: {
        uid,
        allowed: true,
        warnings: [
          "pods of this Deployment will be denied at creation (network-not-found):",
          'Deployment tenant-b/batch (pod template spec.template): pod tenant-b/batch-<generated>: element 1 ("storage"):',
          "NetworkAttachmentDefinition tenant-b/storage does not exist; NetworkAttachmentDefinitions in namespace tenant-b:",
          "ipvlan-storage, sriov-fast",
        ],
      },
    });
    expect((await postHttp1("/mutate", body)).json).toEqual({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, allowed: true } });
  });

  it("answers each item of a kind: List on /mutate as nadguard admit answers it", async () => {
    const file = join(import.meta.dirname, "fixtures", "manifests", "list.yaml");
    const { code, json } = await admitJson(file);
    expect(code).toBe(3);
    const admitted = (json as Array<{ review: { response: { uid: string } } }>).map(({ review }) => review);
    const items = (parseYaml(await readFile(file, "utf8")) as { items: Array<Record<string, unknown>> }).items;
    expect(admitted).toHaveLength(items.length);
    for (const [i, item] of items.entries()) {
      const request = { ...requestForManifest(item, { groups: [] }), uid: admitted[i]!.response.uid };
      const { json: served } = await postHttp1("/mutate", JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request }));
      expect(admitted[i]).toEqual(served);
    }
  });

  it("is ready, healthy and counts what it answered", async () => {
    const get = (path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        httpsRequest({ host: "127.0.0.1", port, path, ca }, (res) => {
          let body = "";
          res.on("data", (c: Buffer) => (body += c.toString()));
          res.on("end", () => resolve({ status: res.statusCode!, body }));
        })
          .on("error", reject)
          .end();
      });
    expect((await get("/healthz")).status).toBe(200);
    expect((await get("/readyz")).status).toBe(200);
    const metrics = (await get("/metrics")).body;
    expect(metrics).toMatch(/nadguard_admission_duration_seconds_count\{endpoint="mutate",outcome="allowed"\} [1-9]/);
    expect(metrics).toMatch(/nadguard_admission_denials_total\{reason="network-forbidden"\} [1-9]/);
  });

  it("exits 0 on SIGTERM", async () => {
    const exited = new Promise<number | null>((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});

describe("nadguard admit", () => {
  const admit = async (...args: string[]) => {
    try {
      const { stdout: out, stderr } = await run(process.execPath, [BIN, "admit", ...args]);
      return { code: 0, out, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, out: failed.stdout, stderr: failed.stderr };
    }
  };
  const state = ["--state", join(EXAMPLES, "cluster")];

  it("prints the verdict, the attachments and the patch for a bare pod, exit 0", async () => {
    const { code, out } = await admit(join(EXAMPLES, "pods", "tenant-a-web.yaml"), ...state, "--as", "alice");
    expect(code).toBe(0);
    expect(out).toBe(
      [
        "ALLOWED",
        "",
        "attachments:",
        "  INTERFACE  NETWORK                       CNI TYPE  RESOURCE",
        "  net1       tenant-a/macvlan-data         macvlan",
        "  fast0      shared-networks/sriov-shared  sriov     intel.com/sriov_vf_shared",
        "",
        "patch:",
        '  + /metadata/annotations/nadguard.io~1injected-resources = "{\\"intel.com/sriov_vf_shared\\":1}"',
        '  + /spec/containers/0/resources = {"requests":{"intel.com/sriov_vf_shared":"1"},"limits":{"intel.com/sriov_vf_shared":"1"}}',
        '  + /spec/nodeSelector = {"feature.node.kubernetes.io/network-sriov.capable":"true"}',
        "",
      ].join("\n"),
    );
  });

  it("exits 3 with the denial for a missing NAD", async () => {
    const { code, out } = await admit(join(EXAMPLES, "pods", "tenant-b-missing.yaml"), ...state);
    expect(code).toBe(3);
    expect(out).toBe(
      "DENIED (network-not-found)\n" +
        'pod tenant-b/batch: element 1 ({"name":"storage","interface":"stor0"}): NetworkAttachmentDefinition tenant-b/storage does not exist; ' +
        "NetworkAttachmentDefinitions in namespace tenant-b: ipvlan-storage, sriov-fast\n",
    );
  });

  it.each([
    [["nope.yaml", ...state], /nope\.yaml: cannot read/],
    [[join(EXAMPLES, "pods", "tenant-a-web.yaml")], /--state is required/],
    [[join(EXAMPLES, "pods", "tenant-a-web.yaml"), ...state, "--output", "xml"], /--output xml: expected json or human/],
    [[join(EXAMPLES, "pods", "tenant-a-web.yaml"), ...state, "--bogus"], /Unknown option '--bogus'/],
  ])("exits 2 on bad input or usage: %j", async (args, message) => {
    const { code, stderr } = await admit(...args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});
