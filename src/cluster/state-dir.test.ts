import { mkdtemp, mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { stateDirSource } from "./cluster-state.js";
import { formatProblem } from "../api/errors.js";
import { loadStateDir } from "./state-dir.js";
import { missingObjectNote } from "../api/state-faults.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "nadguard-state-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const NAD = (ns: string, name: string) => `apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: ${name}, namespace: ${ns} }
spec: { config: '{"type":"macvlan"}' }
`;

describe("loadStateDir", () => {
  it("reads multi-document YAML, JSON and kind: List below the folder, recursively", async () => {
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "a.yaml"), `${NAD("t1", "one")}---\n${NAD("t1", "two")}---\n`);
    await writeFile(join(dir, "sub", "b.json"), JSON.stringify({ kind: "List", items: [JSON.parse(JSON.stringify({ kind: "Namespace", metadata: { name: "t2", labels: { team: "x" } } }))] }));
    await writeFile(join(dir, "notes.txt"), "not read");
    const snapshot = await loadStateDir(dir);
    expect([...snapshot.nads.keys()]).toEqual(["t1/one", "t1/two"]);
    expect(snapshot.nadNamesByNamespace.get("t1")).toEqual(["one", "two"]);
    expect(snapshot.namespaces.get("t2")?.metadata.labels).toEqual({ team: "x", "kubernetes.io/metadata.name": "t2" });
    // A namespace only referenced by its objects exists too, with the label the API server sets.
    expect(snapshot.namespaces.get("t1")?.metadata.labels).toEqual({ "kubernetes.io/metadata.name": "t1" });
    expect(snapshot.problems).toEqual([]);
  });

  it("puts namespaced objects without a namespace into default", async () => {
    await writeFile(join(dir, "a.yaml"), "kind: NetworkAttachmentDefinition\nmetadata: { name: n }\n");
    expect([...(await loadStateDir(dir)).nads.keys()]).toEqual(["default/n"]);
  });

  it("reports a bad file with its path and keeps the good ones", async () => {
    await writeFile(join(dir, "good.yaml"), NAD("t1", "ok"));
    await writeFile(join(dir, "broken.yaml"), "kind: [unclosed\n");
    await writeFile(join(dir, "invalid.yaml"), `${NAD("t1", "fine")}---\nkind: Pod\nmetadata: { name: p, namespace: t1 }\nspec: { containers: 3 }\n`);
    const snapshot = await loadStateDir(dir);
    expect([...snapshot.nads.keys()]).toEqual(["t1/ok", "t1/fine"]);
    expect(snapshot.problems.map((p) => [p.code, p.path])).toEqual([
      ["state.yaml", "broken.yaml"],
      ["state.invalid", "invalid.yaml#2 (Pod p): spec.containers"],
    ]);
    expect(snapshot.problems[1]!.message).toMatch(/expected array/);
  });

  it("notes kinds it does not read, objects without a name and duplicates", async () => {
    await writeFile(
      join(dir, "a.yaml"),
      `kind: ConfigMap\nmetadata: { name: c }\n---\nkind: Namespace\nmetadata: {}\n---\n${NAD("t", "x")}---\n${NAD("t", "x")}`,
    );
    const snapshot = await loadStateDir(dir);
    expect(snapshot.problems.map((p) => `${p.code} ${p.path}: ${p.message}`)).toEqual([
      "state.kind-ignored a.yaml#1: kind ConfigMap is not read by nadguard; ignored",
      "state.no-name a.yaml#2 (Namespace): has no metadata.name; skipped",
      "state.duplicate a.yaml#4 (NetworkAttachmentDefinition x): duplicates NetworkAttachmentDefinition/t/x already defined at a.yaml#3 (NetworkAttachmentDefinition x); ignored",
    ]);
  });

  it("reports a missing directory instead of throwing, and that any NAD may be missing", async () => {
    const snapshot = await loadStateDir(join(dir, "nope"));
    expect(snapshot.problems.map(formatProblem)).toEqual([
      `${join(dir, "nope")}: cannot read the state directory: ENOENT: no such file or directory, scandir '${join(dir, "nope")}'`,
    ]);
    expect(missingObjectNote(snapshot, "NetworkAttachmentDefinition", "t")).toBe(
      " (the state directory cannot be read: it does not exist, so this NetworkAttachmentDefinition may exist)",
    );
  });

  it("says so when the directory holds no state file, without calling anything unreadable", async () => {
    const snapshot = await loadStateDir(dir);
    expect(snapshot.problems.map(formatProblem)).toEqual([`${dir}: holds no *.yaml, *.yml or *.json file`]);
    expect(snapshot.stateFaults).toEqual([]);
  });

  it("reads state files through links, reports a link to a missing file, and skips kubelet's ..data internals", async () => {
    // The layout of a ConfigMap volume: the files are links into ..data, itself a link to a dated directory.
    await mkdir(join(dir, "..2024_01_01_00_00_00.000000001"));
    await writeFile(join(dir, "..2024_01_01_00_00_00.000000001", "nads.yaml"), NAD("t", "one"));
    await symlink("..2024_01_01_00_00_00.000000001", join(dir, "..data"));
    await symlink(join("..data", "nads.yaml"), join(dir, "nads.yaml"));
    await symlink(join(dir, "missing.yaml"), join(dir, "lost.yaml"));
    const snapshot = await loadStateDir(dir);
    expect([...snapshot.nads.keys()]).toEqual(["t/one"]);
    expect(snapshot.problems.map(formatProblem)).toEqual([
      `lost.yaml: cannot read: ENOENT: no such file or directory, stat '${join(dir, "lost.yaml")}'`,
    ]);
    expect(snapshot.stateFaults).toEqual([{ path: "lost.yaml", kind: "unreadable", reason: "it is a link to a missing file", lastGoodInUse: false, holds: undefined }]);
  });

  it("uses what parses of a file broken since it appeared, and notes that anything may be missing", async () => {
    await writeFile(join(dir, "a.yaml"), `${NAD("t", "one")}---\nkind: [unclosed\n`);
    const snapshot = await loadStateDir(dir);
    expect([...snapshot.nads.keys()]).toEqual(["t/one"]);
    expect(snapshot.problems.map((p) => [p.code, p.path])).toEqual([["state.yaml", "a.yaml#2"]]);
    expect(snapshot.stateFaults).toEqual([
      { path: "a.yaml", kind: "invalid-yaml", reason: "not valid YAML at line 7, column 1", lastGoodInUse: false, holds: undefined },
    ]);
    expect(missingObjectNote(snapshot, "NetworkAttachmentDefinition", "other")).toBe(
      " (state file a.yaml could not be read: not valid YAML at line 7, column 1, so this NetworkAttachmentDefinition may exist)",
    );
  });
});

