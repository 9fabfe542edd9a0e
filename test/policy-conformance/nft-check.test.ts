// The real `nft` binary accepts every script the compiler renders: the full table of every pod of
// every scenario (`nft --check`), and, applied for real in a throwaway network namespace, the
// incremental transactions between scenarios (element deletes and adds of overlapping boxes in one
// transaction). Runs as root (as .ci/run does); the namespace carries a per-run prefix and is
// removed at the end, also on failure.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_CONFIG } from "../../src/config/config.js";
import { Nft } from "../../src/nft/nft.js";
import { keyText } from "../../src/nft/objects.js";
import { compile, desiredTable, recompile, transitionOps } from "../../src/policy/compiler.js";
import { freshTableOps } from "../../src/nft/state.js";
import { gridSnapshot } from "./grid.js";
import { scenarios } from "./scenarios.js";

const isRoot = process.getuid?.() === 0;
const NETNS = `ngpol-${process.pid}-${randomBytes(3).toString("hex")}`;

describe.skipIf(!isRoot)("rendered scripts on the real nft", () => {
  const nft = new Nft({ netns: NETNS });

  beforeAll(() => {
    execFileSync("ip", ["netns", "add", NETNS]);
  });
  afterAll(() => {
    execFileSync("ip", ["netns", "delete", NETNS]);
  });

  it.each(scenarios.map((s) => ({ name: s.name, policies: s.policies })))("nft --check accepts every pod's table: $name", async ({ policies }) => {
    const compiled = compile(gridSnapshot(...policies), DEFAULT_CONFIG, { acceptIcmpEcho: policies.length % 2 === 0 });
    expect(compiled.states.size).toBe(9);
    for (const state of compiled.states.values()) {
      const tx = nft.transaction().append(freshTableOps(desiredTable(state, compiled.options)));
      const result = await nft.check(tx);
      expect(result, `${state.pod}\n${tx.render()}`).toEqual({ ok: true, value: undefined });
    }
  });

  it("applies the incremental transactions from scenario to scenario, and the table then equals the desired one", async () => {
    let compiled = compile(gridSnapshot(), DEFAULT_CONFIG);
    const pod = "x/a";
    expect((await nft.run(nft.transaction().append(transitionOps(undefined, compiled.states.get(pod))))).ok).toBe(true);
    for (const scenario of [...scenarios, scenarios[0]!]) {
      const next = recompile(compiled, gridSnapshot(...scenario.policies), DEFAULT_CONFIG);
      const change = next.changes.get(pod);
      if (change) {
        const tx = nft.transaction().append(change.ops);
        const result = await nft.run(tx);
        expect(result, `${scenario.name}\n${tx.render()}`).toEqual({ ok: true, value: undefined });
      }
      compiled = next.compiled;
      const listed = await nft.list({ elements: true });
      expect(listed.ok).toBe(true);
      if (!listed.ok) continue;
      const want = desiredTable(compiled.states.get(pod));
      // Elements read back are the elements written, key text for key text: the enforcer can diff a read-back table.
      const texts = (els: readonly { set: string; key: readonly string[] }[]): string[] => els.map((e) => `${e.set} ${keyText(e)}`).sort();
      expect(texts(listed.value.elements), scenario.name).toEqual(texts(want.elements));
    }
  });
});
