// Reading back what the pods' namespaces hold (only table inet nadguard) and comparing it with what
// the compiler wants for the lab's current state directory.
import type { Snapshot } from "../../src/api/snapshot.js";
import { loadStateDir } from "../../src/cluster/state-dir.js";
import { DEFAULT_CONFIG } from "../../src/config/config.js";
import { sameState } from "../../src/enforcer/plan.js";
import { Nft } from "../../src/nft/nft.js";
import type { TableState } from "../../src/nft/state.js";
import { compile, desiredTable } from "../../src/policy/compiler.js";
import { NODE, type Lab } from "./lab.js";
import { sleep } from "./sys.js";

/** The desired table of every lab pod for a snapshot (undefined: no table wanted). */
export function desiredTables(lab: Lab, snapshot: Snapshot): Map<string, TableState | undefined> {
  const compiled = compile(snapshot, DEFAULT_CONFIG, { node: NODE });
  return new Map([...lab.pods.keys()].map((key) => [key, compiled.states.has(key) ? desiredTable(compiled.states.get(key), compiled.options) : undefined]));
}

/** The table a pod's netns holds, elements and rule text included; undefined when there is none. */
export async function actualTable(netnsPath: string): Promise<TableState | undefined> {
  const listing = await new Nft({ netns: netnsPath }).list({ elements: true, text: true });
  if (listing.ok) return listing.value;
  if (listing.error.reason === "not-found") return undefined;
  throw new Error(`cannot read table inet nadguard in ${netnsPath}: ${listing.error.message}`);
}

export function sameOrBothAbsent(a: TableState | undefined, b: TableState | undefined): boolean {
  return a === undefined || b === undefined ? a === b : sameState(a, b);
}

/** Pods whose netns does not hold what the compiler wants for the lab's state directory now. */
export async function divergent(lab: Lab): Promise<string[]> {
  const want = desiredTables(lab, await loadStateDir(lab.stateDir));
  const out: string[] = [];
  await Promise.all(
    [...lab.pods.values()].map(async (pod) => {
      if (!sameOrBothAbsent(await actualTable(pod.netnsPath), want.get(pod.key))) out.push(pod.key);
    }),
  );
  return out.sort();
}

/** Waits until every pod's netns holds its desired table. */
export async function waitConverged(lab: Lab, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  while (Date.now() < deadline) {
    last = await divergent(lab);
    if (last.length === 0) return;
    await sleep(50);
  }
  throw new Error(`not converged after ${timeoutMs} ms: ${last.join(", ")}`);
}
