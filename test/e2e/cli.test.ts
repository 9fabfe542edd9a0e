// End-to-end tests of the two node commands on real namespaces, each run as the process a user
// runs (bin/nadguard.js with its real arguments): `nadguard enforce --once` (the tables it leaves
// in the kernel, its JSON log lines, nothing left in the temp dir, exit 1 and each failed netns
// named when a pod's netns is missing) and `nadguard status --netns PATH` (what nadguard owns there; "nothing"
// without a table; exit 1 when the netns does not exist), and enforcement on an ipvlan network
// where the kernel has ipvlan.
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { REMOVE_TABLE_OPS } from "../../src/enforcer/plan.js";
import { Nft } from "../../src/nft/nft.js";
import { policy } from "../policy-conformance/grid.js";
import { Lab, NODE, kernelLinkSupport, type NetworkSpec } from "./lab.js";
import { LEVEL, acquireE2eLock, logLines, nadguard } from "./sys.js";
import { actualTable, divergent } from "./tables.js";

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("\n!! test/e2e/cli.test.ts SKIPPED: not root (network namespaces, CNI plugins and nft need root) !!\n");

const BLUE: NetworkSpec = { name: "blue", type: "bridge", ifname: "net1", v4Subnet: "198.18.4.0/24", v6Subnet: "fd00:4::/64" };
const PURPLE: NetworkSpec = { name: "purple", type: "ipvlan", ifname: "net2", v4Subnet: "198.18.5.0/24", v6Subnet: "fd00:5::/64" };

