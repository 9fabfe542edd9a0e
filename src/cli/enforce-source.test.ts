// The enforcer's desired-state source (compilerSource): across the conformance scenarios, each pod
// whose table changes carries the compiler's transaction from its previous table, and that
// transaction, run on the nft fake holding the previous table, leaves exactly the new one.
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG } from "../config/config.js";
import type { DesiredTable } from "../enforcer/enforcer.js";
import { NftFake } from "../nft/fake.js";
import { freshTableOps } from "../nft/state.js";
import { GRID, gridSnapshot } from "../../test/policy-conformance/grid.js";
import { scenarios } from "../../test/policy-conformance/scenarios.js";
import { compilerSource } from "./enforce.js";

async function holding(table: DesiredTable): Promise<NftFake> {
  const fake = new NftFake();
  expect((await fake.run(fake.transaction().append(freshTableOps(table.state)))).ok).toBe(true);
  return fake;
}

describe("compilerSource", () => {
  it("gives each changed pod the transaction from its previous table, which leaves exactly the new table", async () => {
    const source = compilerSource(DEFAULT_CONFIG);
    let tables = source.desired(gridSnapshot(), "node-1");
    expect(tables.size).toBe(GRID.length);
    let transitions = 0;
    for (const scenario of scenarios) {
      const next = source.desired(gridSnapshot(...scenario.policies), "node-1");
      for (const [pod, table] of next) {
        const before = tables.get(pod);
        if (before === table) continue;
        expect(before && table.fingerprint !== before.fingerprint, `${scenario.name}: ${pod}`).toBe(true);
        if (!table.transition) continue;
        transitions += 1;
        expect(table.transition.from, `${scenario.name}: ${pod}`).toBe(before!.fingerprint);
        const fake = await holding(before!);
        expect(await fake.run(fake.transaction().append(table.transition.ops)), `${scenario.name}: ${pod}`).toEqual({ ok: true, value: undefined });
        expect(fake.dump(), `${scenario.name}: ${pod}`).toBe((await holding(table)).dump());
      }
      tables = next;
    }
    expect(transitions).toBeGreaterThan(GRID.length);
  });

  it("keeps a pod's table object while its fingerprint stays, and a first compile carries no transaction", () => {
    const source = compilerSource(DEFAULT_CONFIG);
    const first = source.desired(gridSnapshot(), "node-1");
    for (const table of first.values()) expect(table.transition).toBeUndefined();
    const again = source.desired(gridSnapshot(), "node-1");
    for (const [pod, table] of again) expect(table).toBe(first.get(pod));
  });
});
