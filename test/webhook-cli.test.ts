// The whole admission path as a cluster admin runs it: `nadguard webhook` as a process on a real
// TLS socket, reviews posted over HTTP/1.1 and HTTP/2, and `nadguard admit` on the same input
// giving the same answer; what it prints (JSON log on stdout, hints on stderr), how it reuses its
// development certificate across restarts, and how it refuses to start.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { connect } from "node:http2";
import { type Server, createServer } from "node:net";
import type { TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { requestForManifest } from "../src/admission/review.js";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const BIN = join(ROOT, "bin", "nadguard.js");
const EXAMPLES = join(ROOT, "examples");

let server: ChildProcess;
let port: number;
let ca: string;
let dir: string;
let certsDir: string;
/** A copy of examples/cluster, so that a test may break a file in it. */
let stateDir: string;
/** What the server printed so far: stdout and stderr, growing while it runs. */
let printed: { stdout: string; stderr: string };
const children = new Set<ChildProcess>();

/** `nadguard webhook ARGS` as a child process; resolves with its port once its hints name it (stderr). */
function startServer(args: string[], options: { cwd?: string; command?: string[] } = {}): { child: ChildProcess; ready: Promise<number>; output: { stdout: string; stderr: string } } {
  const [file, ...prefix] = options.command ?? [process.execPath, BIN, "webhook"];
  const child = spawn(file!, [...prefix, ...args], { stdio: ["ignore", "pipe", "pipe"], cwd: options.cwd ?? ROOT });
  children.add(child);
  const output = { stdout: "", stderr: "" };
  child.stdout!.on("data", (chunk: Buffer) => (output.stdout += chunk.toString()));
  const ready = new Promise<number>((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      output.stderr += chunk.toString();
      const match = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(output.stderr);
      if (match && output.stderr.includes("try: curl")) resolve(Number(match[1]));
    });
    child.on("exit", (code) => reject(new Error(`webhook exited with ${code}: ${output.stderr}`)));
  });
  return { child, ready, output };
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once("exit", resolve));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-webhook-cli-"));
  certsDir = join(dir, "certs");
  stateDir = join(dir, "cluster");
  await cp(join(EXAMPLES, "cluster"), stateDir, { recursive: true });
  const started = startServer(["--state", stateDir, "--listen", "127.0.0.1:0", "--certs-dir", certsDir]);
  server = started.child;
  port = await started.ready;
  printed = started.output;
  ca = await readFile(join(certsDir, "ca.crt"), "utf8");
}, 60_000);

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited(child);
    }
  }
  await rm(dir, { recursive: true, force: true });
});

