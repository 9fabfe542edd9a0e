// The incremental path fed the events themselves (as a watch delivers them, no snapshot diff) agrees
// with a full compile after every step of random event sequences: pods relabelled (label keys added
// and removed, which selectors with Exists / DoesNotExist / In / NotIn read), added and deleted,
// namespaces relabelled, policies added, changed and deleted; each step recompiled from the last.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../api/snapshot.js";
import { SnapshotBuilder } from "../cluster/snapshot-builder.js";
import { addStateObject } from "../cluster/state-dir.js";
import { DEFAULT_CONFIG } from "../config/config.js";
import { type Compiled, compile } from "./compiler.js";
import { expectRecompileLikeFull, fingerprints } from "../../test/support/recompile.js";
import { type PolicyEvent, diffSnapshots, recompile } from "./incremental.js";

type Labels = Record<string, string>;
type Selector = { matchLabels?: Labels; matchExpressions?: { key: string; operator: string; values?: string[] }[] };
type Peer = { podSelector?: Selector; namespaceSelector?: Selector };
type Rule = { peers?: Peer[]; ports?: { port: number | string; protocol?: string }[] };
type PolicySpec = { namespace: string; networks: string; podSelector: Selector; ingress?: Rule[]; egress?: Rule[] };

const NAMESPACES = ["n0", "n1", "n2"] as const;
const LABEL_KEYS = ["app", "tier"] as const;
const VALUES = ["a", "b"] as const;

const labels: fc.Arbitrary<Labels> = fc.record({ app: fc.constantFrom(...VALUES), tier: fc.constantFrom(...VALUES) }, { requiredKeys: [] });
const nsLabels: fc.Arbitrary<Labels> = fc.record({ team: fc.constantFrom("t1", "t2"), env: fc.constantFrom("prod", "dev") }, { requiredKeys: [] });

const expression = (keys: readonly string[], values: readonly string[]) =>
  fc.oneof(
    fc.record({ key: fc.constantFrom(...keys), operator: fc.constantFrom("In", "NotIn"), values: fc.uniqueArray(fc.constantFrom(...values), { minLength: 1, maxLength: 2 }) }),
    fc.record({ key: fc.constantFrom(...keys), operator: fc.constantFrom("Exists", "DoesNotExist") }),
  );

const selector = (keys: readonly string[], values: readonly string[]): fc.Arbitrary<Selector> =>
  fc.oneof(
    fc.constant({}),
    fc.dictionary(fc.constantFrom(...keys), fc.constantFrom(...values), { minKeys: 1, maxKeys: 2 }).map((matchLabels) => ({ matchLabels })),
    fc.array(expression(keys, values), { minLength: 1, maxLength: 2 }).map((matchExpressions) => ({ matchExpressions })),
  );

const podSelector = selector(LABEL_KEYS, VALUES);
const namespaceSelector = selector(["team", "env"], ["t1", "t2", "prod", "dev"]);

const peer: fc.Arbitrary<Peer> = fc.oneof(
  fc.record({ podSelector }),
  fc.record({ namespaceSelector }),
  fc.record({ podSelector, namespaceSelector }),
);

const rule: fc.Arbitrary<Rule> = fc.record(
  { peers: fc.array(peer, { minLength: 1, maxLength: 2 }), ports: fc.array(fc.oneof(fc.constantFrom(80, 443).map((port) => ({ port })), fc.constant({ port: "web" })), { minLength: 1, maxLength: 2 }) },
  { requiredKeys: [] },
);

const policySpec: fc.Arbitrary<PolicySpec> = fc.record(
  {
    namespace: fc.constantFrom(...NAMESPACES),
    networks: fc.constantFrom("nets/blue", "nets/red", "nets/blue, nets/red"),
    podSelector,
    ingress: fc.array(rule, { maxLength: 2 }),
    egress: fc.array(rule, { maxLength: 2 }),
  },
  { requiredKeys: ["namespace", "networks", "podSelector"] },
);

type Step =
  | { op: "relabel-pod"; pod: number; labels: Labels }
  | { op: "add-pod"; namespace: string; labels: Labels }
  | { op: "delete-pod"; pod: number }
  | { op: "relabel-ns"; ns: string; labels: Labels }
  | { op: "add-policy"; spec: PolicySpec }
  | { op: "change-policy"; policy: number; spec: PolicySpec }
  | { op: "delete-policy"; policy: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("relabel-pod" as const), pod: fc.nat(20), labels }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("add-pod" as const), namespace: fc.constantFrom(...NAMESPACES), labels }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete-pod" as const), pod: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("relabel-ns" as const), ns: fc.constantFrom(...NAMESPACES), labels: nsLabels }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("add-policy" as const), spec: policySpec }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("change-policy" as const), policy: fc.nat(20), spec: policySpec }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete-policy" as const), policy: fc.nat(20) }) },
);

