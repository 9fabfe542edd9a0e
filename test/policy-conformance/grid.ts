// The conformance grid (the shape of the upstream netpol e2e suite and of cyclonus): namespaces x,
// y, z (label ns=<name>) × pods a, b, c (label pod=<name>), each Running with addresses on two
// macvlan NADs, nets/blue (net1) and nets/red (net2), in 198.18.0.0/15 and fd00::/8. Container
// ports differ per pod so that named ports resolve differently: web/TCP is 80 on a, 81 on b and
// missing on c; dns/UDP is 53 everywhere; web/SCTP is 80 on a.
import { stringify } from "yaml";
import type { Snapshot } from "../../src/api/snapshot.js";
import { snapshotFrom } from "../support/cluster.js";

export const NAMESPACES = ["x", "y", "z"] as const;
export const PODS = ["a", "b", "c"] as const;
/** Grid order of rows and columns: xa xb xc ya yb yc za zb zc. */
export const GRID: readonly string[] = NAMESPACES.flatMap((ns) => PODS.map((p) => `${ns}/${p}`));
export const BLUE = "nets/blue";
export const RED = "nets/red";

export function v4(network: string, pod: string): string {
  return `198.18.${network === BLUE ? 0 : 1}.${10 + GRID.indexOf(pod)}`;
}
export function v6(network: string, pod: string): string {
  return `fd00:${network === BLUE ? "b" : "c"}::${(10 + GRID.indexOf(pod)).toString(16)}`;
}

/** Each grid pod's containerPorts (named ports resolve against these); the e2e lab uses the same. */
export const PORTS: Record<string, unknown[]> = {
  a: [
    { name: "web", containerPort: 80 },
    { name: "web", containerPort: 80, protocol: "SCTP" },
    { name: "dns", containerPort: 53, protocol: "UDP" },
  ],
  b: [
    { name: "web", containerPort: 81 },
    { name: "dns", containerPort: 53, protocol: "UDP" },
  ],
  c: [{ name: "dns", containerPort: 53, protocol: "UDP" }],
};

function nad(name: string, type = "macvlan"): unknown {
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name, namespace: "nets" },
    spec: { config: JSON.stringify({ cniVersion: "1.0.0", name, type, master: "eth0", ipam: { type: "static" } }) },
  };
}

function gridPod(key: string): unknown {
  const [ns, name] = key.split("/") as [string, string];
  const status = [
    { name: "cluster", interface: "eth0", ips: [`10.0.0.${10 + GRID.indexOf(key)}`], default: true },
    { name: BLUE, interface: "net1", ips: [v4(BLUE, key), v6(BLUE, key)] },
    { name: RED, interface: "net2", ips: [v4(RED, key), v6(RED, key)] },
  ];
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: ns,
      labels: { pod: name },
      annotations: { "k8s.v1.cni.cncf.io/networks": "nets/blue@net1,nets/red@net2", "k8s.v1.cni.cncf.io/network-status": JSON.stringify(status) },
    },
    spec: { nodeName: "node-1", containers: [{ name: "app", image: "registry.example/app:1", ports: PORTS[name] }] },
    status: { phase: "Running" },
  };
}

/** The grid's objects as YAML documents. */
export function gridYaml(): string {
  const objects: unknown[] = [
    ...NAMESPACES.map((ns) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name: ns, labels: { ns } } })),
    { apiVersion: "v1", kind: "Namespace", metadata: { name: "nets" } },
    nad("blue"),
    nad("red"),
    ...GRID.map(gridPod),
  ];
  return objects.map((o) => stringify(o)).join("---\n");
}

/** A MultiNetworkPolicy for the grid; `policyFor` defaults to nets/blue. */
export function policy(namespace: string, name: string, spec: Record<string, unknown>, policyFor: string | null = BLUE): unknown {
  return {
    apiVersion: "k8s.cni.cncf.io/v1beta1",
    kind: "MultiNetworkPolicy",
    metadata: { name, namespace, ...(policyFor !== null && { annotations: { "k8s.v1.cni.cncf.io/policy-for": policyFor } }) },
    spec,
  };
}

export function gridSnapshot(...policies: unknown[]): Snapshot {
  return snapshotFrom(gridYaml(), ...policies.map((p) => stringify(p)));
}

/**
 * Parses a hand-written truth table: 9 rows (from xa … zc), each 9 cells (to xa … zc), `1`
 * allowed, `.` denied; spaces and a leading row label are ignored.
 */
export function truthTable(text: string): boolean[][] {
  const rows = text
    .split("\n")
    .map((line) => line.replace(/^\s*[xyz][abc]\s*/, "").replace(/\s+/g, ""))
    .filter((line) => line.length > 0);
  if (rows.length !== 9 || rows.some((r) => !/^[1.]{9}$/.test(r))) throw new Error(`bad truth table:\n${text}`);
  return rows.map((r) => [...r].map((c) => c === "1"));
}

/** A truth table as text, for readable failure diffs. */
export function formatTable(cells: boolean[][]): string {
  const header = `   ${GRID.map((k) => k.replace("/", "")).join(" ")}`;
  return [header, ...cells.map((row, i) => `${GRID[i]!.replace("/", "")} ${row.map((c) => (c ? " 1" : " .")).join(" ")}`)].join("\n");
}
