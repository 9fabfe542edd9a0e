// The conformance grid of the policy engine (test/policy-conformance/grid.ts), built for real:
// namespaces x, y, z (label ns=<name>) × pods a, b, c (label pod=<name>), each attached to two
// secondary networks by the reference CNI plugins — nets/blue (bridge plugin, net1) and nets/red
// (macvlan, net2) — with exactly the grid's addresses (host-local pinned per pod), so that the
// hand-written truth tables and their ipBlocks hold unchanged. Probes run over every pair.
import type { Snapshot } from "../../src/api/snapshot.js";
import { DEFAULT_CONFIG } from "../../src/config/config.js";
import { buildModel, type PolicyModel } from "../../src/policy/model.js";
import type { L4Protocol } from "../../src/policy/ranges.js";
import { verdictOf } from "../../src/policy/verdict.js";
import { BLUE, GRID, NAMESPACES, PODS, PORTS, RED, formatTable, v4, v6 } from "../policy-conformance/grid.js";
import type { Proto, ProbeResult } from "./agent-client.js";
import { Lab, type LabOptions, type NetworkSpec } from "./lab.js";

export const GRID_NETWORKS: readonly NetworkSpec[] = [
  { name: "blue", type: "bridge", ifname: "net1", v4Subnet: "198.18.0.0/24", v6Subnet: "fd00:b::/64" },
  { name: "red", type: "macvlan", ifname: "net2", v4Subnet: "198.18.1.0/24", v6Subnet: "fd00:c::/64" },
];

/** Every port a scenario of the grid probes, so that an open port always has a listener. */
export const GRID_AGENT_PORTS = { tcp: [79, 80, 81, 82], udp: [1, 53, 80, 81, 5353], sctp: [80, 5353] } as const;

/** The grid's lab; `attach` as in LabOptions (the lab's own CNI calls by default, through `nadguard node` and its shim, or sandboxes of a private containerd). */
export async function gridLab(attach: LabOptions["attach"] = "direct"): Promise<Lab> {
  const lab = await Lab.create({
    attach,
    networks: GRID_NETWORKS,
    namespaces: Object.fromEntries(NAMESPACES.map((ns) => [ns, { ns }])),
    agentPorts: GRID_AGENT_PORTS,
  });
  try {
    for (const key of GRID) {
      const [namespace, name] = key.split("/") as [string, string];
      await lab.addPod({
        namespace,
        name,
        labels: { pod: name },
        ports: PORTS[name]!,
        attachments: [
          { network: BLUE, v4: v4(BLUE, key), v6: v6(BLUE, key) },
          { network: RED, v4: v4(RED, key), v6: v6(RED, key) },
        ],
      });
    }
  } catch (error) {
    await lab.destroy();
    throw error;
  }
  return lab;
}

export type Family = 4 | 6;

export interface MatrixProbe {
  readonly network: string;
  readonly protocol: L4Protocol;
  readonly port: number;
}

export function probeLabel(p: MatrixProbe, family?: Family): string {
  return `${p.protocol} ${p.port} on ${p.network}${family ? ` (IPv${family})` : ""}`;
}

/** The address of a pod on a network in a family, as the lab's plugins gave it (after restarts too). */
export function addressOf(lab: Lab, pod: string, network: string, family: Family): string {
  const attached = lab.pod(pod).attached.find((a) => a.network === network);
  const ip = attached?.ips.find((a) => (family === 4 ? !a.includes(":") : a.includes(":")));
  if (!ip) throw new Error(`${pod} has no IPv${family} address on ${network}`);
  return ip;
}

const PROTO: Record<L4Protocol, Proto> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

export interface Observed {
  readonly probe: MatrixProbe;
  readonly family: Family;
  /** [from][to] in GRID order: true when the destination answered. */
  readonly cells: boolean[][];
  /** Anything that was neither an answer from the right pod nor silence. */
  readonly anomalies: string[];
}

/**
 * Probes every (from, to) pair of the grid for each probe and family, all at once. A probe that
 * stayed silent where `expectOpen` says it should be open is asked again with a longer timeout
 * before it counts as closed, so that a loaded machine does not turn a slow answer into a denial;
 * silence where a denial is expected needs no second look.
 */
