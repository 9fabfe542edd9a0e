import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import type { Snapshot } from "../api/snapshot.js";
import { SnapshotBuilder } from "../cluster/snapshot-builder.js";
import { addStateObject } from "../cluster/state-dir.js";
import { DEFAULT_CONFIG, parseConfig } from "../config/config.js";
import { BLUE, GRID, gridSnapshot, gridYaml, policy } from "../../test/policy-conformance/grid.js";
import { scenarios } from "../../test/policy-conformance/scenarios.js";
import { snapshotFrom } from "../../test/support/cluster.js";
import { type Compiled, compile } from "./compiler.js";
import { desiredTable, podScript } from "./desired-state.js";
import { diffSnapshots, recompile } from "./incremental.js";
import { opsScript, transitionOps } from "./transition.js";
import { verdict } from "./verdict.js";

const fingerprints = (c: Compiled): Record<string, string> => Object.fromEntries([...c.states].map(([k, s]) => [k, s.fingerprint]));

describe("compile: golden scripts", () => {
  const snapshot = gridSnapshot(
    policy("x", "web-from-y", {
      podSelector: {},
      ingress: [
        { from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }], ports: [{ port: "web" }, { protocol: "UDP", port: 53 }] },
        { from: [{ ipBlock: { cidr: "198.18.0.0/24", except: ["198.18.0.13"] } }] },
      ],
    }),
    policy("x", "a-out", { podSelector: { matchLabels: { pod: "a" } }, egress: [{ to: [{ podSelector: {} }], ports: [{ port: 8000, endPort: 8080 }] }] }),
  );
  const compiled = compile(snapshot, DEFAULT_CONFIG);

  it.each(["x/a", "x/c", "y/a"])("renders the table of %s", async (pod) => {
    await expect(podScript(compiled.states.get(pod))).toMatchFileSnapshot(`../../test/policy-conformance/golden/${pod.replace("/", "-")}.nft`);
  });

  it("keeps the rule count independent of the number of peers and ipBlocks", () => {
    const many = gridSnapshot(
      policy("x", "many", {
        podSelector: {},
        ingress: [{ from: Array.from({ length: 50 }, (_, i) => ({ ipBlock: { cidr: `198.19.${2 * i}.0/24` } })) }],
        egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 1 }, { port: 2 }, { port: 3, protocol: "UDP" }] }],
      }),
    );
    const a = desiredTable(compile(many, DEFAULT_CONFIG).states.get("x/a"));
    const b = desiredTable(compiled.states.get("x/a"));
    expect(a.rules).toEqual(b.rules);
    expect(a.elements.length).toBeGreaterThan(b.elements.length);
  });
});

