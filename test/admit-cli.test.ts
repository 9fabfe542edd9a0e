// `nadguard admit` as a CI pipeline runs it, a process per file: manifests read as kubectl reads
// them (merge keys, duplicate keys, lists, several documents), one verdict line per object, pod
// templates of workloads, exit 3 when anything is denied and 2 on bad input naming where it is.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "nadguard.js");
const EXAMPLES = join(import.meta.dirname, "..", "examples");
const FIXTURES = join(import.meta.dirname, "fixtures", "manifests");
const STATE = ["--state", join(EXAMPLES, "cluster")];

interface Outcome {
  code: number;
  out: string;
  stderr: string;
}

async function admit(...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, "admit", ...args, ...STATE]);
    return { code: 0, out: stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, out: failed.stdout, stderr: failed.stderr };
  }
}

/** `admit -` with `input` on standard input. */
function admitStdin(input: string, ...args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "admit", "-", ...args, ...STATE], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out, stderr }));
    child.stdin.end(input);
  });
}

const fixture = (name: string): string => join(FIXTURES, name);
const verdictLines = (out: string): string[] => out.split("\n").filter((line) => /^(ALLOWED|DENIED)/.test(line));
const FORBIDDEN_DB =
  'pod tenant-b/db: element 1 ("shared-networks/bridge-shared"): may not use NetworkAttachmentDefinition shared-networks/bridge-shared: ' +
  "it is not in the pod's namespace tenant-b";

