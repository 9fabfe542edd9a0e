// Compile and recompile depend on their arguments alone: what was compiled before, or alongside in
// another line of recompiles, changes no id, cache key, set or transaction of a result.
import { describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import type { Snapshot } from "../api/snapshot.js";
import { DEFAULT_CONFIG } from "../config/config.js";
import { GRID, gridYaml, policy } from "../../test/policy-conformance/grid.js";
import { snapshotFrom } from "../../test/support/cluster.js";
import { type Compiled, compile } from "./compiler.js";
import { podScript } from "./desired-state.js";
import { type Recompiled, recompile } from "./incremental.js";
import { opsScript } from "./transition.js";

type Obj = { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

const grid = (parseAllDocuments(gridYaml()) as unknown as { toJS(): Obj }[]).map((d) => d.toJS());

/** The grid with the given pods relabelled (`pod=<label>`) and the given policies. */
function snapshot(policies: readonly unknown[], relabel: Record<string, string> = {}): Snapshot {
  const objects = grid.map((o) => {
    const label = o.kind === "Pod" ? relabel[`${o.metadata.namespace}/${o.metadata.name}`] : undefined;
    return label === undefined ? o : { ...o, metadata: { ...o.metadata, labels: { pod: label } } };
  });
  return snapshotFrom(objects.map((o) => stringify(o)).join("---\n"), ...policies.map((p) => stringify(p)));
}

// Pod peers in both directions and egress named ports (resolved per destination pod): every kind of id the model hands out.
const FIRST = [
  policy("x", "from-a", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } }] }] }),
  policy("y", "to-b-web", { podSelector: {}, egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "b" } } }], ports: [{ port: "web" }] }] }),
];
const SECOND = [
  policy("z", "from-own", { podSelector: { matchLabels: { pod: "c" } }, ingress: [{ from: [{ podSelector: {} }] }] }),
  policy("x", "dns-anywhere", { podSelector: {}, egress: [{ ports: [{ port: "dns", protocol: "UDP" }] }] }),
];

/** Everything a compile hands out: states, rendered tables, set cache keys, peer set ids, allow signatures. */
function described(c: Compiled): unknown {
  return {
    fingerprints: Object.fromEntries([...c.states].map(([k, s]) => [k, s.fingerprint])),
    scripts: Object.fromEntries([...c.states].map(([k, s]) => [k, podScript(s)])),
    setsCache: [...c.setsCache.keys()].sort(),
    peerSets: [...c.model.peerSets()].map(([key, set]) => [key, set.id, set.patch?.from]).sort(),
    allows: GRID.map((pod) => c.model.podModel(pod).map((m) => [m.ingress.allows.map((a) => a.signature), m.egress.allows.map((a) => a.signature)])),
  };
}

function describedChange(r: Recompiled): unknown {
  return { affected: [...r.affected].sort(), ops: Object.fromEntries([...r.changes].map(([k, c]) => [k, opsScript(c.ops)])), compiled: described(r.compiled) };
}

/** A line of recompiles over `steps`, one step per call: the first compiles in full. */
function lineage(steps: readonly Snapshot[]): () => unknown {
  let current: Compiled | undefined;
  let i = 0;
  return () => {
    const next = steps[i++]!;
    if (!current) {
      current = compile(next, DEFAULT_CONFIG);
      return described(current);
    }
    const result = recompile(current, next, DEFAULT_CONFIG);
    current = result.compiled;
    return describedChange(result);
  };
}

describe("compile and recompile depend on their arguments alone", () => {
  const firstSteps = [snapshot(FIRST), snapshot(FIRST, { "y/b": "a" }), snapshot(FIRST, { "y/b": "a", "z/c": "b" }), snapshot(FIRST, { "z/c": "b" })];
  const secondSteps = [snapshot(SECOND), snapshot(SECOND, { "z/a": "c" }), snapshot(SECOND, { "z/a": "c", "x/b": "c" })];

  it("gives a snapshot the same result whether or not another was compiled before", () => {
    const alone = described(compile(firstSteps[1]!, DEFAULT_CONFIG));
    compile(secondSteps[0]!, DEFAULT_CONFIG);
    lineage(secondSteps)();
    expect(described(compile(firstSteps[1]!, DEFAULT_CONFIG))).toEqual(alone);
  });

  it("gives two lines of recompiles, interleaved, the results each gives alone", () => {
    const run = (steps: readonly Snapshot[]): unknown[] => {
      const next = lineage(steps);
      return steps.map(() => next());
    };
    const first = run(firstSteps);
    const second = run(secondSteps);
    const a = lineage(firstSteps);
    const b = lineage(secondSteps);
    const interleaved: { first: unknown[]; second: unknown[] } = { first: [], second: [] };
    for (let i = 0; i < Math.max(firstSteps.length, secondSteps.length); i++) {
      if (i < secondSteps.length) interleaved.second.push(b());
      if (i < firstSteps.length) interleaved.first.push(a());
    }
    expect(interleaved.first).toEqual(first);
    expect(interleaved.second).toEqual(second);
  });

  it("gives a recompile from one compile the same result whether or not another recompile started from it before", () => {
    const base = compile(firstSteps[0]!, DEFAULT_CONFIG);
    const alone = describedChange(recompile(base, firstSteps[2]!, DEFAULT_CONFIG));
    const other = compile(firstSteps[0]!, DEFAULT_CONFIG);
    const sibling = recompile(other, firstSteps[1]!, DEFAULT_CONFIG);
    expect(describedChange(recompile(other, firstSteps[2]!, DEFAULT_CONFIG))).toEqual(alone);
    // The sibling's line goes on unaffected too.
    expect(describedChange(recompile(sibling.compiled, firstSteps[3]!, DEFAULT_CONFIG))).toEqual(describedChange(recompile(recompile(base, firstSteps[1]!, DEFAULT_CONFIG).compiled, firstSteps[3]!, DEFAULT_CONFIG)));
  });
});