/** The cluster as plain objects by key, each step replacing only what it changes. */
interface World {
  readonly namespaces: Map<string, Labels>;
  readonly pods: Map<string, { index: number; labels: Labels }>;
  readonly policies: Map<string, PolicySpec>;
  next: number;
}

function podObject(key: string, index: number, labels: Labels): unknown {
  const [namespace, name] = key.split("/") as [string, string];
  const status = [
    { name: "cluster", interface: "eth0", ips: [`10.0.0.${index}`], default: true },
    { name: "nets/blue", interface: "net1", ips: [`198.18.0.${index}`, `fd00:b::${index.toString(16)}`] },
    { name: "nets/red", interface: "net2", ips: [`198.18.1.${index}`] },
  ];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels, annotations: { "k8s.v1.cni.cncf.io/networks": "nets/blue@net1,nets/red@net2", "k8s.v1.cni.cncf.io/network-status": JSON.stringify(status) } },
    spec: { nodeName: "node-1", containers: [{ name: "app", image: "registry.example/app:1", ports: index % 2 === 0 ? [{ name: "web", containerPort: 8000 + index }] : [] }] },
    status: { phase: "Running" },
  };
}

function policyObject(key: string, spec: PolicySpec): unknown {
  const [namespace, name] = key.split("/") as [string, string];
  const rules = (list: Rule[] | undefined, field: "from" | "to") => list?.map((r) => ({ ...(r.peers && { [field]: r.peers }), ...(r.ports && { ports: r.ports }) }));
  const types = [...(spec.ingress ? ["Ingress"] : []), ...(spec.egress ? ["Egress"] : [])];
  return {
    apiVersion: "k8s.cni.cncf.io/v1beta1",
    kind: "MultiNetworkPolicy",
    metadata: { name, namespace, annotations: { "k8s.v1.cni.cncf.io/policy-for": spec.networks } },
    spec: { podSelector: spec.podSelector, ...(types.length > 0 && { policyTypes: types }), ...(spec.ingress && { ingress: rules(spec.ingress, "from") }), ...(spec.egress && { egress: rules(spec.egress, "to") }) },
  };
}