describe("nadguard admit reads manifests as kubectl does", () => {
  it("a merge key placed after the annotation supplies it, as in kubectl's object: denied, exit 3, with a warning", async () => {
    const file = fixture("merge-key.yaml");
    const { code, out, stderr } = await admit(file);
    expect(code).toBe(3);
    expect(out.split("\n").slice(0, 2)).toEqual(["DENIED (network-forbidden)", expect.stringMatching(new RegExp(`^${escape(FORBIDDEN_DB)}`))]);
    expect(stderr).toBe(`warning: ${file}:13: the merge key << replaces "k8s.v1.cni.cncf.io/networks" set at line 12; kubectl keeps the merged value\n`);
  });

  it("a duplicated key: the last value is judged (allowed here), with a warning naming the key and its lines", async () => {
    const file = fixture("duplicate-key.yaml");
    const { code, out, stderr } = await admit(file);
    expect({ code, out }).toEqual({
      code: 0,
      out: [
        "ALLOWED",
        "",
        "attachments:",
        "  INTERFACE  NETWORK                  CNI TYPE  RESOURCE",
        "  net1       tenant-b/ipvlan-storage  ipvlan",
        "",
        "access:",
        `  net1  tenant-b/ipvlan-storage  allowed: in the pod's own namespace tenant-b (authorization mode "rbac")`,
        "",
      ].join("\n"),
    });
    expect(stderr).toBe(`warning: ${file}:9: duplicate key "k8s.v1.cni.cncf.io/networks" (also at line 8); the last value wins, as in kubectl\n`);
  });

  it("a kind: List: one verdict line per item, the denial under its item, a count, exit 3", async () => {
    const file = fixture("list.yaml");
    const { code, out } = await admit(file);
    expect(code).toBe(3);
    expect(verdictLines(out)).toEqual([
      `ALLOWED  Pod tenant-a/web  (${file}:5, items[0])`,
      `DENIED (network-forbidden)  Pod tenant-b/db  (${file}:16, items[1])`,
    ]);
    const lines = out.split("\n");
    expect(lines[lines.indexOf(verdictLines(out)[1]!) + 1]).toMatch(/^ {2}pod tenant-b\/db: element 2 \("shared-networks\/bridge-shared"\): may not use/);
    expect(lines.at(-2)).toBe("2 objects: 1 allowed, 1 denied");
  });

  it("several documents: each object judged on its own, kinds nadguard does not read said so", async () => {
    const file = fixture("multi-document.yaml");
    const { code, out } = await admit(file);
    expect(code).toBe(3);
    expect(verdictLines(out)).toEqual([
      `ALLOWED  ConfigMap tenant-a/web-settings (not checked by nadguard)  (${file}:2, document 1)`,
      `DENIED (invalid-nad)  NetworkAttachmentDefinition tenant-a/storage  (${file}:10, document 2)`,
      `ALLOWED  Pod tenant-a/web  (${file}:20, document 4)`,
    ]);
    expect(out).toContain('\n  NetworkAttachmentDefinition tenant-a/storage: spec.config.mode: "sideways" is not a macvlan mode; use bridge, private, vepa or passthru\n');
  });

  it("--output json for several objects: an array, each entry with its place and the AdmissionReview /mutate would answer", async () => {
    const file = fixture("list.yaml");
    const { code, out } = await admit(file, "--output", "json");
    expect(code).toBe(3);
    const entries = JSON.parse(out) as Array<Record<string, unknown> & { review: { kind: string; response: { allowed: boolean; status?: { message: string } } } }>;
    expect(entries.map(({ review, ...entry }) => ({ ...entry, kind: review.kind, allowed: review.response.allowed }))).toEqual([
      { source: `${file}:5`, document: 1, item: 0, kind: "AdmissionReview", namespace: "tenant-a", name: "web", checked: true, allowed: true },
      { source: `${file}:16`, document: 1, item: 1, kind: "AdmissionReview", namespace: "tenant-b", name: "db", checked: true, allowed: false },
    ]);
    expect(entries[1]!.review.response.status!.message).toMatch(/^pod tenant-b\/db: element 2/);
  });

  it("reads standard input with -, naming it stdin", async () => {
    const { code, out } = await admitStdin(await readFile(fixture("list.yaml"), "utf8"));
    expect(code).toBe(3);
    expect(verdictLines(out)[0]).toBe("ALLOWED  Pod tenant-a/web  (stdin:5, items[0])");
  });

  it.each([
    [
      "a document without kind, and invalid YAML further down",
      "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\n---\napiVersion: v1\nmetadata: {name: kindless}\n---\nkind: [\n",
      ["stdin:5 (document 2): kind missing; kubectl refuses an object without them", /^stdin:\d+ \(document 3\): is not valid YAML: /],
    ],
    ["an AdmissionReview without its request", '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', ["stdin:1: request: Invalid input: expected object, received undefined"]],
  ])("exits 2 on bad input, naming every place: %s", async (_label, input, expected) => {
    const { code, out, stderr } = await admitStdin(input);
    expect(code).toBe(2);
    expect(out).toBe("");
    const lines = stderr.split("\n");
    expect(lines[0]).toBe("nadguard admit: bad input:");
    for (const [i, line] of expected.entries()) expect(lines[i + 1]).toMatch(typeof line === "string" ? new RegExp(`^${escape(line)}$`) : line);
  });
});