describe("compile: what is managed, and bad input", () => {
  it("manages only interfaces whose NAD CNI type is in enforcement.networkPlugins", () => {
    const snapshot = gridSnapshot(policy("x", "deny", { podSelector: {}, policyTypes: ["Ingress"] }));
    const compiled = compile(snapshot, parseConfig({ enforcement: { networkPlugins: ["bridge"] } }));
    expect(compiled.states.size).toBe(0);
    const v = verdict(snapshot, parseConfig({ enforcement: { networkPlugins: ["bridge"] } }), { from: "y/a", to: "x/a", network: BLUE, port: 80 });
    expect(v.ok && v.value.allowed).toBe(true);
    expect(v.ok && v.value.families[0]!.ingress).toMatchObject({ managed: false, isolated: false, isolatedBy: [] });
  });

  it("only compiles the pods of the given node", () => {
    expect(compile(gridSnapshot(), DEFAULT_CONFIG, { node: "node-2" }).states.size).toBe(0);
    expect(compile(gridSnapshot(), DEFAULT_CONFIG, { node: "node-1" }).states.size).toBe(9);
  });

  it("keeps an interface isolated when a named port resolves nowhere, and warns", () => {
    const snapshot = gridSnapshot(policy("x", "metrics", { podSelector: {}, ingress: [{ ports: [{ port: "metrics" }] }] }));
    const state = compile(snapshot, DEFAULT_CONFIG).states.get("x/a")!;
    const none = { hosts: [], hostsProto: [], hostsAll: [], boxes: [], ranges: [] };
    expect(state.interfaces[0]!.ingress).toMatchObject({ isolated: true, v4: none, v6: none });
    expect(state.warnings).toEqual([expect.objectContaining({ code: "policy.named-port-unresolved", message: expect.stringContaining("metrics/TCP") })]);
  });

  it("never crashes on invalid policies and never isolates less than asked", () => {
    const snapshot = gridSnapshot(
      policy("x", "bad", {
        podSelector: {},
        ingress: [
          {
            from: [
              { ipBlock: { cidr: "198.18.0.0/33" } },
              { ipBlock: { cidr: "198.18.0.0/24", except: ["nonsense"] } },
              { podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: [] }] } },
              {},
              { ipBlock: { cidr: "198.18.0.0/24" }, podSelector: {} },
            ],
            ports: [{ port: 90, endPort: 80 }, { port: "web", endPort: 81 }, { port: 0 }],
          },
        ],
      }),
    );
    const compiled = compile(snapshot, DEFAULT_CONFIG);
    expect(compiled.problems.map((p) => p.code).sort()).toEqual([
      "policy.ip-block",
      "policy.ip-block",
      "policy.peer",
      "policy.peer",
      "policy.port",
      "policy.port",
      "policy.port",
      "policy.selector",
    ]);
    const v = verdict(snapshot, DEFAULT_CONFIG, { from: "y/a", to: "x/a", network: BLUE, port: 80 });
    expect(v.ok && v.value.allowed).toBe(false);
  });

  it("ignores pods that are not Running, hostNetwork or without addresses as peers", () => {
    const extra = [
      { name: "pending", phase: "Pending", hostNetwork: false },
      { name: "host", phase: "Running", hostNetwork: true },
    ].map(({ name, phase, hostNetwork }) =>
      stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name,
          namespace: "y",
          labels: { pod: "a" },
          annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify([{ name: BLUE, interface: "net1", ips: [`198.18.0.${name === "host" ? 40 : 41}`] }]) },
        },
        spec: { nodeName: "node-1", hostNetwork, containers: [{ name: "c" }] },
        status: { phase },
      }),
    );
    const snapshot = snapshotFrom(gridYaml(), ...extra, stringify(policy("x", "from-y-a", { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } }] }] })));
    const state = compile(snapshot, DEFAULT_CONFIG).states.get("x/b")!;
    const text = podScript(state);
    expect(text).toContain("198.18.0.13"); // y/a
    expect(text).not.toContain("198.18.0.40");
    expect(text).not.toContain("198.18.0.41");
    expect(text).not.toContain("198.18.1."); // red addresses of the peers stay out of a blue policy
  });
});

