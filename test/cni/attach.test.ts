// Attaching a sandbox's delegates with the REAL plugins in real network namespaces
// (test/cni/netns.ts): the cluster network as eth0 (bridge), secondaries net1 (macvlan) and net2
// (bridge, dual stack), all with host-local. What a runtime and a user see: the interfaces and
// addresses in the pod, host-local's leases, the cache files left on disk, the error messages.
import { chmod, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Result, ok } from "../../src/api/errors.js";
import { Attachments, CniRunner, type PlannedDelegate, SpawnPluginExec, applyGatewayFilter, gatewayFilters, networkStatuses, planDelegates, readDelegateCache } from "../../src/cni/index.js";
import { parseNetworkSelections } from "../../src/networks/selection.js";
import { must } from "../e2e/sys.js";
import { CNI_DIR, CniNetns, IS_ROOT, globalAddresses, list } from "./netns.js";

if (!IS_ROOT) console.warn("\n!! test/cni/attach.test.ts SKIPPED: not root, cannot create network namespaces !!\n");

const ARGS = [
  ["IgnoreUnknown", "true"],
  ["K8S_POD_NAMESPACE", "tenant-a"],
  ["K8S_POD_NAME", "web"],
] as const;
const POD = { namespace: "tenant-a", name: "web", uid: "9f0c" };

