// End-to-end tests of the two node commands on real namespaces: `nadguard enforce --once` (exit 1
// and each failed netns named when a pod's netns is missing) and `nadguard status --netns PATH`
// (what nadguard owns there; "nothing" without a table; exit 1 when the netns does not exist), and
// enforcement on an ipvlan network where the kernel has ipvlan.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { runEnforce } from "../../src/cli/enforce.js";
import { runStatus } from "../../src/cli/status.js";
import { REMOVE_TABLE_OPS } from "../../src/enforcer/plan.js";
import { Nft } from "../../src/nft/nft.js";
import { policy } from "../policy-conformance/grid.js";
import { Lab, NODE, kernelLinkSupport, type NetworkSpec } from "./lab.js";
import { acquireE2eLock } from "./sys.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("\n!! test/e2e/cli.test.ts SKIPPED: not root (network namespaces, CNI plugins and nft need root) !!\n");

const BLUE: NetworkSpec = { name: "blue", type: "bridge", ifname: "net1", v4Subnet: "198.18.4.0/24", v6Subnet: "fd00:4::/64" };
const PURPLE: NetworkSpec = { name: "purple", type: "ipvlan", ifname: "net2", v4Subnet: "198.18.5.0/24", v6Subnet: "fd00:5::/64" };

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, o: (l: string) => void out.push(l), e: (l: string) => void err.push(l) };
}

describe.skipIf(!isRoot)("e2e: nadguard enforce --once and nadguard status", () => {
  let lab: Lab;
  let release: (() => Promise<void>) | undefined;
  let ipvlan: { available: boolean; reason: string };

  beforeAll(async () => {
    release = await acquireE2eLock();
    ipvlan = await kernelLinkSupport("ipvlan");
    if (!ipvlan.available) console.warn(`e2e cli: this kernel has no ipvlan (${ipvlan.reason}); the ipvlan network is left out`);
    lab = await Lab.create({
      networks: ipvlan.available ? [BLUE, PURPLE] : [BLUE],
      namespaces: { x: { ns: "x" } },
      agentPorts: { tcp: [80], udp: [53] },
    });
    for (const [name, host] of [["a", 10], ["b", 11]] as const) {
      await lab.addPod({
        namespace: "x",
        name,
        labels: { pod: name },
        attachments: [
          { network: "nets/blue", v4: `198.18.4.${host}`, v6: `fd00:4::${host.toString(16)}` },
          ...(ipvlan.available ? [{ network: "nets/purple", v4: `198.18.5.${host}`, v6: `fd00:5::${host.toString(16)}` }] : []),
        ],
      });
    }
    await lab.setPolicies([policy("x", "a-only-from-nobody", { podSelector: { matchLabels: { pod: "a" } }, policyTypes: ["Ingress"] }, ipvlan.available ? "nets/blue,nets/purple" : "nets/blue")]);
  }, 600_000);

  afterAll(async () => {
    await lab?.destroy();
    await release?.();
  }, 120_000);

  it("enforce --once: exit 0 and one line per netns", async () => {
    const c = capture();
    const code = await runEnforce({ state: lab.stateDir, node: NODE, netns: lab.netnsTemplate, once: true }, c.o, c.e);
    expect({ code, err: c.err }).toEqual({ code: 0, err: [] });
    expect(c.out.filter((l) => l.startsWith("x/"))).toHaveLength(2);
    expect(c.out.at(-1)).toMatch(/^2 netns reconciled \(\d changed\), 0 failed, in \d+ ms$/);
  });

  it("status: the table, its chains and rules, its sets with element counts, the isolated interfaces", async () => {
    const c = capture();
    expect(await runStatus({ netns: lab.pod("x/a").netnsPath }, c.o, c.e)).toBe(0);
    const text = c.out.join("\n");
    expect(text).toContain(`netns ${lab.pod("x/a").netnsPath}: table inet nadguard`);
    expect(text).toMatch(/ingress \(hook input, priority 0, policy accept\): \d+ rules/);
    expect(text).toMatch(/ingress_isolated\s+\d+ elements? +ifname/);
    expect(text).toContain(`ingress: ${ipvlan.available ? "net1, net2" : "net1"}`);
    const json = capture();
    expect(await runStatus({ netns: lab.pod("x/a").netnsPath, output: "json" }, json.o, json.e)).toBe(0);
    const parsed = JSON.parse(json.out.join("\n")) as { table: string; sets: { name: string; elements: number }[] };
    expect(parsed.table).toBe("inet nadguard");
    expect(parsed.sets.find((s) => s.name === "ingress_isolated")?.elements).toBe(ipvlan.available ? 2 : 1);
  });

  it("status: 'nothing' and exit 0 without a table; exit 1 for a missing netns", async () => {
    const nft = new Nft({ netns: lab.pod("x/b").netnsPath });
    const removed = await nft.run(nft.transaction().append(REMOVE_TABLE_OPS));
    expect(removed.ok).toBe(true);
    const c = capture();
    expect(await runStatus({ netns: lab.pod("x/b").netnsPath }, c.o, c.e)).toBe(0);
    expect(c.out).toEqual([`nothing: nadguard owns no table in ${lab.pod("x/b").netnsPath}`]);
    const missing = capture();
    expect(await runStatus({ netns: `${lab.prefix}no-such-netns` }, missing.o, missing.e)).toBe(1);
    expect(missing.err[0]).toContain(`no network namespace at /run/netns/${lab.prefix}no-such-netns`);
  });

  it("isolates the pod on every managed network and leaves eth0 alone", async () => {
    const nets = ipvlan.available ? ["nets/blue", "nets/purple"] : ["nets/blue"];
    for (const network of nets) {
      const ip = lab.pod("x/a").attached.find((a) => a.network === network)!.ips[0]!;
      expect({ network, r: (await lab.probe("x/b", { proto: "tcp", host: ip, port: 80 })).result }).toEqual({ network, r: "closed" });
      const back = lab.pod("x/b").attached.find((a) => a.network === network)!.ips[0]!;
      expect({ network, r: (await lab.probe("x/a", { proto: "tcp", host: back, port: 80 })).result }).toEqual({ network, r: "open" });
    }
    expect((await lab.probe("x/b", { proto: "tcp", host: lab.pod("x/a").eth0.v4, port: 80 })).result).toBe("open");
    expect((await lab.probe("x/b", { proto: "udp", host: lab.pod("x/a").eth0.v6, port: 53 })).result).toBe("open");
  });

  it("enforce --once: exit 1 when a pod's netns is missing, the failure named, the others still enforced", async () => {
    const ghost = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "ghost",
        namespace: "x",
        uid: "0a0b0c0d-0000-4000-8000-00000000beef",
        labels: { pod: "a" },
        annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify([{ name: "nets/blue", interface: "net1", ips: ["198.18.4.99"] }]) },
      },
      spec: { nodeName: NODE, containers: [{ name: "app" }] },
      status: { phase: "Running" },
    };
    await writeFile(join(lab.stateDir, "pods", "x_ghost.yaml"), stringify(ghost));
    const c = capture();
    const code = await runEnforce({ state: lab.stateDir, node: NODE, netns: lab.netnsTemplate, once: true }, c.o, c.e);
    expect(code).toBe(1);
    expect(c.err).toEqual([expect.stringMatching(/^FAILED x\/ghost: x\/ghost: no network namespace at \/run\/netns\/ng-\d+-[0-9a-f]+-x_ghost/)]);
    expect(c.out.some((l) => l.startsWith("x/b\t") && l.endsWith("fresh"))).toBe(true);
  });
});