describe("nadguard admit on workloads: the pods they will create", () => {
  it("a Deployment whose template names a missing NAD: denied, exit 3, the verdict naming the Deployment and its template", async () => {
    const { code, out } = await admit(join(EXAMPLES, "workloads", "tenant-b-deployment.yaml"));
    expect({ code, out }).toEqual({
      code: 3,
      out:
        "DENIED (network-not-found)  Deployment tenant-b/batch (pod template spec.template)\n" +
        'Deployment tenant-b/batch (pod template spec.template): pod tenant-b/batch-<generated>: element 1 ("storage"): ' +
        "NetworkAttachmentDefinition tenant-b/storage does not exist; NetworkAttachmentDefinitions in namespace tenant-b: ipvlan-storage, sriov-fast\n" +
        "\n" +
        "access:\n" +
        "  net1  tenant-b/storage  missing: NetworkAttachmentDefinition tenant-b/storage does not exist\n",
    });
  });

  it("a CronJob: the template of its job template, allowed with the attachments its pods get", async () => {
    const { code, out } = await admit(join(EXAMPLES, "workloads", "tenant-a-cronjob.yaml"));
    expect({ code, out }).toEqual({
      code: 0,
      out: [
        "ALLOWED  CronJob tenant-a/report (pod template spec.jobTemplate.spec.template)",
        "",
        "attachments:",
        "  INTERFACE  NETWORK                       CNI TYPE  RESOURCE",
        "  fast0      shared-networks/sriov-shared  sriov     intel.com/sriov_vf_shared",
        "",
        "access:",
        "  fast0  shared-networks/sriov-shared  allowed by RoleBinding shared-networks/tenant-a-uses-shared-networks → ClusterRole nadguard:nad-user, " +
          "granted to the pod's service account system:serviceaccount:tenant-a:default",
        "",
      ].join("\n"),
    });
  });

  it("a CronJob in tenant-b using the shared network: denied, whoever applies it (its pods are created by the Job controller)", async () => {
    const cronJob = (await readFile(join(EXAMPLES, "workloads", "tenant-a-cronjob.yaml"), "utf8")).replace("namespace: tenant-a", "namespace: tenant-b");
    const { code, out } = await admitStdin(cronJob, "--as", "alice");
    expect(code).toBe(3);
    expect(out.split("\n")[0]).toBe("DENIED (network-forbidden)  CronJob tenant-b/report (pod template spec.jobTemplate.spec.template)");
    expect(out).toContain("system:serviceaccount:kube-system:job-controller");
  });

  it("the Deployment's AdmissionReview: the same denial, in the single AdmissionReview --output json prints for one object", async () => {
    const { code, out } = await admit(join(EXAMPLES, "reviews", "deployment-tenant-b-warned.json"), "--output", "json");
    expect(code).toBe(3);
    const { response } = JSON.parse(out) as { response: { uid: string; allowed: boolean; status: { message: string } } };
    expect(response.uid).toBe("9a1f3e52-7c4d-4b6a-8e2f-0c1d2e3f4a5b");
    expect(response.allowed).toBe(false);
    expect(response.status.message).toMatch(/^Deployment tenant-b\/batch \(pod template spec\.template\): pod tenant-b\/batch-<generated>: element 1 \("storage"\)/);
  });
});