describe("stateDirSource", () => {
  it("is ready after the first load and publishes a new snapshot when a file changes", async () => {
    await writeFile(join(dir, "a.yaml"), NAD("t", "one"));
    const source = stateDirSource(dir, { debounceMs: 20 });
    expect(source.ready()).toBe(false);
    await source.start();
    try {
      expect(source.ready()).toBe(true);
      expect([...source.current()!.nads.keys()]).toEqual(["t/one"]);
      const next = new Promise<string[]>((resolve) => source.subscribe((s) => resolve([...s.nads.keys()])));
      await writeFile(join(dir, "b.yaml"), NAD("t", "two"));
      expect(await next).toEqual(["t/one", "t/two"]);
      expect(source.current()!.version).toBe(2);
    } finally {
      await source.stop();
    }
  });

  it("sees a file replaced by rename again and again, as editors and kubectl save", async () => {
    await writeFile(join(dir, "a.yaml"), NAD("t", "one"));
    const source = stateDirSource(dir, { debounceMs: 20, pollIntervalMs: 50 });
    await source.start();
    try {
      for (const name of ["two", "three", "four"]) {
        const next = new Promise<string[]>((resolve) =>
          source.subscribe((s) => {
            if (s.nads.has(`t/${name}`)) resolve([...s.nads.keys()]);
          }),
        );
        await writeFile(join(dir, ".a.yaml.tmp"), NAD("t", name));
        await rename(join(dir, ".a.yaml.tmp"), join(dir, "a.yaml"));
        expect(await next).toEqual([`t/${name}`]);
      }
    } finally {
      await source.stop();
    }
  });
});

