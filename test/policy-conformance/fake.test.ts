// The compiler's transactions on the nft fake (src/nft/fake.ts): a fresh table, then the incremental
// transactions from scenario to scenario, leave exactly the desired table (same dump as building it
// whole), and the fake's table decides probes like the verdict oracle.
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG } from "../../src/config/config.js";
import { NftFake } from "../../src/nft/fake.js";
import { freshTableOps } from "../../src/nft/state.js";
import { compile, desiredTable, recompile, transitionOps } from "../../src/policy/compiler.js";
import { evaluatePacket } from "../../src/policy/table-eval.js";
import { verdict } from "../../src/policy/verdict.js";
import { BLUE, GRID, gridSnapshot, v4 } from "./grid.js";
import { scenarios } from "./scenarios.js";

describe("compiler transactions on the nft fake", () => {
  it("incremental transactions converge to the desired table, and the table decides like the oracle", async () => {
    const fakes = new Map(GRID.map((pod) => [pod, new NftFake()] as const));
    let compiled = compile(gridSnapshot(), DEFAULT_CONFIG);
    for (const [pod, fake] of fakes) expect((await fake.run(fake.transaction().append(transitionOps(undefined, compiled.states.get(pod))))).ok).toBe(true);
    for (const scenario of scenarios) {
      const snapshot = gridSnapshot(...scenario.policies);
      const next = recompile(compiled, snapshot, DEFAULT_CONFIG);
      for (const [pod, change] of next.changes) {
        const fake = fakes.get(pod)!;
        const result = await fake.run(fake.transaction().append(change.ops));
        expect(result, `${scenario.name}: ${pod}`).toEqual({ ok: true, value: undefined });
      }
      compiled = next.compiled;
      for (const [pod, fake] of fakes) {
        const whole = new NftFake();
        await whole.run(whole.transaction().append(freshTableOps(desiredTable(compiled.states.get(pod)))));
        expect(fake.dump(), `${scenario.name}: ${pod}`).toBe(whole.dump());
      }
      const probe = scenario.probes[0]![0];
      if (probe.network !== undefined && probe.network !== BLUE) continue;
      for (const from of GRID) {
        for (const to of GRID) {
          if (from === to) continue;
          const packet = { family: 4 as const, saddr: v4(BLUE, from), daddr: v4(BLUE, to), l4proto: (probe.protocol ?? "TCP").toLowerCase(), dport: probe.port };
          const out = evaluatePacket(fakes.get(from)!.state()!, { ...packet, hook: "output", ifname: "net1" });
          const inn = evaluatePacket(fakes.get(to)!.state()!, { ...packet, hook: "input", ifname: "net1" });
          const v = verdict(snapshot, DEFAULT_CONFIG, { from, to, network: BLUE, port: probe.port, protocol: probe.protocol ?? "TCP", family: 4 });
          expect(out === "accept" && inn === "accept", `${scenario.name}: ${from} -> ${to}`).toBe(v.ok && v.value.allowed);
        }
      }
    }
  });
});