function postHttp1(path: string, body: string, to = port): Promise<{ status: number; json: unknown; alpn: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: "127.0.0.1", port: to, path, method: "POST", ca, headers: { "content-type": "application/json" } }, (res) => {
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
  it("prints the CA bundle and a curl line for the example review on stderr", () => {
    const lines = printed.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe(`generated a development CA and serving certificate in ${certsDir} (no ca.crt there yet)`);
    expect(lines[1]).toBe(`CA bundle (caBundle, base64): ${Buffer.from(ca).toString("base64")}`);
    expect(lines[2]).toBe(`nadguard webhook listening on https://127.0.0.1:${port} (state ${stateDir})`);
    expect(lines[3]).toBe(
      `try: curl --cacert ${join(certsDir, "ca.crt")} -H 'Content-Type: application/json' --data @examples/reviews/pod-tenant-a-allowed.json https://127.0.0.1:${port}/mutate`,
    );
    expect(lines).toHaveLength(4);
  });

  it("logs JSON lines alone on stdout, the listening address among them", () => {
    const lines = printed.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 30, msg: "nadguard webhook listening", address: `https://127.0.0.1:${port}`, source: `state ${stateDir}` }),
    );
  });

  it("logs a state file it cannot read as a JSON warning naming the file, on stdout", async () => {
    await writeFile(join(stateDir, "broken.yaml"), "kind: [unclosed\n");
    await expect.poll(() => printed.stdout.includes("broken.yaml"), { timeout: 20_000, interval: 100 }).toBe(true);
    const lines = printed.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { level: number; msg: string });
    const warning = lines.find((line) => line.msg.includes("broken.yaml"));
    expect(warning).toMatchObject({ level: 40, msg: expect.stringMatching(/^state: \S*broken\.yaml: /) });
    expect(printed.stderr).not.toContain("broken.yaml");
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
    const [{ json: served }, { code, json }] = await Promise.all([postHttp1("/mutate", await readFile(path, "utf8")), admitJson(path)]);
    // What admit adds under `nadguard` (the access trail) is not part of the AdmissionReview.
    const { nadguard, ...admitted } = json as { nadguard?: unknown };
    expect(nadguard).toBeDefined();
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
          // broken.yaml, written by an earlier test, could hold it: the warning says so.
          "NetworkAttachmentDefinition tenant-b/storage does not exist (state file broken.yaml could not be read: not valid YAML",
          "at line 2, column 1, so this NetworkAttachmentDefinition may exist); NetworkAttachmentDefinitions in namespace",
          "tenant-b: ipvlan-storage, sriov-fast",
        ],
      },
    });
    expect((await postHttp1("/mutate", body)).json).toEqual({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response: { uid, allowed: true } });
  });

  it("answers each item of a kind: List on /mutate as nadguard admit answers it", async () => {
    const file = join(import.meta.dirname, "fixtures", "manifests", "list.yaml");
    const { code, json } = await admitJson(file);
    expect(code).toBe(3);
    const admitted = (json as Array<{ review: { response: { uid: string }; nadguard?: unknown } }>).map(({ review: { nadguard: _, ...review } }) => review);
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

  it("exits 0 on SIGTERM, its drain logged as JSON on stdout like everything else", async () => {
    server.kill("SIGTERM");
    expect(await exited(server)).toBe(0);
    const lines = printed.stdout.trimEnd().split("\n").map((line) => JSON.parse(line) as { msg: string });
    expect(lines.at(-1)).toMatchObject({ msg: "drain finished: server closed" });
  });

  it("reuses its development certificate when started again on the same --certs-dir by npm start's command", async () => {
    const before = await readFile(join(certsDir, "tls.crt"));
    const { scripts } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { scripts: { start: string } };
    const [node, ...args] = scripts.start.split(" ");
    expect(node).toBe("node");
    const again = startServer(["--listen", "127.0.0.1:0", "--certs-dir", certsDir], { command: [process.execPath, ...args] });
    const againPort = await again.ready;
    expect(again.output.stderr.split("\n")[0]).toBe(`reusing the development CA and serving certificate in ${certsDir}`);
    expect(await readFile(join(certsDir, "tls.crt"))).toEqual(before);
    // The CA bundle copied from the first start still verifies the server after the restart.
    expect(new X509Certificate(before).verify(new X509Certificate(ca).publicKey)).toBe(true);
    expect(await healthz(againPort, ca)).toBe(200);
    again.child.kill("SIGTERM");
    expect(await exited(again.child)).toBe(0);
  });

  it("refuses a review body with more values than --max-body-values: a denial echoing its uid, or a 400 naming the limit", async () => {
    const limited = startServer(["--state", stateDir, "--listen", "127.0.0.1:0", "--certs-dir", certsDir, "--max-body-values", "40"]);
    const limitedPort = await limited.ready;
    try {
      // The example review holds 46 values (members and elements); the 40th is its container's name.
      const review = await readFile(join(EXAMPLES, "reviews", "pod-tenant-a-allowed.json"), "utf8");
      const denied = await postHttp1("/mutate", review, limitedPort);
      expect(denied.status).toBe(200);
      expect(denied.json).toEqual({
        apiVersion: "admission.k8s.io/v1",
        kind: "AdmissionReview",
        response: {
          uid: "0b7c3a52-6f1e-4c1a-9d7e-1a2b3c4d5e6f",
          allowed: false,
          status: { code: 400, reason: "BadRequest", message: "nadguard refused the review: the body has more than 40 values (members of objects and elements of arrays, all together) (at request.object.spec.containers[0].name)" },
          auditAnnotations: { "nadguard.io/reason": "too-many-values" },
        },
      });
      // Without a uid read before the limit: a 400 with the problem code and the same message.
      const bare = await postHttp1("/mutate", JSON.stringify({ items: Array.from({ length: 41 }, (_, i) => i) }), limitedPort);
      expect(bare.status).toBe(400);
      expect(bare.json).toEqual({
        code: "review.too-many-values",
        message: "the body has more than 40 values (members of objects and elements of arrays, all together) (at items[38])",
        problems: [{ code: "review.too-many-values", path: "items[38]", message: "the body has more than 40 values (members of objects and elements of arrays, all together) (at items[38])" }],
      });
      // 40 values are within the limit: the same body one element shorter is read (and is no review).
      const within = await postHttp1("/mutate", JSON.stringify({ items: Array.from({ length: 39 }, (_, i) => i) }), limitedPort);
      expect(within.status).toBe(400);
      expect(within.json).toMatchObject({ code: "review.malformed" });
    } finally {
      limited.child.kill("SIGTERM");
      expect(await exited(limited.child)).toBe(0);
    }
  });

  it.each([
    ["0", "--max-body-values 0: expected a whole number of at least 1"],
    ["many", "--max-body-values many: expected a whole number"],
  ])("refuses --max-body-values %s with one line and exit 2", async (value, message) => {
    const result = await nadguard(["webhook", "--state", join(EXAMPLES, "cluster"), "--listen", "127.0.0.1:0", "--certs-dir", join(dir, "unused-certs"), "--max-body-values", value]);
    expect({ code: result.code, out: result.out }).toEqual({ code: 2, out: "" });
    const [line, usage] = result.stderr.split("\n");
    expect(line).toBe(`nadguard webhook: ${message}`);
    expect(usage).toMatch(/^usage: nadguard webhook .* \[--max-body-values N\]$/);
  }, 90_000);

  it("refuses a port already in use with one line and exit 2, leaving --certs-dir as it was", async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen({ host: "127.0.0.1", port: 0 }, resolve));
    const busy = (holder.address() as { port: number }).port;
    // Files the webhook would replace if it got as far as the certificates.
    const kept = join(dir, "kept-certs");
    await mkdir(kept);
    for (const file of ["ca.crt", "tls.crt", "tls.key"]) await writeFile(join(kept, file), `not a certificate: ${file}\n`);
    try {
      const result = await nadguard(["webhook", "--state", join(EXAMPLES, "cluster"), "--listen", `127.0.0.1:${busy}`, "--certs-dir", kept]);
      expect(result).toEqual({
        code: 2,
        out: "",
        stderr: `nadguard webhook: cannot listen on 127.0.0.1:${busy}: the address is already in use (another process listens there; choose another with --listen HOST:PORT)\n`,
      });
    } finally {
      holder.close();
    }
    for (const file of ["ca.crt", "tls.crt", "tls.key"]) expect(await readFile(join(kept, file), "utf8")).toBe(`not a certificate: ${file}\n`);
  }, 90_000);

  it("refuses a --state directory that does not exist with one line and exit 2", async () => {
    const missing = join(dir, "no-such-state");
    const result = await nadguard(["webhook", "--state", missing, "--listen", "127.0.0.1:0", "--certs-dir", join(dir, "unused-certs")]);
    expect(result).toEqual({ code: 2, out: "", stderr: `nadguard webhook: --state ${missing}: no such directory\n` });
  }, 90_000);
});