describe("network-status recorded by the node daemon", () => {
  const POD = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: t1
  annotations: { k8s.v1.cni.cncf.io/networks: blue, k8s.v1.cni.cncf.io/network-status: '[{"name":"t1/old","ips":["198.18.9.9"]}]' }
spec: { nodeName: n1, containers: [{ name: c, image: i }] }
`;
  const STATUS = [
    { name: "cluster", interface: "eth0", ips: ["198.18.0.5"], mac: "02:00:00:00:00:01", default: true, dns: {} },
    { name: "t1/blue", interface: "net1", ips: ["198.18.1.5"], mac: "02:00:00:00:00:02", default: false, dns: {} },
  ];
  const statusDir = (ns: string): string => join(dir, ".nadguard", "network-status", ns);

  it("overlays <state>/.nadguard/network-status/<ns>/<pod>.json on the pod, and reads nothing else below .nadguard as state", async () => {
    await writeFile(join(dir, "pods.yaml"), POD);
    await mkdir(statusDir("t1"), { recursive: true });
    await writeFile(join(statusDir("t1"), "web.json"), JSON.stringify(STATUS));
    // A pod the state does not hold: ignored, no problem.
    await writeFile(join(statusDir("t1"), "gone.json"), JSON.stringify(STATUS));
    const snapshot = await loadStateDir(dir);
    expect(JSON.parse(snapshot.pods.get("t1/web")!.metadata.annotations!["k8s.v1.cni.cncf.io/network-status"]!)).toEqual(STATUS);
    expect([...snapshot.pods.keys()]).toEqual(["t1/web"]);
    expect(snapshot.problems).toEqual([]);
  });

  it("reports a status file that is not a network-status with its path; the pod keeps its own annotation", async () => {
    await writeFile(join(dir, "pods.yaml"), POD);
    await mkdir(statusDir("t1"), { recursive: true });
    await writeFile(join(statusDir("t1"), "web.json"), '[{"interface":"net1"}]');
    const snapshot = await loadStateDir(dir);
    expect(snapshot.pods.get("t1/web")!.metadata.annotations!["k8s.v1.cni.cncf.io/network-status"]).toBe('[{"name":"t1/old","ips":["198.18.9.9"]}]');
    expect(snapshot.problems.map(formatProblem)).toEqual([
      '.nadguard/network-status/t1/web.json: metadata.annotations["k8s.v1.cni.cncf.io/network-status"][0].name: Invalid input: expected string, received undefined; pod t1/web keeps the network-status of its own annotations',
    ]);
  });

  it("follows a status file written after the start (by rename, as the daemon writes it), changed and removed", async () => {
    await writeFile(join(dir, "pods.yaml"), POD);
    const source = stateDirSource(dir, { debounceMs: 20, pollIntervalMs: 0 });
    await source.start();
    try {
      const status = (): string | undefined => source.current()?.pods.get("t1/web")?.metadata.annotations?.["k8s.v1.cni.cncf.io/network-status"];
      const until = async (test: (value: string | undefined) => boolean): Promise<void> => {
        for (let i = 0; i < 100 && !test(status()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(test(status())).toBe(true);
      };
      await mkdir(statusDir("t1"), { recursive: true });
      await writeFile(join(statusDir("t1"), ".web.json.tmp"), JSON.stringify(STATUS));
      await rename(join(statusDir("t1"), ".web.json.tmp"), join(statusDir("t1"), "web.json"));
      await until((value) => value === JSON.stringify(STATUS));
      await writeFile(join(statusDir("t1"), "web.json"), JSON.stringify(STATUS.slice(0, 1)));
      await until((value) => value === JSON.stringify(STATUS.slice(0, 1)));
      await rm(join(statusDir("t1"), "web.json"));
      await until((value) => value === '[{"name":"t1/old","ips":["198.18.9.9"]}]');
    } finally {
      await source.stop();
    }
  });
});
