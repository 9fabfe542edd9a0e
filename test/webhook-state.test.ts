// `nadguard webhook` on a state directory that goes wrong while it serves, as the Deployment runs
// it: an unprivileged process (uid 65534 here; the Deployment's is 1000), so that a file made mode
// 000 really is unreadable to it — root reads any file whatever its mode. Each fault keeps the
// last good state in use, is logged and counted, and denials say which file could not be read.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rename, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getHttp1, postHttp2 } from "./support/webhook.js";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "nadguard.js");
const EXAMPLES = join(import.meta.dirname, "..", "examples");
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

let work: string;
let state: string;
let server: ChildProcess;
let port: number;
let ca: string;
let stderr = "";

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "nadguard-state-webhook-"));
  state = join(work, "state");
  const certs = join(work, "certs");
  await cp(join(EXAMPLES, "cluster"), state, { recursive: true });
  await mkdir(certs);
  await chmod(work, 0o755);
  if (isRoot) await chown(certs, NOBODY, NOBODY);
  const command = [BIN, "webhook", "--state", state, "--listen", "127.0.0.1:0", "--certs-dir", certs, "--log-level", "warn"];
  server = isRoot
    ? spawn("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", process.execPath, ...command], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(process.execPath, command, { stdio: ["ignore", "pipe", "pipe"] });
  // With development certificates the listening address is printed on stderr (stdout is the JSON log).
  port = await new Promise<number>((resolve, reject) => {
    server.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
      if (match) resolve(Number(match[1]));
    });
    // State problems are JSON log lines on stdout: their messages join stderr's lines for the checks.
    let partial = "";
    server.stdout!.on("data", (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const msg = (JSON.parse(line) as { msg?: string }).msg;
        if (msg !== undefined) stderr += `${msg}\n`;
      }
    });
    server.on("exit", (code) => reject(new Error(`webhook exited with ${code}: ${stderr}`)));
  });
  ca = await readFile(join(certs, "ca.crt"), "utf8");
}, 60_000);

afterAll(async () => {
  if (server?.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
  }
  await rm(work, { recursive: true, force: true });
});

let uid = 0;
/** The example tenant-a pod, asking for `networks`. */
async function review(networks: string): Promise<{ allowed: boolean; message: string | undefined; status: number }> {
  const body = JSON.parse(await readFile(join(EXAMPLES, "reviews", "pod-tenant-a-allowed.json"), "utf8"));
  body.request.uid = `5d1a6a3e-0000-4000-8000-${String(++uid).padStart(12, "0")}`;
  body.request.object.metadata.annotations["k8s.v1.cni.cncf.io/networks"] = networks;
  const response = await postHttp2(port, ca, "/mutate", body);
  const parsed = JSON.parse(response.body) as { response: { uid: string; allowed: boolean; status?: { message: string } } };
  expect(parsed.response.uid).toBe(body.request.uid);
  return { allowed: parsed.response.allowed, message: parsed.response.status?.message, status: response.status };
}

async function metric(line: RegExp): Promise<number> {
  const text = (await getHttp1(port, ca, "/metrics")).body;
  const found = text.split("\n").find((l) => line.test(l));
  return found ? Number(found.split(" ").at(-1)) : 0;
}

