// The reachability matrix on the conformance grid: for every scenario and probe, every
// cell agrees with `verdictOf` asked pair by pair (outcome, and the full verdict with its deciding
// rules) and with the hand-written truth table; and each kind of what-if change shows exactly the
// cells that the grid's oracle (verdict and rendered tables, both families) says change, with the
// deciding rule named.
import { parse, stringify } from "yaml";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../src/api/snapshot.js";
import { applyWhatIf, parseWithFiles, type Removal } from "../../src/cluster/what-if.js";
import { DEFAULT_CONFIG } from "../../src/config/config.js";
import { cellStates, cellVerdict, reachabilityMatrix } from "../../src/policy/matrix.js";
import { diffMatrices } from "../../src/policy/matrix-diff.js";
import { buildModel } from "../../src/policy/model.js";
import { verdictOf } from "../../src/policy/verdict.js";
import { snapshotFrom } from "../support/cluster.js";
import { BLUE, GRID, formatTable, gridSnapshot, gridYaml, policy } from "./grid.js";
import { type GridProbe, probeGrid } from "./harness.js";
import { scenarios } from "./scenarios.js";

function matrixOf(snapshot: Snapshot, probe: GridProbe) {
  return reachabilityMatrix(buildModel(snapshot, DEFAULT_CONFIG), { network: probe.network ?? BLUE, ports: [{ port: probe.port, protocol: probe.protocol ?? "TCP" }] });
}

describe("matrix agrees with verdict on every cell of every conformance scenario", () => {
  const cases = scenarios.flatMap((s) => s.probes.map(([probe, expected]) => ({ name: s.name, label: `${probe.port}/${probe.protocol ?? "TCP"} on ${probe.network ?? BLUE}`, policies: s.policies, probe, expected })));
  it.each(cases)("$name — $label", ({ policies, probe, expected }) => {
    const snapshot = gridSnapshot(...policies);
    const model = buildModel(snapshot, DEFAULT_CONFIG);
    const matrix = matrixOf(snapshot, probe);
    const grid = matrix.grids[0]!;
    expect(matrix.members.map((m) => m.key)).toEqual(GRID);
    const table = GRID.map((from, i) =>
      GRID.map((to, j) => {
        const v = verdictOf(model, { from, to, network: probe.network ?? BLUE, port: probe.port, protocol: probe.protocol ?? "TCP" });
        if (!v.ok) throw new Error(JSON.stringify(v.error));
        const states = cellStates(matrix, grid, i, j);
        expect(states.map((s) => [s.family, s.allowed])).toEqual(v.value.families.map((f) => [f.family, f.allowed]));
        for (const f of v.value.families) expect(cellVerdict(matrix, grid, i, j, f.family)).toEqual(f);
        return states.every((s) => s.allowed);
      }),
    );
    expect(formatTable(table)).toBe(formatTable(expected));
  });
});

/** Objects as a --with file would hold them. */
const withFile = (...objects: unknown[]) => {
  if (objects.length === 0) return [];
  const parsed = parseWithFiles(new Map([["change.yaml", objects.map((o) => stringify(o)).join("---\n")]]));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return parsed.value;
};

type Obj = { kind: string; metadata: { name: string; namespace?: string; labels: Record<string, string> } };

/** A grid object (pod or namespace) with its labels edited. */
function gridObject(kind: "Pod" | "Namespace", key: string, edit: (o: Obj) => void): Obj {
  const [ns, name] = kind === "Pod" ? key.split("/") : [undefined, key];
  const found = gridObjects().find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === ns)!;
  edit(found);
  return found;
}

function gridObjects(): Obj[] {
  return gridYaml()
    .split("---\n")
    .map((text) => parse(text) as Obj);
}

/** The grid written out whole with some of its objects replaced, and policies: the oracle's cluster, built without the what-if code. */
function gridWith(changed: readonly Obj[], policies: readonly unknown[]): Snapshot {
  const same = (a: Obj, b: Obj): boolean => a.kind === b.kind && a.metadata.name === b.metadata.name && a.metadata.namespace === b.metadata.namespace;
  const objects = gridObjects().map((o) => changed.find((c) => same(c, o)) ?? o);
  return snapshotFrom(objects.map((o) => stringify(o)).join("---\n"), ...policies.map((p) => stringify(p)));
}

const denyX = policy("x", "deny-in", { podSelector: {}, policyTypes: ["Ingress"] });
const fromY = policy("x", "from-y", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] });
const fromYPodA = policy("x", "from-y", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] }] });