describe("nadguard admit", () => {
  const admit = (...args: string[]) => nadguard(["admit", ...args]);
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
        "access:",
        `  net1   tenant-a/macvlan-data         allowed: in the pod's own namespace tenant-a (authorization mode "rbac")`,
        "  fast0  shared-networks/sriov-shared  allowed by RoleBinding shared-networks/tenant-a-uses-shared-networks → ClusterRole nadguard:nad-user, " +
          "granted to the pod's service account system:serviceaccount:tenant-a:default",
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
        "NetworkAttachmentDefinitions in namespace tenant-b: ipvlan-storage, sriov-fast\n" +
        "\n" +
        "access:\n" +
        "  stor0  tenant-b/storage  missing: NetworkAttachmentDefinition tenant-b/storage does not exist\n",
    );
  });

  it.each([
    [["nope.yaml", ...state], /nope\.yaml: cannot read/],
    [[join(EXAMPLES, "pods", "tenant-a-web.yaml")], /--state is required/],
    [[join(EXAMPLES, "pods", "tenant-a-web.yaml"), ...state, "--output", "xml"], /--output xml: expected json or human/],
    [[join(EXAMPLES, "pods", "tenant-a-web.yaml"), ...state, "--bogus"], /^nadguard: unknown option --bogus for 'nadguard admit'\n/],
  ])("exits 2 on bad input or usage: %j", async (args, message) => {
    const { code, stderr } = await admit(...args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});

describe("nadguard's command line", () => {
  it.each([
    [["admit", "pod.yaml", "--sate", "examples/cluster"], "nadguard: unknown option --sate for 'nadguard admit'; did you mean --state?"],
    [["webhook", "--state", "examples/cluster", "--listne", "127.0.0.1:0"], "nadguard: unknown option --listne for 'nadguard webhook'; did you mean --listen?"],
    [["webhook", "--state", "examples/cluster", "127.0.0.1:9443"], `nadguard: unexpected argument "127.0.0.1:9443" for 'nadguard webhook': it takes options only`],
    [["render", "--state", "examples/cluster", "--pod"], "nadguard render: --pod needs a value (--pod=VALUE when the value starts with -)"],
    [["admti"], "nadguard: unknown command admti; did you mean admit?"],
  ])("exits 2 naming the argument it does not know: %j", async (args, line) => {
    const { code, out, stderr } = await nadguard(args);
    expect({ code, out, first: stderr.split("\n")[0] }).toEqual({ code: 2, out: "", first: line });
  });

  it("prints a help page from README for COMMAND --help: every option with its default, the exit codes, an example", async () => {
    const { code, out } = await nadguard(["admit", "--help"]);
    expect(code).toBe(0);
    expect(out).toContain("\noptions:\n  --state DIR or --kube\n      state directory; or the cluster: its objects listed once, cross-namespace use authorized by\n");
    expect(out).toContain("\n  --config FILE\n      configuration file\n      default: built-in defaults\n");
    expect(out).toContain("\nexit codes: 0 allowed, 3 denied, 2 usage error or bad input, 1 anything else.\n");
    expect(out).toContain("\nexample:\n  npx nadguard admit examples/pods/tenant-a-web.yaml --state examples/cluster --as alice\n");
  });

  it("prints package.json's version for --version", async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(await nadguard(["--version"])).toEqual({ code: 0, out: `${version}\n`, stderr: "" });
  });
});

/** `nadguard ARGS` run to its end, as a user runs it (cwd: the package root). */
async function nadguard(args: string[]): Promise<{ code: number; out: string; stderr: string }> {
  try {
    const { stdout: out, stderr } = await run(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 });
    return { code: 0, out, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout, stderr: failed.stderr };
  }
}

/** GET /healthz's status on 127.0.0.1:PORT, trusting only `ca`. */
function healthz(serverPort: number, trusted: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpsRequest({ host: "127.0.0.1", port: serverPort, path: "/healthz", ca: trusted }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode!));
    })
      .on("error", reject)
      .end();
  });
}
