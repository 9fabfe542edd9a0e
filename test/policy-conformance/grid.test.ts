// Conformance of the policy engine on the x/y/z × a/b/c grid: every scenario (scenarios.ts) is
// checked through the verdict oracle and through the rendered tables (both families), against
// hand-written truth tables.
import { describe, expect, it } from "vitest";
import { BLUE, formatTable, gridSnapshot } from "./grid.js";
import { probeGrid } from "./harness.js";
import { scenarios } from "./scenarios.js";

describe("conformance grid (verdict and rendered tables, IPv4 and IPv6)", () => {
  it.each(scenarios.flatMap((s) => s.probes.map(([probe, expected]) => ({ name: s.name, label: `${probe.port}/${probe.protocol ?? "TCP"} on ${probe.network ?? BLUE}`, policies: s.policies, probe, expected }))))(
    "$name — $label",
    ({ policies, probe, expected }) => {
      const got = probeGrid(gridSnapshot(...policies), probe);
      expect(formatTable(got)).toBe(formatTable(expected));
    },
  );

  it("has at least ten scenarios with hand-written tables", () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(10);
  });
});