// Each command is a process that loads the whole CLI: give a loaded machine time.
describe.skipIf(!isRoot)("e2e: nadguard enforce --once and nadguard status", { timeout: 180_000 }, () => {
  let lab: Lab;
  let release: (() => Promise<void>) | undefined;
  let ipvlan: { available: boolean; reason: string };
  /** The commands' own temp dir, where nothing of theirs may stay behind. */
  let tmp: string;
  const run = (args: readonly string[]) => nadguard(args, { env: { ...process.env, TMPDIR: tmp } });
  const enforceOnce = (...more: string[]) => run(["enforce", "--state", lab.stateDir, "--node", NODE, "--netns", lab.netnsTemplate, "--once", ...more]);

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
    tmp = join(lab.dir, "tmp");
    await mkdir(tmp);
  }, 600_000);

  afterAll(async () => {
    await lab?.destroy();
    await release?.();
  }, 120_000);

  it("enforce --once: exit 0, every pod's table in the kernel as compiled, no script folder left in TMPDIR", async () => {
    const r = await enforceOnce();
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(await actualTable(lab.pod("x/a").netnsPath)).toBeDefined();
    expect(await divergent(lab)).toEqual([]);
    expect((await readdir(tmp)).filter((name) => name.startsWith("nadguard-nft-"))).toEqual([]);
    // Its stdout: JSON lines, one per apply at info, then the summary.
    const logs = logLines(r.stdout);
    // The native addon applied (built by npm ci / scripts/system-deps.sh): a silent fallback to nft -f processes fails here.
    expect(logs.filter((l) => l.nftExecutor !== undefined)).toEqual([
      expect.objectContaining({ level: LEVEL.info, nftExecutor: "addon", msg: "nft executor: native addon (libnftables on a worker thread, setns into each netns)" }),
    ]);
    const applies = logs.filter((l) => l.pod !== undefined).sort((a, b) => String(a.pod).localeCompare(String(b.pod)));
    expect(applies).toEqual(
      ["x/a", "x/b"].map((pod) =>
        expect.objectContaining({ level: LEVEL.info, pod, netns: lab.pod(pod).netnsPath, mode: "fresh", added: expect.any(Number), removed: 0, durationMs: expect.any(Number), msg: expect.stringMatching(new RegExp(`^${pod}: applied \\(fresh, \\+\\d+ -0 elements\\)$`)) }),
      ),
    );
    // x/a is isolated (its interfaces in the *_isolated sets); x/b, selected by no policy, gets the table without elements.
    expect(applies.map((l) => (l.added as number) > 0)).toEqual([true, false]);
    expect(logs.at(-1)).toMatchObject({ level: LEVEL.info, reconciled: 2, changed: 2, failed: 0, msg: expect.stringMatching(/^2 netns reconciled \(2 changed\), 0 failed, in \d+ ms$/) });
  });

  it("enforce --once with NADGUARD_NFT_ADDON=none: one warn line says why, and nft -f processes apply the same tables", async () => {
    const nft = new Nft({ netns: lab.pod("x/a").netnsPath });
    expect((await nft.run(nft.transaction().append(REMOVE_TABLE_OPS))).ok).toBe(true);
    const r = await nadguard(["enforce", "--state", lab.stateDir, "--node", NODE, "--netns", lab.netnsTemplate, "--once"], { env: { ...process.env, TMPDIR: tmp, NADGUARD_NFT_ADDON: "none" } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const logs = logLines(r.stdout);
    expect(logs.filter((l) => l.nftExecutor !== undefined)).toEqual([
      expect.objectContaining({
        level: LEVEL.warn,
        nftExecutor: "nft -f",
        reason: "NADGUARD_NFT_ADDON=none",
        msg: "nft executor: nft -f processes (nsenter --net=PATH nft -f FILE), because the native addon cannot be used: NADGUARD_NFT_ADDON=none",
      }),
    ]);
    expect(logs.filter((l) => l.pod !== undefined).map((l) => [l.pod, l.mode])).toEqual([["x/a", "fresh"]]);
    expect(await divergent(lab)).toEqual([]);
  });

  it("enforce --once --log-level: debug names what it left alone; warn prints nothing when all went well", async () => {
    const debug = await enforceOnce("--log-level", "debug");
    expect(debug.code).toBe(0);
    const adopted = logLines(debug.stdout).filter((l) => l.level === LEVEL.debug && l.pod !== undefined);
    expect(adopted.map((l) => [l.pod, l.adopted, l.msg]).sort()).toEqual([
      ["x/a", true, "x/a: already enforced (adopted)"],
      ["x/b", true, "x/b: already enforced (adopted)"],
    ]);
    expect(await enforceOnce("--log-level", "warn")).toEqual({ code: 0, stdout: "", stderr: "" });
    const bad = await enforceOnce("--log-level", "loud");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^nadguard enforce: --log-level loud: expected one of fatal, error, warn, info, debug, trace, silent\n/);
  });

  it("status: the table, its chains and rules, its sets with element counts, the isolated interfaces", async () => {
    const human = await run(["status", "--netns", lab.pod("x/a").netnsPath]);
    expect({ code: human.code, stderr: human.stderr }).toEqual({ code: 0, stderr: "" });
    expect(human.stdout).toContain(`netns ${lab.pod("x/a").netnsPath}: table inet nadguard`);
    expect(human.stdout).toMatch(/ingress \(hook input, priority 0, policy accept\): \d+ rules/);
    expect(human.stdout).toMatch(/ingress_isolated\s+\d+ elements? +ifname/);
    expect(human.stdout).toContain(`ingress: ${ipvlan.available ? "net1, net2" : "net1"}`);
    const json = await run(["status", "--netns", lab.pod("x/a").netnsPath, "--output", "json"]);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { table: string; sets: { name: string; elements: number }[] };
    expect(parsed.table).toBe("inet nadguard");
    expect(parsed.sets.find((s) => s.name === "ingress_isolated")?.elements).toBe(ipvlan.available ? 2 : 1);
  });

  it("status: 'nothing' and exit 0 without a table; exit 1 for a missing netns", async () => {
    const nft = new Nft({ netns: lab.pod("x/b").netnsPath });
    const removed = await nft.run(nft.transaction().append(REMOVE_TABLE_OPS));
    expect(removed.ok).toBe(true);
    const nothing = await run(["status", "--netns", lab.pod("x/b").netnsPath]);
    expect({ code: nothing.code, stdout: nothing.stdout }).toEqual({ code: 0, stdout: `nothing: nadguard owns no table in ${lab.pod("x/b").netnsPath}\n` });
    const missing = await run(["status", "--netns", `${lab.prefix}no-such-netns`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no network namespace at /run/netns/${lab.prefix}no-such-netns`);
  });

  it("isolates the pod on every managed network and leaves eth0 alone", async () => {
    expect((await enforceOnce()).code).toBe(0);
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
    const nft = new Nft({ netns: lab.pod("x/b").netnsPath });
    expect((await nft.run(nft.transaction().append(REMOVE_TABLE_OPS))).ok).toBe(true);
    const r = await enforceOnce();
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: "" });
    const logs = logLines(r.stdout);
    expect(logs.filter((l) => l.level >= LEVEL.error && l.pod !== undefined)).toEqual([
      expect.objectContaining({ pod: "x/ghost", code: "netns.not-found", msg: expect.stringMatching(new RegExp(`^x/ghost: no network namespace at /run/netns/${lab.prefix}x_ghost`)) }),
    ]);
    expect(logs).toContainEqual(expect.objectContaining({ level: LEVEL.info, pod: "x/b", netns: lab.pod("x/b").netnsPath, mode: "fresh" }));
    expect(logs.at(-1)).toMatchObject({ level: LEVEL.error, failed: 1, failedPods: ["x/ghost"], msg: expect.stringMatching(/^2 netns reconciled \(1 changed\), 1 failed \(x\/ghost\), in \d+ ms$/) });
    expect(await actualTable(lab.pod("x/b").netnsPath)).toBeDefined();
  });
});