export async function observeGrid(lab: Lab, probes: readonly MatrixProbe[], expectOpen?: (p: MatrixProbe, f: Family, from: string, to: string) => boolean): Promise<Observed[]> {
  const jobs: Promise<Observed>[] = [];
  for (const probe of probes) {
    for (const family of [4, 6] as const) {
      jobs.push(
        (async (): Promise<Observed> => {
          const anomalies: string[] = [];
          const cells = await Promise.all(
            GRID.map((from) =>
              Promise.all(
                GRID.map(async (to) => {
                  const host = addressOf(lab, to, probe.network, family);
                  const request = { proto: PROTO[probe.protocol], host, port: probe.port };
                  let r: ProbeResult = await lab.probe(from, request);
                  if (r.result === "closed" && expectOpen?.(probe, family, from, to)) r = await lab.probe(from, { ...request, timeoutMs: 2000 });
                  if (r.result === "error") anomalies.push(`${from} → ${to} ${host}: ${r.detail}`);
                  if (r.result === "open" && r.reply !== to) anomalies.push(`${from} → ${to} ${host}: answered by ${r.reply}`);
                  return r.result === "open";
                }),
              ),
            ),
          );
          return { probe, family, cells, anomalies };
        })(),
      );
    }
  }
  return Promise.all(jobs);
}

/** The engine's verdict oracle for the same probe, over the same state the enforcer read. */
export function oracleGrid(model: PolicyModel, probe: MatrixProbe, family: Family): boolean[][] {
  return GRID.map((from) =>
    GRID.map((to) => {
      const v = verdictOf(model, { from, to, network: probe.network, port: probe.port, protocol: probe.protocol, family });
      if (!v.ok) throw new Error(`verdict ${from} → ${to} ${probeLabel(probe, family)}: ${JSON.stringify(v.error)}`);
      return v.value.allowed;
    }),
  );
}

export function modelOf(snapshot: Snapshot): PolicyModel {
  return buildModel(snapshot, DEFAULT_CONFIG);
}

/** eth0-equivalent: every pair, TCP 80, both families — must always be open. Returns the failures. */
export async function eth0Failures(lab: Lab): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    GRID.flatMap((from) =>
      GRID.flatMap((to) =>
        (["v4", "v6"] as const).map(async (f) => {
          const host = lab.pod(to).eth0[f];
          let r = await lab.probe(from, { proto: "tcp", host, port: 80 });
          if (r.result === "closed") r = await lab.probe(from, { proto: "tcp", host, port: 80, timeoutMs: 2000 });
          if (r.result !== "open" || r.reply !== to) failures.push(`${from} → ${to} eth0 ${host}: ${r.result} ${r.detail ?? r.reply ?? ""}`);
        }),
      ),
    ),
  );
  return failures;
}

export { BLUE, GRID, PODS, RED, formatTable };

export const matrixKey = (p: MatrixProbe): string => `${p.network} ${p.protocol} ${p.port}`;

/** GRID index of a pod key. */
export function gridIndex(pod: string): number {
  return GRID.indexOf(pod);
}

export interface OracleComparison {
  readonly observed: readonly Observed[];
  /** Every difference from the oracle and every anomaly, as readable text; empty when all agree. */
  readonly problems: string[];
}

/** Probes the grid (both families) and compares each cell with the verdict oracle over the lab's current state. */
export async function compareWithOracle(lab: Lab, probes: readonly MatrixProbe[], model: PolicyModel): Promise<OracleComparison> {
  const oracle = new Map(probes.flatMap((p) => ([4, 6] as const).map((f) => [`${matrixKey(p)} ${f}`, oracleGrid(model, p, f)] as const)));
  const observed = await observeGrid(lab, probes, (p, f, from, to) => oracle.get(`${matrixKey(p)} ${f}`)![gridIndex(from)]![gridIndex(to)]!);
  const problems: string[] = [];
  for (const o of observed) {
    problems.push(...o.anomalies.map((a) => `${probeLabel(o.probe, o.family)}: ${a}`));
    const want = oracle.get(`${matrixKey(o.probe)} ${o.family}`)!;
    if (formatTable(o.cells) !== formatTable(want)) {
      problems.push(`${probeLabel(o.probe, o.family)} differs from the verdict oracle:\nobserved\n${formatTable(o.cells)}\noracle\n${formatTable(want)}`);
    }
  }
  return { observed, problems };
}

/** One cell of an observation: did `from` reach `to`? */
export function reached(observed: readonly Observed[], probe: MatrixProbe, family: Family, from: string, to: string): boolean {
  const o = observed.find((x) => matrixKey(x.probe) === matrixKey(probe) && x.family === family);
  if (!o) throw new Error(`no observation of ${probeLabel(probe, family)}`);
  return o.cells[gridIndex(from)]![gridIndex(to)]!;
}