/** Waits (within the test's timeout) until `check` holds; returns its last value. */
async function eventually<T>(check: () => Promise<T>, holds: (value: T) => boolean): Promise<T> {
  for (;;) {
    const value = await check();
    if (holds(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const errors = (reason: string) => metric(new RegExp(`^nadguard_state_file_errors_total\\{reason="${reason}"\\} `));
const GRANTED = "macvlan-data, shared-networks/sriov-shared@fast0";

async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}

describe("nadguard webhook on a state directory that goes wrong", () => {
  it("is ready and grants the example pod", async () => {
    expect((await getHttp1(port, ca, "/readyz")).status).toBe(200);
    expect(await review(GRANTED)).toMatchObject({ status: 200, allowed: true });
  });

  it("keeps the grants of a file overwritten with invalid YAML, logs and counts it", async () => {
    const rbac = join(state, "rbac.yaml");
    const good = await readFile(rbac, "utf8");
    await replace(rbac, good.replace("kind: RoleBinding", "kind: RoleBinding\nmetadata: [unclosed"));
    await eventually(() => errors("invalid-yaml"), (n) => n === 1);
    expect(await review(GRANTED)).toMatchObject({ status: 200, allowed: true });
    expect(stderr).toMatch(/^state: rbac\.yaml#2: is not valid YAML: .*; its last good version stays in use$/m);
    expect((await getHttp1(port, ca, "/readyz")).status).toBe(200);
    await replace(rbac, good);
    await eventually(() => metric(/^nadguard_state_files_failing /), (n) => n === 0);
  });

  it("keeps the NADs of a truncated file and says so when a NAD of its namespace is missing", async () => {
    const nads = join(state, "nads-shared.yaml");
    const good = await readFile(nads, "utf8");
    // Cut inside the first NAD's config, as a writer that died half-way (disk full) leaves it.
    await truncate(nads, good.indexOf('"type": "sriov"'));
    await eventually(() => metric(/^nadguard_state_files_failing /), (n) => n === 1);
    expect(await review(GRANTED)).toMatchObject({ allowed: true });
    const denied = await review("shared-networks/sriov-new");
    expect(denied.allowed).toBe(false);
    expect(denied.message).toContain(
      "NetworkAttachmentDefinition shared-networks/sriov-new does not exist (state file nads-shared.yaml could not be read: an invalid object at nads-shared.yaml (NetworkAttachmentDefinition sriov-shared): spec.config is not valid JSON any more (a half-written file?); its last good version is in use)",
    );
    await replace(nads, good);
    await eventually(() => metric(/^nadguard_state_files_failing /), (n) => n === 0);
  });

  it("notices a file replaced by rename and then made unreadable (mode 000)", async () => {
    const nads = join(state, "nads-tenant-a.yaml");
    const good = await readFile(nads, "utf8");
    const before = await errors("unreadable");
    await writeFile(`${nads}.tmp`, good);
    await rename(`${nads}.tmp`, nads);
    await chmod(nads, 0o000);
    await eventually(() => errors("unreadable"), (n) => n === before + 1);
    expect(stderr).toMatch(/^state: nads-tenant-a\.yaml: cannot read: EACCES: permission denied, open '.*'; its last good version stays in use$/m);
    expect(await review(GRANTED)).toMatchObject({ allowed: true });
    expect((await review("bridge-new")).message).toContain(
      "NetworkAttachmentDefinition tenant-a/bridge-new does not exist (state file nads-tenant-a.yaml could not be read: permission denied; its last good version is in use)",
    );
    await chmod(nads, 0o644);
    await eventually(() => metric(/^nadguard_state_files_failing /), (n) => n === 0);
  });

  it("is not ready while the directory is gone, answering from the last good state, and ready when it is back", async () => {
    const away = join(work, "away");
    await rename(state, away);
    await eventually(() => getHttp1(port, ca, "/readyz"), (r) => r.status === 503);
    expect(stderr).toContain(`state: not ready: the state directory ${state} cannot be read: it does not exist`);
    expect(await errors("directory")).toBe(1);
    expect(await review(GRANTED)).toMatchObject({ status: 200, allowed: true });
    expect((await review("bridge-new")).message).toContain(
      "does not exist (the state directory cannot be read: it does not exist; its last good state is in use)",
    );
    await rename(away, state);
    await eventually(() => getHttp1(port, ca, "/readyz"), (r) => r.status === 200);
  });

  it("takes 1,000 files added at once in one reload, answering reviews meanwhile", async () => {
    const staging = join(work, "staging");
    await mkdir(staging);
    const nad = (i: number) =>
      `apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata: { name: bulk-${i}, namespace: tenant-a }\nspec: { config: '{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}' }\n`;
    await Promise.all(Array.from({ length: 1000 }, (_, i) => writeFile(join(staging, `bulk-${i}.yaml`), nad(i))));
    // Past one poll (2 s) since the last change, so that no reload of the tests before is pending.
    const quiet = async () => {
      const before = await metric(/^nadguard_state_reloads_total /);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      return before === (await metric(/^nadguard_state_reloads_total /)) ? before : undefined;
    };
    const reloads = await eventually(quiet, (n) => n !== undefined);

    const answers: boolean[] = [];
    let adding = true;
    const reviewing = (async () => {
      while (adding) answers.push((await review(GRANTED)).allowed);
    })();
    await run("sh", ["-c", 'mv "$0"/*.yaml "$1"/', staging, state]);
    await eventually(() => review("bulk-999"), (r) => r.allowed);
    adding = false;
    await reviewing;

    expect(await metric(/^nadguard_state_reloads_total /)).toBe(reloads! + 1);
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every(Boolean)).toBe(true);
    expect(await review("bulk-0, bulk-500")).toMatchObject({ allowed: true });
  });
});

describe("one-shot commands and a start on a missing directory", () => {
  const nadguard = async (...args: string[]) => {
    try {
      const { stdout, stderr: err } = await run(process.execPath, [BIN, ...args]);
      return { code: 0, out: stdout, err };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, out: failed.stdout, err: failed.stderr };
    }
  };

  it("admit reports an unreadable state file on stderr and says the missing NAD may be in it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "nadguard-state-admit-"));
    try {
      await cp(join(EXAMPLES, "cluster"), dir, { recursive: true });
      await symlink(join(dir, "gone.yaml"), join(dir, "nads-tenant-b-extra.yaml"));
      const { code, out, err } = await nadguard("admit", join(EXAMPLES, "pods", "tenant-b-missing.yaml"), "--state", dir);
      expect(code).toBe(3);
      expect(err).toBe(`state: nads-tenant-b-extra.yaml: cannot read: ENOENT: no such file or directory, stat '${join(dir, "nads-tenant-b-extra.yaml")}'\n`);
      expect(out).toBe(
        "DENIED (network-not-found)\n" +
          'pod tenant-b/batch: element 1 ({"name":"storage","interface":"stor0"}): NetworkAttachmentDefinition tenant-b/storage does not exist ' +
          "(state file nads-tenant-b-extra.yaml could not be read: it is a link to a missing file, so this NetworkAttachmentDefinition may exist); " +
          "NetworkAttachmentDefinitions in namespace tenant-b: ipvlan-storage, sriov-fast\n" +
          "\n" +
          "access:\n" +
          "  stor0  tenant-b/storage  missing: NetworkAttachmentDefinition tenant-b/storage does not exist " +
          "(state file nads-tenant-b-extra.yaml could not be read: it is a link to a missing file, so this NetworkAttachmentDefinition may exist)\n",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("webhook exits 2 naming a state directory that does not exist", async () => {
    const missing = join(tmpdir(), "nadguard-no-such-state-dir");
    const { code, err } = await nadguard("webhook", "--state", missing, "--listen", "127.0.0.1:0");
    expect(code).toBe(2);
    expect(err).toBe(`nadguard webhook: --state ${missing}: no such directory\n`);
  });
});