describe("nadguard admit: per network, what granted its use or what was missing", () => {
  const SHARED_GRANT =
    "allowed by RoleBinding shared-networks/tenant-a-uses-shared-networks → ClusterRole nadguard:nad-user, " +
    "granted to the pod's service account system:serviceaccount:tenant-a:default";
  let dir: string;
  let isolation: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "nadguard-admit-trail-"));
    isolation = join(dir, "isolation.yaml");
    await writeFile(isolation, "authorization:\n  mode: namespace-isolation\n  globalNamespaces: [shared-networks]\n");
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const accessLines = (out: string): string[] => {
    const lines = out.split("\n");
    const start = lines.indexOf("access:");
    if (start < 0) return [];
    const end = lines.indexOf("", start);
    return lines.slice(start + 1, end < 0 ? undefined : end);
  };
  type Trail = { interfaceName: string; network: string; access: Record<string, unknown>; notFound?: boolean };
  const nadguardOf = (out: string) => (JSON.parse(out) as { nadguard: { attachments?: Trail[]; refused?: Trail[] } }).nadguard;

  it("rbac (offline): the own namespace, and the RoleBinding that granted the pod's service account the shared network", async () => {
    const { code, out } = await admit(join(EXAMPLES, "pods", "tenant-a-web.yaml"), "--as", "alice");
    expect(code).toBe(0);
    expect(accessLines(out)).toEqual([
      `  net1   tenant-a/macvlan-data         allowed: in the pod's own namespace tenant-a (authorization mode "rbac")`,
      `  fast0  shared-networks/sriov-shared  ${SHARED_GRANT}`,
    ]);
  });

  it("rbac (offline), --output json: each attachment's access under nadguard", async () => {
    const { code, out } = await admit(join(EXAMPLES, "pods", "tenant-a-web.yaml"), "--as", "alice", "--output", "json");
    expect(code).toBe(0);
    expect(nadguardOf(out).attachments!.map(({ interfaceName, network, access }) => ({ interfaceName, network, access }))).toEqual([
      {
        interfaceName: "net1",
        network: "tenant-a/macvlan-data",
        access: { allowed: true, mode: "rbac", reason: "own-namespace", summary: `allowed: in the pod's own namespace tenant-a (authorization mode "rbac")` },
      },
      {
        interfaceName: "fast0",
        network: "shared-networks/sriov-shared",
        access: {
          allowed: true,
          mode: "rbac",
          reason: "rbac",
          reviewer: "offline-rbac",
          grants: [{ subject: "system:serviceaccount:tenant-a:default", grantedBy: "RoleBinding shared-networks/tenant-a-uses-shared-networks → ClusterRole nadguard:nad-user" }],
          summary: SHARED_GRANT,
        },
      },
    ]);
  });

  it("rbac (offline), denied: the grant that was missing, in human output and JSON", async () => {
    const file = join(EXAMPLES, "pods", "tenant-b-db.yaml");
    const missing =
      'a grant of verb "use" on network-attachment-definitions.k8s.cni.cncf.io "bridge-shared" in namespace shared-networks to the requesting user ' +
      "alice (groups system:authenticated) or to the pod's service account system:serviceaccount:tenant-b:default";
    const human = await admit(file, "--as", "alice");
    expect(human.code).toBe(3);
    expect(accessLines(human.out)).toEqual([`  net2  shared-networks/bridge-shared  denied: missing ${missing}`]);
    const json = await admit(file, "--as", "alice", "--output", "json");
    expect(json.code).toBe(3);
    expect(nadguardOf(json.out)).toEqual({
      refused: [
        {
          interfaceName: "net2",
          network: "shared-networks/bridge-shared",
          notFound: false,
          missing,
          access: { allowed: false, mode: "rbac", reason: "rbac", missing, summary: `denied: missing ${missing}` },
        },
      ],
    });
  });

  it("namespace-isolation: the own namespace and the global namespace, in human output and JSON", async () => {
    const file = join(EXAMPLES, "pods", "tenant-a-web.yaml");
    const human = await admit(file, "--config", isolation);
    expect(human.code).toBe(0);
    expect(accessLines(human.out)).toEqual([
      `  net1   tenant-a/macvlan-data         allowed: in the pod's own namespace tenant-a (authorization mode "namespace-isolation")`,
      `  fast0  shared-networks/sriov-shared  allowed: shared-networks is a global namespace (authorization mode "namespace-isolation")`,
    ]);
    const json = await admit(file, "--config", isolation, "--output", "json");
    expect(nadguardOf(json.out).attachments!.map((a) => a.access)).toEqual([
      { allowed: true, mode: "namespace-isolation", reason: "own-namespace", summary: `allowed: in the pod's own namespace tenant-a (authorization mode "namespace-isolation")` },
      { allowed: true, mode: "namespace-isolation", reason: "global-namespace", summary: `allowed: shared-networks is a global namespace (authorization mode "namespace-isolation")` },
    ]);
  });

  it("namespace-isolation, denied: what the mode allows instead, whatever RBAC grants", async () => {
    const strict = join(dir, "strict.yaml");
    await writeFile(strict, "authorization:\n  mode: namespace-isolation\n");
    const file = join(EXAMPLES, "pods", "tenant-a-web.yaml");
    const missing = `authorization mode "namespace-isolation" allows only NADs of the pod's namespace tenant-a and of the global namespaces (none configured)`;
    const human = await admit(file, "--config", strict);
    expect(human.code).toBe(3);
    expect(accessLines(human.out)).toEqual([`  fast0  shared-networks/sriov-shared  denied: missing ${missing}`]);
    const json = await admit(file, "--config", strict, "--output", "json");
    expect(nadguardOf(json.out).refused!.map((r) => r.access)).toEqual([
      { allowed: false, mode: "namespace-isolation", reason: "namespace-isolation", missing, summary: `denied: missing ${missing}` },
    ]);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
