// The incremental path agrees with a full compile whatever changes: random edits of the grid (a pod
// relabelled, stopped or deleted, a namespace relabelled, a NAD removed) under random scenarios.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { DEFAULT_CONFIG } from "../config/config.js";
import { GRID, gridYaml, policy } from "../../test/policy-conformance/grid.js";
import { scenarios } from "../../test/policy-conformance/scenarios.js";
import { snapshotFrom } from "../../test/support/cluster.js";
import { expectRecompileLikeFull, fingerprints } from "../../test/support/recompile.js";
import { type Compiled, compile } from "./compiler.js";
import { recompile } from "./incremental.js";

type Obj = { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; status?: { phase: string } };

const base = (parseAllDocuments(gridYaml()) as unknown as { toJS(): Obj }[]).map((d) => d.toJS());

type Edit = { op: "relabel-pod"; pod: number; label: string } | { op: "stop-pod"; pod: number } | { op: "delete-pod"; pod: number } | { op: "relabel-ns"; ns: string; label: string } | { op: "delete-nad" };

function apply(objects: Obj[], edit: Edit): Obj[] {
  const podKey = "pod" in edit ? GRID[edit.pod]! : "";
  const isPod = (o: Obj): boolean => o.kind === "Pod" && `${o.metadata.namespace}/${o.metadata.name}` === podKey;
  switch (edit.op) {
    case "relabel-pod":
      return objects.map((o) => (isPod(o) ? { ...o, metadata: { ...o.metadata, labels: { pod: edit.label } } } : o));
    case "stop-pod":
      return objects.map((o) => (isPod(o) ? { ...o, status: { phase: "Succeeded" } } : o));
    case "delete-pod":
      return objects.filter((o) => !isPod(o));
    case "relabel-ns":
      return objects.map((o) => (o.kind === "Namespace" && o.metadata.name === edit.ns ? { ...o, metadata: { ...o.metadata, labels: { ns: edit.label } } } : o));
    case "delete-nad":
      return objects.filter((o) => !(o.kind === "NetworkAttachmentDefinition" && o.metadata.name === "blue"));
  }
}

const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ op: fc.constant("relabel-pod" as const), pod: fc.nat(8), label: fc.constantFrom("a", "b", "c") }),
  fc.record({ op: fc.constant("stop-pod" as const), pod: fc.nat(8) }),
  fc.record({ op: fc.constant("delete-pod" as const), pod: fc.nat(8) }),
  fc.record({ op: fc.constant("relabel-ns" as const), ns: fc.constantFrom("x", "y", "z"), label: fc.constantFrom("x", "y", "z", "q") }),
  fc.record({ op: fc.constant("delete-nad" as const) }),
);


describe("recompile", () => {
  it("equals a full compile after any edit, and reports exactly the pods that changed", () => {
    fc.assert(
      fc.property(fc.nat(scenarios.length - 1), fc.array(edit, { minLength: 1, maxLength: 3 }), (index, edits) => {
        const policies = scenarios[index]!.policies.map((p) => stringify(p));
        const before = compile(snapshotFrom(base.map((o) => stringify(o)).join("---\n"), ...policies), DEFAULT_CONFIG);
        const edited = edits.reduce(apply, base);
        const after = snapshotFrom(edited.map((o) => stringify(o)).join("---\n"), ...policies);
        expectRecompileLikeFull(before, after);
      }),
      { numRuns: 60 },
    );
  });

  const podEdit: fc.Arbitrary<Edit> = fc.oneof(
    fc.record({ op: fc.constant("relabel-pod" as const), pod: fc.nat(8), label: fc.constantFrom("a", "b", "c") }),
    fc.record({ op: fc.constant("stop-pod" as const), pod: fc.nat(8) }),
    fc.record({ op: fc.constant("delete-pod" as const), pod: fc.nat(8) }),
  );

  // Pod-only edits take the patched paths (peer sets and direction sets patched, the model carried
  // forward); chained recompiles patch what earlier recompiles patched.
  it("equals a full compile over a chain of pod edits, each recompiled from the last", () => {
    fc.assert(
      fc.property(fc.nat(scenarios.length - 1), fc.array(fc.array(podEdit, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 4 }), (index, steps) => {
        const policies = scenarios[index]!.policies.map((p) => stringify(p));
        let objects = base;
        let current = compile(snapshotFrom(objects.map((o) => stringify(o)).join("---\n"), ...policies), DEFAULT_CONFIG);
        for (const edits of steps) {
          objects = edits.reduce(apply, objects);
          const after = snapshotFrom(objects.map((o) => stringify(o)).join("---\n"), ...policies);
          current = expectRecompileLikeFull(current, after);
        }
      }),
      { numRuns: 80 },
    );
  });

  // Events as a watch may deliver them: the namespace's last pod deleted, then a new one created.
  it("equals a full compile when a namespace's only pod goes and another comes, in that order", () => {
    const fromZ = stringify(policy("x", "from-z", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "z" } } }] }] }));
    const inZ = (o: Obj): boolean => o.kind === "Pod" && o.metadata.namespace === "z";
    const only = base.filter((o) => !inZ(o) || o.metadata.name === "a");
    const replaced = [...base.filter((o) => !inZ(o)), ...base.filter((o) => inZ(o) && o.metadata.name === "a").map((o) => ({ ...o, metadata: { ...o.metadata, name: "d" } }))];
    const snapshot = (objects: Obj[]) => snapshotFrom(objects.map((o) => stringify(o)).join("---\n"), fromZ);
    const before = compile(snapshot(only), DEFAULT_CONFIG);
    const after = snapshot(replaced);
    const result = recompile(before, after, DEFAULT_CONFIG, [
      { kind: "pod", key: "z/a" },
      { kind: "pod", key: "z/d" },
    ]);
    expect(fingerprints(result.compiled)).toEqual(fingerprints(compile(after, DEFAULT_CONFIG)));
    // z/d took over z/a's addresses: the pods that allow z see no change.
    expect([...result.affected].sort()).toEqual(["z/a", "z/d"]);
  });
});
