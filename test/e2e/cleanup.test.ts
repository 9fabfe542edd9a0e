// End-to-end test of the uninstall step, `nadguard enforce --cleanup`, run as the process a user (or
// manifests/uninstall/'s DaemonSet) runs, on real network namespaces: tables put there by a real
// `nadguard enforce --once`, then removed; read back from the kernel (no `inet nadguard` table left
// in any pod's netns) and by traffic (a connection the policy blocked passes afterwards); a second
// run finds nothing and still exits 0; a pod without a netns is no failure; a netns it cannot clean
// is named and makes it exit 1; flags of enforcing beside --cleanup are a usage error.
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { policy } from "../policy-conformance/grid.js";
import { Lab, NODE, type NetworkSpec } from "./lab.js";
import { LEVEL, acquireE2eLock, logLines, nadguard } from "./sys.js";
import { actualTable } from "./tables.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("\n!! test/e2e/cleanup.test.ts SKIPPED: not root (network namespaces, CNI plugins and nft need root) !!\n");

const GREEN: NetworkSpec = { name: "green", type: "bridge", ifname: "net1", v4Subnet: "198.18.7.0/24", v6Subnet: "fd00:7::/64" };

/** A pod of the state directory, on this node, with an attachment on green (its netns is up to the test). */
function statePod(name: string, uid: string): unknown {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "x",
      uid,
      labels: { pod: name },
      annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify([{ name: "nets/green", interface: "net1", ips: ["198.18.7.99"] }]) },
    },
    spec: { nodeName: NODE, containers: [{ name: "app" }] },
    status: { phase: "Running" },
  };
}

