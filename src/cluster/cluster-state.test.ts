// The state directory as the webhook follows it: faults keep the last good version, say where, are
// counted, and bursts of files make one snapshot.
import { mkdir, mkdtemp, rename, rm, stat, symlink, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { formatProblem } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import { type ClusterState, stateDirSource } from "./cluster-state.js";

let dir: string;
let source: ClusterState | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-state-"));
});
afterEach(async () => {
  await source?.stop();
  source = undefined;
  await rm(dir, { recursive: true, force: true });
});

const NAD = (ns: string, name: string) => `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: ${name}, namespace: ${ns} }
spec: { config: '{"type":"macvlan"}' }
`;

const GRANT = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: use-nads, namespace: shared }
rules: [{ apiGroups: [k8s.cni.cncf.io], resources: [network-attachment-definitions], verbs: [use] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: tenant-b-uses-nads, namespace: shared }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: use-nads }
subjects: [{ kind: ServiceAccount, name: default, namespace: tenant-b }]
`;

/** Replaces a file as editors and kubectl do: a new file renamed over the old one (one event). */
async function replace(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

interface Followed {
  source: ClusterState;
  registry: Registry;
  logs: string[];
  /** The next published snapshot that satisfies `test`. */
  until(test: (snapshot: Snapshot) => boolean): Promise<Snapshot>;
}

async function follow(options: { debounceMs?: number; maxDelayMs?: number } = {}): Promise<Followed> {
  const registry = new Registry();
  const logs: string[] = [];
  const started = stateDirSource(dir, { debounceMs: 20, pollIntervalMs: 50, ...options, registry, log: (line) => logs.push(line) });
  source = started;
  await started.start();
  return {
    source: started,
    registry,
    logs,
    until: (test) =>
      new Promise((resolve) => {
        const stop = started.subscribe((snapshot) => {
          if (!test(snapshot)) return;
          stop();
          resolve(snapshot);
        });
      }),
  };
}

async function errorsCounted(registry: Registry): Promise<string[]> {
  const text = await registry.getSingleMetricAsString("nadguard_state_file_errors_total");
  return text.split("\n").filter((line) => line.startsWith("nadguard_state_file_errors_total{"));
}

const faultOf = (snapshot: Snapshot, path: string) => snapshot.stateFaults?.find((fault) => fault.path === path);

describe("stateDirSource keeps the last good version of a file", () => {
  it("when invalid YAML is written over it: grants stay, the problem is reported and counted", async () => {
    await writeFile(join(dir, "grant.yaml"), GRANT);
    await writeFile(join(dir, "nads.yaml"), NAD("shared", "bridge"));
    const { source: followed, registry, until } = await follow();
    const broken = until((s) => faultOf(s, "grant.yaml") !== undefined);
    await replace(join(dir, "grant.yaml"), "kind: RoleBinding\nmetadata: { name: [unclosed\n");
    const snapshot = await broken;

    expect(snapshot.rbac.roleBindings.map((b) => b.metadata.name)).toEqual(["tenant-b-uses-nads"]);
    expect([...snapshot.rbac.roles.keys()]).toEqual(["shared/use-nads"]);
    expect(snapshot.problems.map(formatProblem)).toEqual([
      expect.stringMatching(/^grant\.yaml: is not valid YAML: .* at line 3, column 1; its last good version stays in use$/),
    ]);
    expect(faultOf(snapshot, "grant.yaml")).toEqual({
      path: "grant.yaml",
      kind: "invalid-yaml",
      reason: "not valid YAML at line 3, column 1",
      lastGoodInUse: true,
      holds: [
        { kind: "Role", namespace: "shared" },
        { kind: "RoleBinding", namespace: "shared" },
      ],
    });
    expect(await errorsCounted(registry)).toEqual(['nadguard_state_file_errors_total{reason="invalid-yaml"} 1']);
    expect(followed.ready()).toBe(true);

    // Fixed: the new version is in use and the fault is gone.
    const fixed = until((s) => faultOf(s, "grant.yaml") === undefined);
    await replace(join(dir, "grant.yaml"), GRANT.replace("tenant-b-uses-nads", "tenant-c-uses-nads"));
    expect((await fixed).rbac.roleBindings.map((b) => b.metadata.name)).toEqual(["tenant-c-uses-nads"]);
  });

  it("when a new version holds an invalid object", async () => {
    await writeFile(join(dir, "nads.yaml"), NAD("t", "one"));
    const { registry, until } = await follow();
    const broken = until((s) => faultOf(s, "nads.yaml") !== undefined);
    await replace(join(dir, "nads.yaml"), `${NAD("t", "two")}---\nkind: NetworkAttachmentDefinition\nmetadata: { name: three, namespace: t }\nspec: { config: 7 }\n`);
    const snapshot = await broken;
    expect([...snapshot.nads.keys()]).toEqual(["t/one"]);
    expect(faultOf(snapshot, "nads.yaml")).toMatchObject({
      kind: "invalid-object",
      reason: expect.stringMatching(/^an invalid object at nads\.yaml#2 \(NetworkAttachmentDefinition three\): spec\.config: /),
    });
    expect(await errorsCounted(registry)).toEqual(['nadguard_state_file_errors_total{reason="invalid-object"} 1']);
  });

  it("when the file is truncated in the middle of an object", async () => {
    await writeFile(join(dir, "grant.yaml"), GRANT);
    const { registry, until } = await follow();
    const cut = until((s) => faultOf(s, "grant.yaml") !== undefined);
    await truncate(join(dir, "grant.yaml"), GRANT.indexOf("roleRef"));
    const snapshot = await cut;
    expect(snapshot.rbac.roleBindings.map((b) => b.metadata.name)).toEqual(["tenant-b-uses-nads"]);
    expect(faultOf(snapshot, "grant.yaml")).toMatchObject({ kind: "invalid-object", lastGoodInUse: true });
    expect(await errorsCounted(registry)).toEqual(['nadguard_state_file_errors_total{reason="invalid-object"} 1']);

    // Objects commented out are an edit, not a cut: they go.
    const edited = until((s) => faultOf(s, "grant.yaml") === undefined);
    await replace(join(dir, "grant.yaml"), GRANT.replace(/^/gm, "# "));
    expect((await edited).rbac.roleBindings).toEqual([]);
  });

  it("while a writer has emptied the file and not yet written it (`kubectl get … > file`); an empty file that stays is an edit", async () => {
    const path = join(dir, "grant.yaml");
    await writeFile(path, GRANT);
    const { source: followed, until } = await follow();
    const bindings: string[][] = [];
    followed.subscribe((s) => bindings.push(s.rbac.roleBindings.map((b) => b.metadata.name!)));
    const written = until((s) => s.rbac.roleBindings.some((b) => b.metadata.name === "tenant-c-uses-nads"));
    await truncate(path, 0);
    // The writer waits for its data: longer than the debounce and the poll, shorter than the 2 s hold.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await writeFile(path, GRANT.replace("tenant-b-uses-nads", "tenant-c-uses-nads"));
    await written;
    expect(bindings.every((names) => names.length === 1)).toBe(true);

    const emptied = until((s) => s.rbac.roleBindings.length === 0);
    await truncate(path, 0);
    const empty = await emptied;
    expect([...empty.rbac.roles.keys()]).toEqual([]);
    expect(empty.stateFaults).toEqual([]);
    expect(empty.problems).toEqual([]);
  });

  it("when the file is cut inside a NAD's config, which YAML and the schema still accept", async () => {
    const block = (name: string) => `kind: NetworkAttachmentDefinition\nmetadata: { name: ${name}, namespace: t }\nspec:\n  config: |\n    { "cniVersion": "1.0.0", "type": "macvlan" }\n`;
    const text = `${block("one")}---\n${block("two")}`;
    await writeFile(join(dir, "nads.yaml"), text);
    const { until } = await follow();
    const cut = until((s) => faultOf(s, "nads.yaml") !== undefined);
    await truncate(join(dir, "nads.yaml"), text.indexOf('"type"'));
    const snapshot = await cut;
    expect([...snapshot.nads.keys()]).toEqual(["t/one", "t/two"]);
    expect(snapshot.problems.map(formatProblem)).toEqual([
      "nads.yaml (NetworkAttachmentDefinition one): spec.config is not valid JSON any more (a half-written file?); its last good version stays in use",
    ]);
  });

  it("when the file is replaced by rename with one it cannot read (a link to a missing file)", async () => {
    // Root reads a file whatever its mode; what root cannot read is a link whose target is gone.
    await writeFile(join(dir, "nads.yaml"), NAD("t", "one"));
    const { registry, until } = await follow();
    const broken = until((s) => faultOf(s, "nads.yaml") !== undefined);
    await symlink(join(dir, "gone.yaml"), join(dir, "nads.yaml.tmp"));
    await rename(join(dir, "nads.yaml.tmp"), join(dir, "nads.yaml"));
    const snapshot = await broken;
    expect([...snapshot.nads.keys()]).toEqual(["t/one"]);
    expect(faultOf(snapshot, "nads.yaml")).toMatchObject({ kind: "unreadable", reason: "it is a link to a missing file", lastGoodInUse: true });
    expect(snapshot.problems.map(formatProblem)).toEqual([expect.stringMatching(/^nads\.yaml: cannot read: ENOENT: .*; its last good version stays in use$/)]);
    expect(await errorsCounted(registry)).toEqual(['nadguard_state_file_errors_total{reason="unreadable"} 1']);

    const back = until((s) => faultOf(s, "nads.yaml") === undefined);
    await writeFile(join(dir, "gone.yaml"), NAD("t", "two"));
    expect([...(await back).nads.keys()]).toEqual(["t/two"]);
  });
});

describe("stateDirSource sees content changes", () => {
  it("reads a version renamed over the file with the same size and modification time", async () => {
    const path = join(dir, "nads.yaml");
    await writeFile(path, NAD("t", "one"));
    const before = await stat(path);
    const { until } = await follow();
    const next = until((s) => s.nads.has("t/two"));
    await writeFile(`${path}.tmp`, NAD("t", "two"));
    await utimes(`${path}.tmp`, before.atime, before.mtime);
    await rename(`${path}.tmp`, path);
    expect([...(await next).nads.keys()]).toEqual(["t/two"]);
    expect((await stat(path)).size).toBe(before.size);
  });

  it("re-parses only the files that changed", async () => {
    await writeFile(join(dir, "a.yaml"), NAD("t", "one"));
    await writeFile(join(dir, "b.yaml"), NAD("t", "two"));
    const { source: followed, until } = await follow();
    const first = followed.current()!;
    const next = until((s) => s.nads.has("t/three"));
    await replace(join(dir, "b.yaml"), NAD("t", "three"));
    const snapshot = await next;
    // The unchanged file's object is the very object of the previous snapshot: it was not parsed again.
    expect(snapshot.nads.get("t/one")).toBe(first.nads.get("t/one"));
    expect(snapshot.version).toBe(first.version + 1);
  });

  it("makes one snapshot of 1,000 files added at once, holding all of them", async () => {
    await writeFile(join(dir, "base.yaml"), NAD("t", "base"));
    const staging = await mkdtemp(join(tmpdir(), "nadguard-staging-"));
    try {
      const names = Array.from({ length: 1000 }, (_, i) => `n${i}`);
      await Promise.all(names.map((name) => writeFile(join(staging, `${name}.yaml`), NAD(`t${name.length}`, name))));
      // However long the burst takes on a busy machine, it is one burst.
      const { source: followed, registry } = await follow({ debounceMs: 200, maxDelayMs: 60_000 });
      const before = followed.current()!.version;
      const published: Snapshot[] = [];
      const grown = new Promise<void>((resolve) =>
        followed.subscribe((s) => {
          published.push(s);
          if (s.nads.size === 1001) resolve();
        }),
      );
      await Promise.all(names.map((name) => rename(join(staging, `${name}.yaml`), join(dir, `${name}.yaml`))));
      await grown;
      expect(published.map((s) => [s.version, s.nads.size])).toEqual([[before + 1, 1001]]);
      expect(await registry.getSingleMetricAsString("nadguard_state_reloads_total")).toMatch(/^nadguard_state_reloads_total 2$/m);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  });

  it("follows files in subdirectories made after the start", async () => {
    await writeFile(join(dir, "a.yaml"), NAD("t", "one"));
    const { until } = await follow();
    const next = until((s) => s.nads.has("t/deep"));
    await mkdir(join(dir, "sub", "deeper"), { recursive: true });
    await writeFile(join(dir, "sub", "deeper", "b.yaml"), NAD("t", "deep"));
    expect([...(await next).nads.keys()]).toEqual(["t/one", "t/deep"]);
  });
});

describe("stateDirSource readiness", () => {
  it("is not ready while the directory is removed, keeping the last good state, and ready when it is back", async () => {
    await writeFile(join(dir, "nads.yaml"), NAD("t", "one"));
    const { source: followed, registry, logs, until } = await follow();
    expect(followed.ready()).toBe(true);
    const gone = until((s) => faultOf(s, "") !== undefined);
    await rm(dir, { recursive: true });
    const snapshot = await gone;
    expect(followed.ready()).toBe(false);
    expect([...snapshot.nads.keys()]).toEqual(["t/one"]);
    expect(faultOf(snapshot, "")).toEqual({ path: "", kind: "directory", reason: "cannot be read: it does not exist", lastGoodInUse: true, holds: undefined });
    expect(logs).toEqual([`not ready: the state directory ${dir} cannot be read: it does not exist`]);
    expect(await errorsCounted(registry)).toEqual(['nadguard_state_file_errors_total{reason="directory"} 1']);

    const back = until((s) => s.nads.has("t/two"));
    await mkdir(dir);
    await writeFile(join(dir, "nads.yaml"), NAD("t", "two"));
    expect([...(await back).nads.keys()]).toEqual(["t/two"]);
    expect(followed.ready()).toBe(true);
    expect(logs.at(-1)).toBe(`ready: ${dir} loads again`);
  });

  it("is not ready while no file loads: an empty directory, then only a broken file", async () => {
    const { source: followed, logs, until } = await follow();
    expect(followed.ready()).toBe(false);
    expect(logs).toEqual([`not ready: the state directory ${dir} holds no state file`]);
    const broken = until((s) => faultOf(s, "bad.yaml") !== undefined);
    await replace(join(dir, "bad.yaml"), "kind: [unclosed\n");
    await broken;
    expect(followed.ready()).toBe(false);
    const good = until((s) => s.nads.has("t/one"));
    await replace(join(dir, "good.yaml"), NAD("t", "one"));
    await good;
    expect(followed.ready()).toBe(true);
  });

  it("refuses to start on a directory that does not exist, naming it", async () => {
    const missing = join(dir, "nope");
    source = stateDirSource(missing);
    await expect(source.start()).rejects.toThrow(`${missing}: cannot read the state directory: ENOENT: no such file or directory, scandir '${missing}'`);
  });
});