interface WhatIfCase {
  name: string;
  before: unknown[];
  /** The policies of the changed cluster, built directly (the oracle's side). */
  after: unknown[];
  add?: unknown[];
  remove?: Removal[];
  /** Changed objects of the grid itself (pods, namespaces), applied to the oracle's snapshot too. */
  changedGrid?: Obj[];
  /** One opened or closed flow and a reason it must name. */
  expectReason: { change: "opened" | "closed"; from: string; to: string; text: string };
}

const cases: WhatIfCase[] = [
  { name: "add a policy", before: [], after: [denyX], add: [denyX], expectReason: { change: "closed", from: "y/a", to: "x/a", text: "ingress x/a net1: now isolated by x/deny-in, and no rule allows it" } },
  { name: "replace a policy", before: [denyX, fromY], after: [denyX, fromYPodA], add: [fromYPodA], expectReason: { change: "closed", from: "y/b", to: "x/c", text: "ingress x/c net1: no longer allowed (was allowed by x/from-y ingress[0] from[0]); isolated by x/deny-in, x/from-y" } },
  {
    name: "delete a policy",
    before: [denyX, fromY],
    after: [denyX],
    remove: [{ kind: "MultiNetworkPolicy", key: "x/from-y" }],
    expectReason: { change: "closed", from: "y/a", to: "x/b", text: "ingress x/b net1: no longer allowed (was allowed by x/from-y ingress[0] from[0]); isolated by x/deny-in" },
  },
  {
    name: "relabel a pod",
    before: [denyX, fromYPodA],
    after: [denyX, fromYPodA],
    changedGrid: [gridObject("Pod", "y/b", (o) => (o.metadata.labels.pod = "a"))],
    expectReason: { change: "opened", from: "y/b", to: "x/a", text: "ingress x/a net1: allowed by x/from-y ingress[0] from[0]" },
  },
  {
    name: "relabel a namespace",
    before: [denyX, fromY],
    after: [denyX, fromY],
    changedGrid: [gridObject("Namespace", "z", (o) => (o.metadata.labels.ns = "y"))],
    expectReason: { change: "opened", from: "z/c", to: "x/b", text: "ingress x/b net1: allowed by x/from-y ingress[0] from[0]" },
  },
  {
    name: "change policy-for",
    before: [denyX],
    after: [policy("x", "deny-in", { podSelector: {}, policyTypes: ["Ingress"] }, "nets/red")],
    add: [policy("x", "deny-in", { podSelector: {}, policyTypes: ["Ingress"] }, "nets/red")],
    expectReason: { change: "opened", from: "y/c", to: "x/a", text: "ingress x/a net1: no longer isolated (was isolated by x/deny-in)" },
  },
];

describe("what-if: the diff shows exactly the cells the grid's oracle says change", () => {
  it.each(cases)("$name", (c) => {
    const before = gridSnapshot(...c.before);
    const applied = applyWhatIf(before, { add: withFile(...(c.add ?? []), ...(c.changedGrid ?? [])), remove: c.remove ?? [] });
    if (!applied.ok) throw new Error(JSON.stringify(applied.error));
    // The oracle's side: the changed cluster written out whole.
    const afterDirect = gridWith(c.changedGrid ?? [], c.after);
    const probe = { port: 80 };
    const oracleBefore = probeGrid(before, probe);
    const oracleAfter = probeGrid(afterDirect, probe);
    const expected: string[] = [];
    GRID.forEach((from, i) =>
      GRID.forEach((to, j) => {
        if (oracleBefore[i]![j] !== oracleAfter[i]![j]) expected.push(`${oracleAfter[i]![j] ? "opened" : "closed"} ${from} -> ${to}`);
      }),
    );
    expect(expected.length).toBeGreaterThan(0);
    const diff = diffMatrices(matrixOf(before, probe), matrixOf(applied.value, probe));
    const got = [...diff.opened, ...diff.closed].map((f) => {
      expect(f.families).toEqual([4, 6]);
      return `${f.change} ${f.from} -> ${f.to}`;
    });
    expect(got.sort()).toEqual(expected.sort());
    // Both families of every flow change, each listed as a cell.
    expect(diff.cells).toHaveLength(expected.length * 2);
    const flow = [...diff.opened, ...diff.closed].find((f) => f.change === c.expectReason.change && f.from === c.expectReason.from && f.to === c.expectReason.to)!;
    expect(flow).toBeDefined();
    expect(flow.because).toEqual([c.expectReason.text]);
  });
});