describe.skipIf(!isRoot)("e2e: nadguard enforce --cleanup", { timeout: 180_000 }, () => {
  let lab: Lab;
  let release: (() => Promise<void>) | undefined;
  /** A regular file where the template expects a netns: nft cannot enter it. */
  let notANetns: string | undefined;
  const enforce = (...more: string[]) => nadguard(["enforce", "--state", lab.stateDir, "--node", NODE, "--netns", lab.netnsTemplate, ...more]);
  const ipOf = (pod: string): string => lab.pod(pod).attached.find((a) => a.network === "nets/green")!.ips[0]!;
  const tables = async (): Promise<Record<string, boolean>> =>
    Object.fromEntries(await Promise.all(["x/a", "x/b"].map(async (pod) => [pod, (await actualTable(lab.pod(pod).netnsPath)) !== undefined])));

  beforeAll(async () => {
    release = await acquireE2eLock();
    lab = await Lab.create({ networks: [GREEN], namespaces: { x: { ns: "x" } }, agentPorts: { tcp: [80], udp: [53] } });
    for (const [name, host] of [["a", 10], ["b", 11]] as const) {
      await lab.addPod({ namespace: "x", name, labels: { pod: name }, attachments: [{ network: "nets/green", v4: `198.18.7.${host}`, v6: `fd00:7::${host.toString(16)}` }] });
    }
    // x/a accepts nothing on green; x/b is selected by no policy.
    await lab.setPolicies([policy("x", "a-from-nobody", { podSelector: { matchLabels: { pod: "a" } }, policyTypes: ["Ingress"] }, "nets/green")]);
    // A pod of the node whose sandbox is gone: nothing to clean there, and no failure.
    await writeFile(join(lab.stateDir, "pods", "x_ghost.yaml"), stringify(statePod("ghost", "0a0b0c0d-0000-4000-8000-00000000cafe")));
  }, 600_000);

  afterAll(async () => {
    if (notANetns) await rm(notANetns, { force: true });
    await lab?.destroy();
    await release?.();
  }, 120_000);

  it("before: enforce --once puts the table in every pod's netns and blocks x/b -> x/a", async () => {
    const r = await enforce("--once");
    // x/ghost has no netns: --once names it and exits 1; the other pods are enforced all the same.
    expect(r.code).toBe(1);
    expect(logLines(r.stdout).filter((l) => l.level >= LEVEL.error && l.pod !== undefined).map((l) => l.pod)).toEqual(["x/ghost"]);
    expect(await tables()).toEqual({ "x/a": true, "x/b": true });
    expect((await lab.probe("x/b", { proto: "tcp", host: ipOf("x/a"), port: 80 })).result).toBe("closed");
  });

  it("removes the table from every pod's netns, says so per pod, exits 0, and the blocked connection passes", async () => {
    const r = await enforce("--cleanup");
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const logs = logLines(r.stdout);
    const removed = logs.filter((l) => l.removed === true).sort((a, b) => String(a.pod).localeCompare(String(b.pod)));
    expect(removed.map((l) => [l.level, l.pod, l.netns, l.msg])).toEqual(
      ["x/a", "x/b"].map((pod) => [LEVEL.info, pod, lab.pod(pod).netnsPath, `${pod}: table inet nadguard removed from ${lab.pod(pod).netnsPath}`]),
    );
    expect(logs.at(-1)).toMatchObject({ level: LEVEL.info, cleaned: 2, without: 0, failed: 0, msg: expect.stringMatching(/^cleanup: table inet nadguard removed from 2 netns \(0 had none\), 0 failed, in \d+ ms$/) });
    expect(await tables()).toEqual({ "x/a": false, "x/b": false });
    expect((await lab.probe("x/b", { proto: "tcp", host: ipOf("x/a"), port: 80 })).result).toBe("open");
  });

  it("is idempotent: a second run removes nothing, names each netns it found clean at debug, and exits 0", async () => {
    const r = await enforce("--cleanup", "--log-level", "debug");
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const logs = logLines(r.stdout);
    expect(logs.filter((l) => l.removed === true)).toEqual([]);
    expect(logs.filter((l) => l.removed === false).map((l) => [l.level, l.pod]).sort()).toEqual([
      [LEVEL.debug, "x/a"],
      [LEVEL.debug, "x/b"],
    ]);
    expect(logs).toContainEqual(expect.objectContaining({ level: LEVEL.debug, pod: "x/ghost", code: "netns.not-found" }));
    expect(logs.at(-1)).toMatchObject({ level: LEVEL.info, cleaned: 0, without: 2, failed: 0 });
    expect(await tables()).toEqual({ "x/a": false, "x/b": false });
  });

  it("exits 1 naming a netns it cannot clean, and still cleans the others", async () => {
    expect((await enforce("--once")).code).toBe(1); // the tables back (x/ghost still has no netns)
    expect(await tables()).toEqual({ "x/a": true, "x/b": true });
    notANetns = `/run/netns/${lab.prefix}x_broken`;
    await writeFile(notANetns, "");
    await writeFile(join(lab.stateDir, "pods", "x_broken.yaml"), stringify(statePod("broken", "0a0b0c0d-0000-4000-8000-00000000b0b0")));
    const r = await enforce("--cleanup");
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: "" });
    const logs = logLines(r.stdout);
    expect(logs.filter((l) => l.level >= LEVEL.error && l.pod !== undefined)).toEqual([
      expect.objectContaining({ pod: "x/broken", netns: notANetns, msg: expect.stringMatching(new RegExp(`^x/broken \\(${notANetns}\\): cannot remove table inet nadguard: `)) }),
    ]);
    expect(logs.at(-1)).toMatchObject({ level: LEVEL.error, cleaned: 2, failed: 1, failedPods: ["x/broken"], msg: expect.stringMatching(/^cleanup: table inet nadguard removed from 2 netns \(0 had none\), 1 failed \(x\/broken\), in \d+ ms$/) });
    expect(await tables()).toEqual({ "x/a": false, "x/b": false });
  });

  it("refuses the flags of enforcing beside --cleanup: exit 2, nothing done", async () => {
    const r = await enforce("--cleanup", "--once", "--metrics-listen", "127.0.0.1:0");
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 2, stdout: "" });
    expect(r.stderr.split("\n")[0]).toBe("nadguard enforce: --cleanup removes nadguard's tables and exits; it takes no --once, --metrics-listen");
  });
});
