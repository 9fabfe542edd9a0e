// What-if changes of a snapshot: `--without` spellings, `--with` files read as state files, and
// the changed snapshot (replace, remove, a namespace removed with its objects, refusals).
import { describe, expect, it } from "vitest";
import { snapshotFrom } from "../../test/support/cluster.js";
import { applyWhatIf, parseRemoval, parseWithFiles } from "./what-if.js";

const base = snapshotFrom(`
apiVersion: v1
kind: Namespace
metadata: { name: t, labels: { team: a } }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: t, labels: { app: web } }
spec: { containers: [{ name: c }] }
---
apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata: { name: p, namespace: t }
spec: { podSelector: {} }
---
apiVersion: v1
kind: Pod
metadata: { name: other, namespace: u }
spec: { containers: [{ name: c }] }
`);

describe("parseRemoval", () => {
  it.each([
    ["multi-policy/t/p", { kind: "MultiNetworkPolicy", key: "t/p" }],
    ["MultiNetworkPolicy/t/p", { kind: "MultiNetworkPolicy", key: "t/p" }],
    ["nad/t/lan", { kind: "NetworkAttachmentDefinition", key: "t/lan" }],
    ["Pod/t/web", { kind: "Pod", key: "t/web" }],
    ["ns/t", { kind: "Namespace", key: "t" }],
  ])("reads %s", (text, expected) => {
    expect(parseRemoval(text)).toEqual({ ok: true, value: expected });
  });

  it.each([
    ["Secret/t/x", 'unknown kind "Secret"'],
    ["pod/web", "expected Pod/NAMESPACE/NAME"],
    ["ns/t/x", "expected Namespace/NAME"],
    ["pod/t/", "expected Pod/NAMESPACE/NAME"],
  ])("refuses %s", (text, message) => {
    const r = parseRemoval(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error[0]!.message).toContain(message);
  });
});

describe("parseWithFiles", () => {
  it("refuses kinds a what-if does not change, objects given twice, bad objects and empty files, naming the file", () => {
    const r = parseWithFiles(
      new Map([
        ["a.yaml", "apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: s, namespace: t }\n---\napiVersion: v1\nkind: Namespace\nmetadata: { name: t }\n"],
        ["b.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: { name: t }\n---\nkind: Pod\nmetadata: { name: x }\nspec: {}\n"],
        ["c.yaml", "# nothing\n"],
      ]),
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "--with a.yaml#1 (ServiceAccount s): a what-if changes MultiNetworkPolicy, NetworkAttachmentDefinition, Pod, Namespace only, not ServiceAccount",
      "--with b.yaml#2 (Pod x): spec.containers: Invalid input: expected array, received undefined",
      "--with b.yaml#1 (Namespace t): Namespace/t is given twice (also at a.yaml#2 (Namespace t))",
      "--with c.yaml: holds no object",
    ]);
  });
});

describe("applyWhatIf", () => {
  const withText = (text: string) => {
    const r = parseWithFiles(new Map([["w.yaml", text]]));
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    return r.value;
  };

  it("replaces an object of the same kind, namespace and name, and adds new ones", () => {
    const add = withText("apiVersion: v1\nkind: Pod\nmetadata: { name: web, namespace: t, labels: { app: api } }\nspec: { containers: [{ name: c }] }\n---\napiVersion: v1\nkind: Pod\nmetadata: { name: new, namespace: t }\nspec: { containers: [{ name: c }] }\n");
    const r = applyWhatIf(base, { add, remove: [] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.pods.get("t/web")!.metadata.labels).toEqual({ app: "api" });
    expect([...r.value.pods.keys()].sort()).toEqual(["t/new", "t/web", "u/other"]);
    expect(r.value.namespaces.get("t")!.metadata.labels).toEqual({ team: "a", "kubernetes.io/metadata.name": "t" });
    expect(base.pods.get("t/web")!.metadata.labels).toEqual({ app: "web" });
  });

  it("removes objects; a namespace goes with everything in it", () => {
    const r = applyWhatIf(base, { add: [], remove: [{ kind: "Namespace", key: "t" }] });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect([...r.value.pods.keys()]).toEqual(["u/other"]);
    expect(r.value.policies.size).toBe(0);
    expect([...r.value.namespaces.keys()]).toEqual(["u"]);
    const policy = applyWhatIf(base, { add: [], remove: [{ kind: "MultiNetworkPolicy", key: "t/p" }] });
    expect(policy.ok && [...policy.value.policies.keys()]).toEqual([]);
  });

  it("refuses to remove what does not exist, or what --with also gives", () => {
    const add = withText("apiVersion: v1\nkind: Pod\nmetadata: { name: web, namespace: t }\nspec: { containers: [{ name: c }] }\n");
    const r = applyWhatIf(base, { add, remove: [{ kind: "Pod", key: "t/nope" }, { kind: "Pod", key: "t/web" }] });
    expect(r.ok ? [] : r.error.map((p) => `${p.path}: ${p.message}`)).toEqual(["--without Pod/t/nope: there is no Pod t/nope in the state", "--without Pod/t/web: is also given with --with"]);
  });
});
