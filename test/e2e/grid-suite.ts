// The end-to-end conformance grid as a suite, for each way the lab attaches its pods (grid.test.ts:
// through `nadguard node` and its shim executed as containerd does; grid-cri.test.ts: sandboxes
// made by a private containerd's CRI): the policy-engine scenarios (test/policy-conformance/
// scenarios.ts) enforced by `nadguard enforce --once`, run as the process a user runs, probed with
// real sockets over every pair, on two TCP ports, one UDP port and SCTP where the kernel has it, on
// both secondary networks and both address families. Every probe is compared with the engine's
// verdict oracle, and every probe a scenario lists with its hand-written truth table; the
// eth0-equivalent must stay open throughout.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadStateDir } from "../../src/cluster/state-dir.js";
import { BLUE, GRID, RED, v4, v6 } from "../policy-conformance/grid.js";
import type { Scenario } from "../policy-conformance/scenarios.js";
import { compareWithOracle, eth0Failures, formatTable, gridLab, matrixKey as key, modelOf, observeGrid, probeLabel, type MatrixProbe } from "./grid-lab.js";
import type { Lab, LabOptions } from "./lab.js";
import { NODE } from "./lab.js";
import { LEVEL, acquireE2eLock, logLines, nadguard } from "./sys.js";

const isRoot = process.getuid?.() === 0;

/**
 * Registers the grid's suite: the lab made with `attach` under the e2e lock, the checks of every
 * pod's attachments and of the grid before any policy, then one test per scenario of `scenarios`;
 * `more` adds the mode's own tests (given the running lab). After the suite the lab is destroyed,
 * and in cri mode what the node harness could not remove fails it.
 */
export function describeGrid(title: string, attach: NonNullable<LabOptions["attach"]>, scenarios: readonly Scenario[], more?: (lab: () => Lab) => void): void {
  if (!isRoot) {
    console.warn(
      "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n" +
        `!! ${title} SKIPPED: not root, cannot create network namespaces, run CNI plugins or load nftables rules. Run as root.\n` +
        "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
    );
  }
  describe.skipIf(!isRoot)(title, () => {
    let lab: Lab | undefined;
    let release: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      release = await acquireE2eLock();
      lab = await gridLab(attach);
      if (!lab.sctp.available) console.warn(`e2e grid: SCTP probes not run on this machine: ${lab.sctp.reason}`);
    }, 600_000);

    afterAll(async () => {
      try {
        await lab?.destroy();
        // destroy() stopped the node (idempotent): what it could not remove.
        expect((await lab?.containerd?.stop()) ?? []).toEqual([]);
      } finally {
        await release?.();
      }
    }, 120_000);

    it("has every pod attached through the shim: eth0 from the cluster network, net1 and net2 with the grid's addresses", () => {
      const attached = GRID.map((key) => [key, lab!.pod(key).attached.map((a) => [a.network, a.ifname, [...a.ips].sort()])]);
      const expected = GRID.map((key) => [
        key,
        [
          [BLUE, "net1", [v4(BLUE, key), v6(BLUE, key)].sort()],
          [RED, "net2", [v4(RED, key), v6(RED, key)].sort()],
        ],
      ]);
      expect(attached).toEqual(expected);
      for (const key of GRID) expect(lab!.pod(key).eth0.v4).toMatch(/^198\.19\.0\.\d+$/);
    });

    it("has every pod answering on every network before any policy", async () => {
      const observed = await observeGrid(lab!, [
        { network: BLUE, protocol: "TCP", port: 80 },
        { network: RED, protocol: "UDP", port: 53 },
      ], () => true);
      for (const o of observed) {
        expect(o.anomalies).toEqual([]);
        expect(o.cells.flat().every(Boolean)).toBe(true);
      }
    });

    more?.(() => lab!);

    it.each(scenarios)("$name", async (scenario) => {
      await lab!.setPolicies(scenario.policies);
      const enforced = await nadguard(["enforce", "--state", lab!.stateDir, "--node", NODE, "--netns", lab!.netnsTemplate, "--once", "--parallelism", "9"]);
      const errors = logLines(enforced.stdout).filter((l) => l.level >= LEVEL.error);
      expect({ code: enforced.code, stderr: enforced.stderr, errors }).toEqual({ code: 0, stderr: "", errors: [] });

      const model = modelOf(await loadStateDir(lab!.stateDir));
      const base: MatrixProbe[] = [BLUE, RED].flatMap((network) => [
        { network, protocol: "TCP" as const, port: 80 },
        { network, protocol: "TCP" as const, port: 81 },
        { network, protocol: "UDP" as const, port: 53 },
        ...(lab!.sctp.available ? [{ network, protocol: "SCTP" as const, port: 80 }] : []),
      ]);
      const listed = scenario.probes
        .map(([p, table]) => ({ probe: { network: p.network ?? BLUE, protocol: p.protocol ?? "TCP", port: p.port } as MatrixProbe, table }))
        .filter((l) => l.probe.protocol !== "SCTP" || lab!.sctp.available);
      const probes = [...new Map([...base, ...listed.map((l) => l.probe)].map((p) => [key(p), p])).values()];

      const { observed, problems } = await compareWithOracle(lab!, probes, model);
      for (const l of listed) {
        for (const o of observed.filter((x) => key(x.probe) === key(l.probe))) {
          if (formatTable(o.cells) !== formatTable(l.table)) {
            problems.push(`${probeLabel(o.probe, o.family)} differs from the hand-written table:\nobserved\n${formatTable(o.cells)}\nexpected\n${formatTable(l.table)}`);
          }
        }
      }
      problems.push(...(await eth0Failures(lab!)));
      expect(problems.join("\n\n")).toBe("");
    }, 180_000);
  });
}
