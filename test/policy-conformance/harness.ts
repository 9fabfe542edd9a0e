// Runs a probe over every (from, to) pair of the grid twice: through the verdict oracle and through
// the rendered tables (the source's egress chain, then the destination's ingress chain, evaluated
// by table-eval on the desired state), per address family.
import type { Snapshot } from "../../src/api/snapshot.js";
import { DEFAULT_CONFIG } from "../../src/config/config.js";
import type { Family } from "../../src/networks/addresses.js";
import { type Compiled, compile, desiredTable } from "../../src/policy/compiler.js";
import { buildModel } from "../../src/policy/model.js";
import type { L4Protocol } from "../../src/policy/ranges.js";
import { evaluatePacket } from "../../src/policy/table-eval.js";
import { verdictOf } from "../../src/policy/verdict.js";
import type { TableState } from "../../src/nft/state.js";
import { BLUE, GRID, RED, v4, v6 } from "./grid.js";

export interface GridProbe {
  readonly network?: string;
  readonly port: number;
  readonly protocol?: L4Protocol;
}

export function verdictGrid(snapshot: Snapshot, probe: GridProbe, family: Family): boolean[][] {
  const model = buildModel(snapshot, DEFAULT_CONFIG);
  return GRID.map((from) =>
    GRID.map((to) => {
      const result = verdictOf(model, { from, to, network: probe.network ?? BLUE, port: probe.port, protocol: probe.protocol ?? "TCP", family });
      if (!result.ok) throw new Error(JSON.stringify(result.error));
      return result.value.allowed;
    }),
  );
}

const L4: Record<L4Protocol, string> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

export function tableGrid(compiled: Compiled, probe: GridProbe, family: Family): boolean[][] {
  const network = probe.network ?? BLUE;
  const ifname = network === RED ? "net2" : "net1";
  const tables = new Map<string, TableState>();
  const tableOf = (pod: string): TableState => {
    let t = tables.get(pod);
    if (!t) tables.set(pod, (t = desiredTable(compiled.states.get(pod), compiled.options)));
    return t;
  };
  const addr = family === 4 ? v4 : v6;
  return GRID.map((from) =>
    GRID.map((to) => {
      const packet = { family, saddr: addr(network, from), daddr: addr(network, to), l4proto: L4[probe.protocol ?? "TCP"], dport: probe.port };
      // Traffic to one's own address never leaves the pod: it goes over lo.
      const out = from === to ? "lo" : ifname;
      const egress = evaluatePacket(tableOf(from), { ...packet, hook: "output", ifname: out });
      const ingress = evaluatePacket(tableOf(to), { ...packet, hook: "input", ifname: out });
      return egress === "accept" && ingress === "accept";
    }),
  );
}

/** Both oracles, both families: returns one table when all four agree, else throws with all of them. */
export function probeGrid(snapshot: Snapshot, probe: GridProbe): boolean[][] {
  const compiled = compile(snapshot, DEFAULT_CONFIG);
  const results = ([4, 6] as const).flatMap((family) => [
    { name: `verdict v${family}`, cells: verdictGrid(snapshot, probe, family) },
    { name: `tables v${family}`, cells: tableGrid(compiled, probe, family) },
  ]);
  const first = JSON.stringify(results[0]!.cells);
  if (results.some((r) => JSON.stringify(r.cells) !== first)) {
    throw new Error(`oracles disagree for ${JSON.stringify(probe)}:\n${results.map((r) => `${r.name}\n${JSON.stringify(r.cells)}`).join("\n")}`);
  }
  return results[0]!.cells;
}