describe.skipIf(!IS_ROOT)("attaching a sandbox's delegates", () => {
  let lab: CniNetns;
  let runner: CniRunner;
  let attachments: Attachments;
  let cacheDir: string;
  let multusDir: string;

  const hostLocal = (subnet: string, v6?: string): unknown => ({ type: "host-local", dataDir: lab.dataDir, ranges: [[{ subnet }], ...(v6 ? [[{ subnet: v6 }]] : [])] });
  const delegates = (overrides: { net1?: Record<string, unknown> } = {}): PlannedDelegate[] => [
    {
      name: "cluster",
      ifname: "eth0",
      clusterNetwork: true,
      config: list({ cniVersion: "1.0.0", name: "cluster", plugins: [{ type: "bridge", bridge: "ngcbr", ipam: hostLocal("198.18.50.0/24") }] }),
      capabilityArgs: {},
    },
    {
      name: "nets/blue",
      element: "nets/blue",
      ifname: "net1",
      clusterNetwork: false,
      config: list({ cniVersion: "1.0.0", name: "blue", type: "macvlan", master: "mvp", mode: "bridge", ipam: hostLocal("198.18.51.0/24"), ...overrides.net1 }),
      capabilityArgs: {},
    },
    {
      name: "nets/green",
      element: "nets/green@net2",
      ifname: "net2",
      clusterNetwork: false,
      config: list({ cniVersion: "0.4.0", name: "green", plugins: [{ type: "bridge", bridge: "nggreen", ipam: hostLocal("198.18.52.0/24", "fd00:52::/64") }, { type: "tuning", capabilities: { mac: true } }] }),
      capabilityArgs: { mac: "02:00:5e:00:52:01" },
      macRequest: "02:00:5e:00:52:01",
    },
  ];
  const allLeases = async (): Promise<string[]> => [...(await lab.leases("cluster")), ...(await lab.leases("blue")), ...(await lab.leases("green"))];
  const cacheFiles = async (): Promise<string[]> => (await readdir(cacheDir).catch(() => [] as string[])).filter((f) => f !== "results");
  const resultFiles = async (): Promise<string[]> => readdir(join(cacheDir, "results")).catch(() => [] as string[]);

  beforeAll(async () => {
    lab = await CniNetns.create();
    cacheDir = join(lab.dir, "nadguard");
    multusDir = join(lab.dir, "multus");
    runner = new CniRunner({ pluginDirs: [join(lab.dir, "bin"), CNI_DIR], cacheDir, exec: new SpawnPluginExec({ netns: lab.switchPath }) });
    attachments = new Attachments({ runner, cacheDir, multusCacheDir: multusDir });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it("ADD attaches eth0 then net1 and net2 with host-local addresses, with the delegate cache written before any delegate and the hook run before the secondaries", async () => {
    const pod = await lab.addPod("add");
    let seenByHook: { links: string[]; cached: string[] } | undefined;
    const added = await attachments.add({
      containerId: "sandbox-add",
      netns: pod,
      args: ARGS,
      pod: POD,
      delegates: delegates(),
      beforeSecondaries: async (): Promise<Result<void, string>> => {
        const cached = await readDelegateCache(cacheDir, "sandbox-add", "eth0");
        seenByHook = { links: await lab.linkNames(pod), cached: cached.ok ? (cached.value ?? []).map((d) => `${d.name}@${d.ifname}`) : [] };
        return ok(undefined);
      },
    });
    if (!added.ok) throw new Error(added.error.error.msg);
    expect(seenByHook).toEqual({ links: ["eth0", "lo"], cached: ["cluster@eth0", "nets/blue@net1", "nets/green@net2"] });

    const links = await lab.links(pod);
    expect(links.map((l) => l.ifname).sort()).toEqual(["eth0", "lo", "net1", "net2"]);
    const statuses = added.value.flatMap((a) => networkStatuses(a.result, a.delegate.name, a.delegate.clusterNetwork));
    // network-status says what the kernel has, interface by interface.
    for (const status of statuses) {
      const link = links.find((l) => l.ifname === status.interface);
      expect(status.mac).toBe(link?.address);
      expect(status.ips).toEqual(globalAddresses(link).map((a) => a.split("/")[0]));
    }
    expect(statuses.map((s) => [s.name, s.interface, s.default, s.ips.length])).toEqual([
      ["cluster", "eth0", true, 1],
      ["nets/blue", "net1", false, 1],
      ["nets/green", "net2", false, 2],
    ]);
    expect(links.find((l) => l.ifname === "net2")?.address).toBe("02:00:5e:00:52:01");
    expect(await allLeases()).toHaveLength(4);
    expect(await cacheFiles()).toEqual(["sandbox-add"]);
  });

  it("DEL removes every interface, lease and cache file; twice more, with an empty netns, it still succeeds", async () => {
    const pod = "/run/netns/" + lab.prefix + "add";
    const first = await attachments.del({ containerId: "sandbox-add", netns: pod, ifname: "eth0", args: ARGS });
    expect(first).toEqual({
      source: "nadguard",
      deleted: ["nets/green@net2", "nets/blue@net1", "cluster@eth0"],
      warnings: [],
    });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await allLeases()).toEqual([]);
    expect(await cacheFiles()).toEqual([]);
    expect(await resultFiles()).toEqual([]);
    for (let i = 0; i < 2; i++) {
      const again = await attachments.del({ containerId: "sandbox-add", netns: "", ifname: "eth0", args: ARGS });
      expect(again).toEqual({ source: "none", deleted: [], warnings: ["no delegate cache for container sandbox-add: nothing to delete"] });
    }
  });

  it.each([
    ["a plugin error", { master: "nope" }, 'plugin type="macvlan" name="blue" failed (add): Link not found'],
    ["a missing plugin binary", { type: "nadguard-missing" }, `plugin type="nadguard-missing" name="blue" failed (add): no plugin binary "nadguard-missing" in the plugin path: searched ${"<bin>"}, ${CNI_DIR}`],
    ["an exhausted host-local range", { ipam: { type: "host-local", dataDir: "<ipam>", ranges: [[{ subnet: "198.18.53.0/24", rangeStart: "198.18.53.9", rangeEnd: "198.18.53.9" }]] } }, 'plugin type="macvlan" name="blue" failed (add): failed to allocate for range 0: no IP addresses available in range set: 198.18.53.9-198.18.53.9'],
  ])("a failing delegate (%s) fails the ADD naming pod, network, element and plugin, and leaves nothing behind", async (_what, net1, plugin) => {
    const pod = await lab.addPod(`fail${Math.random().toString(16).slice(2, 8)}`);
    const fix = (value: unknown): Record<string, unknown> => JSON.parse(JSON.stringify(value).replaceAll("<ipam>", lab.dataDir)) as Record<string, unknown>;
    let releaseHolder = async (): Promise<void> => undefined;
    if (JSON.stringify(net1).includes("198.18.53.9")) {
      // Another sandbox holds the range's only address.
      const holder = await lab.addPod(`hold${Math.random().toString(16).slice(2, 8)}`);
      const holderList = list({ cniVersion: "1.0.0", name: "blue", type: "macvlan", master: "mvp", ipam: fix(net1).ipam });
      expect((await runner.add(holderList, { containerId: "holder", netns: holder, ifname: "net1" })).ok).toBe(true);
      releaseHolder = async () => {
        expect((await runner.del(holderList, { containerId: "holder", netns: holder, ifname: "net1" })).ok).toBe(true);
      };
    }
    const leasesBefore = await allLeases();
    const added = await attachments.add({ containerId: "sandbox-fail", netns: pod, args: ARGS, pod: POD, delegates: delegates({ net1: fix(net1) }) });
    expect(added.ok).toBe(false);
    if (added.ok) return;
    expect(added.error.error.msg).toBe(`[tenant-a/web/9f0c] network "nets/blue" (element "nets/blue", interface net1): ${plugin.replace("<bin>", join(lab.dir, "bin"))}`);
    expect(added.error.cleanup).toEqual([]);
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await allLeases()).toEqual(leasesBefore);
    expect(await cacheFiles()).toEqual([]);
    expect((await resultFiles()).filter((f) => f.includes("sandbox-fail"))).toEqual([]);
    await releaseHolder();
  });

  it("a DEL that arrives while the ADD of the same sandbox still runs waits for it, then undoes all of it", async () => {
    const pod = await lab.addPod("race");
    const bin = join(lab.dir, "bin");
    await mkdir(bin, { recursive: true });
    // A slow cluster network: the runtime would give up on the ADD and send DEL meanwhile.
    await writeFile(join(bin, "slow-bridge"), `#!/bin/sh\nsleep 1\nexec ${CNI_DIR}/bridge\n`);
    await chmod(join(bin, "slow-bridge"), 0o755);
    const slow = delegates();
    slow[0] = { ...slow[0]!, config: list({ cniVersion: "1.0.0", name: "cluster", type: "slow-bridge", bridge: "ngcbr", ipam: hostLocal("198.18.50.0/24") }) };
    const order: string[] = [];
    const adding = attachments.add({ containerId: "sandbox-race", netns: pod, args: ARGS, pod: POD, delegates: slow }).then((r) => {
      order.push(`add ${r.ok}`);
      return r;
    });
    const deleting = attachments.del({ containerId: "sandbox-race", netns: pod, ifname: "eth0", args: ARGS }).then((r) => {
      order.push(`del ${r.source}`);
      return r;
    });
    await Promise.all([adding, deleting]);
    expect(order).toEqual(["add true", "del nadguard"]);
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect((await allLeases()).some((l) => l.startsWith("198.18.50.") || l.startsWith("198.18.52."))).toBe(false);
    expect(await cacheFiles()).toEqual([]);
  });

  it("DEL of a sandbox Multus attached goes through Multus' cache file, then removes it", async () => {
    const pod = await lab.addPod("multus");
    const planned = delegates();
    // Multus ran the delegates with its own libcni result cache; nadguard has no file of its own.
    const multusRunner = new CniRunner({ pluginDirs: [CNI_DIR], cacheDir: join(multusDir, "libcni"), exec: new SpawnPluginExec({ netns: lab.switchPath }) });
    for (const d of planned) expect((await multusRunner.add(d.config, { containerId: "sandbox-multus", netns: pod, ifname: d.ifname, args: ARGS, capabilityArgs: d.capabilityArgs })).ok).toBe(true);
    await mkdir(multusDir, { recursive: true });
    const b64 = (text: string): string => Buffer.from(text).toString("base64");
    // As Go marshals Multus' []*DelegateNetConf: the parsed Conf and ConfList (zero values when unused) beside Bytes.
    const goConf = (type = ""): Record<string, unknown> => ({ cniVersion: type ? "1.0.0" : "", name: "", type, ipam: { type: "" }, dns: {} });
    const goConfList = (name = ""): Record<string, unknown> => ({ cniVersion: name ? "1.0.0" : "", name, disableCheck: false, disableGC: false, plugins: null });
    await writeFile(
      join(multusDir, "sandbox-multus"),
      JSON.stringify([
        { Conf: goConf(), ConfList: goConfList("cluster"), Name: "cluster", IsFilterV4Gateway: false, IsFilterV6Gateway: false, Bytes: b64(planned[0]!.config.bytes) },
        { Conf: goConf("macvlan"), ConfList: goConfList(), Name: "nets/blue", IsFilterV4Gateway: false, IsFilterV6Gateway: false, Bytes: b64(JSON.stringify(planned[1]!.config.plugins[0]!.raw)) },
        { Conf: goConf(), ConfList: goConfList("green"), Name: "nets/green", ifnameRequest: "net2", macRequest: "02:00:5e:00:52:01", IsFilterV4Gateway: false, IsFilterV6Gateway: false, Bytes: b64(planned[2]!.config.bytes) },
      ]),
    );
    expect(await lab.linkNames(pod)).toEqual(["eth0", "lo", "net1", "net2"]);
    const deleted = await attachments.del({ containerId: "sandbox-multus", netns: pod, ifname: "eth0", args: ARGS });
    expect(deleted).toEqual({ source: "multus", deleted: ["nets/green@net2", "nets/blue@net1", "cluster@eth0"], warnings: [] });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await allLeases()).toEqual([]);
    expect(await readdir(multusDir)).toEqual(["libcni"]);
  });

  it("DEL without any delegate cache still undoes what the result cache holds", async () => {
    const pod = await lab.addPod("results");
    const added = await attachments.add({ containerId: "sandbox-results", netns: pod, args: ARGS, pod: POD, delegates: delegates() });
    expect(added.ok).toBe(true);
    await rm(join(cacheDir, "sandbox-results"));
    const deleted = await attachments.del({ containerId: "sandbox-results", netns: pod, ifname: "eth0", args: ARGS });
    expect(deleted.source).toBe("results");
    expect(deleted.deleted).toHaveLength(3);
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await allLeases()).toEqual([]);
    expect(await resultFiles()).toEqual([]);
  });

  it("CHECK checks every delegate against its cached result and names the one that drifted", async () => {
    const pod = await lab.addPod("check");
    const added = await attachments.add({ containerId: "sandbox-check", netns: pod, args: ARGS, pod: POD, delegates: delegates() });
    expect(added.ok).toBe(true);
    const sandbox = { containerId: "sandbox-check", netns: pod, ifname: "eth0", args: ARGS };
    expect(await attachments.check(sandbox)).toEqual({ ok: true, value: undefined });
    const net2 = await lab.links(pod).then((links) => globalAddresses(links.find((l) => l.ifname === "net2"))[0]!);
    await must("ip", ["-n", pod.slice("/run/netns/".length), "addr", "del", net2, "dev", "net2"]);
    const checked = await attachments.check(sandbox);
    expect(checked.ok ? "" : checked.error.msg).toMatch(/^network "nets\/green" \(element "nets\/green@net2", interface net2\): plugin type="bridge" name="green" failed \(check\): /);
    await attachments.del(sandbox);
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
  });

  it("default-route: the cluster network's default route goes, the element's gateway is set on its interface", async () => {
    const pod = await lab.addPod("gw");
    const selections = parseNetworkSelections(JSON.stringify([{ name: "blue", namespace: "nets", "default-route": ["198.18.51.1"] }]), "tenant-a");
    if (!selections.ok) throw new Error(JSON.stringify(selections.error));
    const planned = planDelegates({
      ifname: "eth0",
      clusterNetwork: { name: "cluster", where: "cluster.conflist", config: { cniVersion: "1.0.0", name: "cluster", type: "bridge", bridge: "nggw", isDefaultGateway: true, ipam: hostLocal("198.18.54.0/24") } },
      defaultNetworks: [],
      selections: selections.value.map((a) => ({ selection: a.selection, network: { name: "nets/blue", where: "nets/blue", config: { cniVersion: "1.0.0", name: "blue", type: "macvlan", master: "mvp", ipam: hostLocal("198.18.51.0/24") } } })),
      runtime: {},
      nextDevice: () => undefined,
    });
    if (!planned.ok) throw new Error(JSON.stringify(planned.error));
    const filters = gatewayFilters(planned.value);
    if (!filters.ok) throw new Error(JSON.stringify(filters.error));
    const added = await attachments.add({
      containerId: "sandbox-gw",
      netns: pod,
      args: ARGS,
      pod: POD,
      delegates: planned.value,
      afterDelegate: (delegate) => applyGatewayFilter(pod, filters.value.find((f) => f.ifname === delegate.ifname)!),
    });
    if (!added.ok) throw new Error(added.error.error.msg);
    const defaults = JSON.parse(await must("nsenter", [`--net=${pod}`, "ip", "-j", "route", "show", "default"])) as { gateway: string; dev: string }[];
    expect(defaults.map((r) => `${r.gateway} ${r.dev}`)).toEqual(["198.18.51.1 net1"]);
    await attachments.del({ containerId: "sandbox-gw", netns: pod, ifname: "eth0", args: ARGS });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
  });
});