function snapshotOf(world: World): Snapshot {
  const builder = new SnapshotBuilder(1);
  const add = (o: unknown): void => addStateObject(builder, "world", o);
  add({ apiVersion: "v1", kind: "Namespace", metadata: { name: "nets" } });
  for (const name of ["blue", "red"]) {
    add({ apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition", metadata: { name, namespace: "nets" }, spec: { config: JSON.stringify({ cniVersion: "1.0.0", name, type: "macvlan" }) } });
  }
  for (const [name, l] of world.namespaces) add({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: l } });
  for (const [key, p] of world.pods) add(podObject(key, p.index, p.labels));
  for (const [key, spec] of world.policies) add(policyObject(key, spec));
  const snapshot = builder.build();
  const problems = snapshot.problems.filter((p) => p.code !== "state.kind-ignored");
  if (problems.length > 0) throw new Error(`world has problems: ${JSON.stringify(problems)}`);
  return snapshot;
}

const nth = <T>(map: Map<string, T>, i: number): string | undefined => [...map.keys()][i % Math.max(1, map.size)];

/** Deletes the i-th object (modulo their number) and returns its event; none when there is none. */
function remove(map: Map<string, unknown>, i: number, kind: "pod" | "policy"): PolicyEvent[] {
  const key = nth(map, i);
  if (key === undefined) return [];
  map.delete(key);
  return [{ kind, key }];
}

/** Applies a step to the world and returns the events it makes (none when it names nothing that exists). */
function apply(world: World, s: Step): PolicyEvent[] {
  switch (s.op) {
    case "relabel-pod": {
      const key = nth(world.pods, s.pod);
      if (key === undefined) return [];
      world.pods.set(key, { ...world.pods.get(key)!, labels: s.labels });
      return [{ kind: "pod", key }];
    }
    case "add-pod": {
      const index = world.next++;
      const key = `${s.namespace}/p${index}`;
      world.pods.set(key, { index, labels: s.labels });
      return [{ kind: "pod", key }];
    }
    case "delete-pod":
      return remove(world.pods, s.pod, "pod");
    case "relabel-ns":
      world.namespaces.set(s.ns, s.labels);
      return [{ kind: "namespace", name: s.ns }];
    case "add-policy": {
      const key = `${s.spec.namespace}/q${world.next++}`;
      world.policies.set(key, s.spec);
      return [{ kind: "policy", key }];
    }
    case "change-policy": {
      const key = nth(world.policies, s.policy);
      if (key === undefined) return [];
      // A policy keeps its namespace: its key says where it is.
      world.policies.set(key, { ...s.spec, namespace: key.split("/")[0]! });
      return [{ kind: "policy", key }];
    }
    case "delete-policy":
      return remove(world.policies, s.policy, "policy");
  }
}


describe("recompile fed the events", () => {
  it("equals a full compile after every step of random event sequences, and reports exactly the pods that changed", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ ns: fc.constantFrom(...NAMESPACES), labels }), { minLength: 2, maxLength: 7 }),
        fc.array(policySpec, { maxLength: 4 }),
        fc.array(fc.array(step, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 6 }),
        (pods, policies, steps) => {
          const world: World = { namespaces: new Map(NAMESPACES.map((ns, i) => [ns, { team: i === 2 ? "t2" : "t1", env: i === 0 ? "prod" : "dev" }])), pods: new Map(), policies: new Map(), next: 1 };
          for (const p of pods) world.pods.set(`${p.ns}/p${world.next}`, { index: world.next++, labels: p.labels });
          for (const spec of policies) world.policies.set(`${spec.namespace}/q${world.next++}`, spec);
          let current = compile(snapshotOf(world), DEFAULT_CONFIG);
          for (const batch of steps) {
            const events = batch.flatMap((s) => apply(world, s));
            const snapshot = snapshotOf(world);
            current = expectRecompileLikeFull(current, snapshot, events);
          }
        },
      ),
      { seed: 1313, numRuns: 150 },
    );
  });

  // A deleted policy's peer set must not outlive it: the pod events after the delete no longer
  // patch it, so a policy with the same peer added later would read it stale.
  it("equals a full compile when a policy comes back after a pod entered its peer's selection while it was gone", () => {
    const spec: PolicySpec = { namespace: "n0", networks: "nets/blue", podSelector: {}, ingress: [{ peers: [{ podSelector: { matchLabels: { app: "a" } } }] }] };
    const world: World = { namespaces: new Map(NAMESPACES.map((ns) => [ns, {}])), pods: new Map(), policies: new Map(), next: 1 };
    world.pods.set("n0/p1", { index: 1, labels: { app: "a" } });
    world.pods.set("n0/p2", { index: 2, labels: { app: "b" } });
    world.policies.set("n0/q1", spec);
    let current = compile(snapshotOf(world), DEFAULT_CONFIG);
    const steps: Step[] = [
      { op: "delete-policy", policy: 0 },
      { op: "relabel-pod", pod: 1, labels: { app: "a" } },
      { op: "add-policy", spec },
    ];
    for (const s of steps) {
      const events = apply(world, s);
      const snapshot = snapshotOf(world);
      current = recompile(current, snapshot, DEFAULT_CONFIG, events).compiled;
      expect(fingerprints(current)).toEqual(fingerprints(compile(snapshot, DEFAULT_CONFIG)));
    }
    // n0/p1 allows itself and n0/p2, now app=a too, on blue: two v4 hosts (and two v6) in its table.
    expect(current.states.get("n0/p1")?.interfaces[0]?.ingress.v4.hostsAll).toHaveLength(2);
  });
});

describe("diffSnapshots", () => {
  const world = (): World => ({
    namespaces: new Map(NAMESPACES.map((ns) => [ns, {}])),
    pods: new Map([1, 2, 3, 4].map((i) => [`n${i % 3}/p${i}`, { index: i, labels: { app: "a" } }])),
    policies: new Map(),
    next: 5,
  });

  // The maps are walked side by side while their keys come in the same order; any other order, an
  // added or a removed key must give the same events as a lookup of every key.
  it("finds the changed, added and removed objects whatever the order of the maps' keys", () => {
    const base = snapshotOf(world());
    const pods = [...base.pods];
    const reordered = (entries: typeof pods): Snapshot => ({ ...base, pods: new Map(entries) });
    const relabelled = { ...pods[1]![1], metadata: { ...pods[1]![1].metadata, labels: { app: "b" } } };
    const key = (i: number): string => pods[i]![0];
    // Same order, one object replaced by a changed one.
    expect(diffSnapshots(base, reordered(pods.map(([k, v], i) => [k, i === 1 ? relabelled : v])))).toEqual([{ kind: "pod", key: key(1) }]);
    // Another order, nothing changed.
    expect(diffSnapshots(base, reordered([...pods].reverse()))).toEqual([]);
    // The first key removed, one added at the end, the second changed: out of step from the first key.
    const added = { ...pods[0]![1], metadata: { ...pods[0]![1].metadata, name: "p9" } };
    const next = reordered([...pods.slice(1).map(([k, v], i): [string, (typeof pods)[number][1]] => [k, i === 0 ? relabelled : v]), ["n0/p9", added]]);
    expect(diffSnapshots(base, next)).toEqual([
      { kind: "pod", key: key(1) },
      { kind: "pod", key: "n0/p9" },
      { kind: "pod", key: key(0) },
    ]);
    // The last key removed while the others stay in step.
    expect(diffSnapshots(base, reordered(pods.slice(0, -1)))).toEqual([{ kind: "pod", key: key(pods.length - 1) }]);
  });
});