describe("incremental", () => {
  function bigSnapshot(relabelled: boolean): Snapshot {
    const builder = new SnapshotBuilder(1);
    const add = (o: Record<string, unknown>): void => addStateObject(builder, "test", o);
    add({ kind: "NetworkAttachmentDefinition", metadata: { name: "blue", namespace: "nets" }, spec: { config: '{"type":"macvlan"}' } });
    for (let n = 0; n < 10; n++) {
      add({ kind: "Namespace", metadata: { name: `ns${n}`, labels: { team: `t${n}` } } });
      add({
        kind: "MultiNetworkPolicy",
        metadata: { name: "app0-from-db", namespace: `ns${n}`, annotations: { "k8s.v1.cni.cncf.io/policy-for": "nets/blue" } },
        spec: { podSelector: { matchLabels: { app: "app0" } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: "db" } } }] }] },
      });
      for (let i = 0; i < 100; i++) {
        const role = relabelled && n === 3 && i === 8 ? "db" : i % 7 === 0 ? "db" : "web";
        add({
          kind: "Pod",
          metadata: {
            name: `p${i}`,
            namespace: `ns${n}`,
            labels: { app: `app${i % 10}`, role },
            annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify([{ name: "nets/blue", interface: "net1", ips: [`198.18.${n}.${i + 1}`, `fd00::${n}:${i + 1}`] }]) },
          },
          spec: { nodeName: "node-1", containers: [{ name: "c" }] },
          status: { phase: "Running" },
        });
      }
    }
    add({
      kind: "MultiNetworkPolicy",
      metadata: { name: "from-t3", namespace: "ns0", annotations: { "k8s.v1.cni.cncf.io/policy-for": "nets/blue" } },
      spec: { podSelector: { matchLabels: { app: "app5" } }, egress: [{ to: [{ namespaceSelector: { matchLabels: { team: "t3" } }, podSelector: { matchLabels: { role: "web" } } }] }] },
    });
    return builder.build();
  }

  it("one pod relabelled in a 1,000-pod snapshot touches only the pods whose sets change, with element operations only", () => {
    const before = compile(bigSnapshot(false), DEFAULT_CONFIG, { node: "node-1" });
    expect(before.states.size).toBe(1000);
    const after = bigSnapshot(true);
    const events = diffSnapshots(before.snapshot, after);
    expect(events).toEqual([{ kind: "pod", key: "ns3/p8" }]);
    const result = recompile(before, after, DEFAULT_CONFIG, events);
    // ns3's app0 pods gain a db peer (ingress); ns0's app5 pods lose a web destination (egress).
    const expected = [...Array(10).keys()].map((i) => `ns3/p${i * 10}`).concat([...Array(10).keys()].map((i) => `ns0/p${i * 10 + 5}`));
    expect([...result.affected].sort()).toEqual(expected.sort());
    for (const change of result.changes.values()) {
      expect(change.ops.every((op) => op.object.kind === "element")).toBe(true);
      expect(change.ops.length).toBeLessThanOrEqual(6);
    }
    expect(opsScript(result.changes.get("ns3/p0")!.ops)).toMatchInlineSnapshot(`
      "add element inet nadguard ingress_v4_hosts_all { "net1" . 198.18.3.9 }
      add element inet nadguard ingress_v6_hosts_all { "net1" . fd00::3:9 }
      "
    `);
    expect(fingerprints(result.compiled)).toEqual(fingerprints(compile(after, DEFAULT_CONFIG, { node: "node-1" })));
  });

  it("matches a full compile for every pair of scenarios (policy events) and for a namespace relabel", () => {
    const snapshots = scenarios.map((s) => gridSnapshot(...s.policies));
    for (const [i, a] of snapshots.entries()) {
      const from = compile(a, DEFAULT_CONFIG);
      for (const b of [snapshots[(i + 1) % snapshots.length]!, snapshots[(i + 7) % snapshots.length]!]) {
        expect(fingerprints(recompile(from, b, DEFAULT_CONFIG).compiled)).toEqual(fingerprints(compile(b, DEFAULT_CONFIG)));
      }
    }
    const ns = scenarios.find((s) => s.name.startsWith("namespaceSelector-only"))!;
    const relabelled = snapshotFrom(gridYaml().replace("labels:\n    ns: z", "labels:\n    ns: y"), ...ns.policies.map((p) => stringify(p)));
    const result = recompile(compile(gridSnapshot(...ns.policies), DEFAULT_CONFIG), relabelled, DEFAULT_CONFIG);
    expect([...result.affected].sort()).toEqual(["x/a", "x/b", "x/c"]);
    expect(fingerprints(result.compiled)).toEqual(fingerprints(compile(relabelled, DEFAULT_CONFIG)));
  });

  it("rebuilds a chain inside the transaction when the static part changes", () => {
    const state = compile(gridSnapshot(), DEFAULT_CONFIG).states.get("x/a");
    const ops = transitionOps(state, state, { acceptIcmpEcho: true }, {});
    expect(ops.filter((op) => op.verb === "flush").map((op) => (op.object as { name: string }).name)).toEqual(["ingress", "egress"]);
    expect(transitionOps(state, state)).toEqual([]);
    expect(GRID.length).toBe(9);
  });
});
