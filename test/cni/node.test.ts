// `nadguard node` and its shim end to end, as a container runtime drives them: the daemon runs as
// its own process (in the lab's "switch" netns, where the REAL bridge and macvlan plugins of
// /usr/lib/cni make their host-side links), the shim `nadguard-cni` is a copy of bin/nadguard-cni
// alone in a CNI bin dir, executed with the environment and stdin containerd gives a plugin
// (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH; the conf the daemon
// wrote, with runtimeConfig). What is asserted is what a user sees: the shim's stdout and exit
// status, the interfaces and addresses read back with `ip -n`, the table read back with `nft`,
// host-local's leases, the files the daemon leaves. A recording macvlan wrapper in the daemon's binDir
// lists the pod's nft table and links when a macvlan delegate starts, before it makes its interface.
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, copyFile, mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NADGUARD_BIN, type RunResult, must, nadguard, run } from "../e2e/sys.js";
import { readyzStatus } from "../support/nadguard-node.js";
import { CNI_DIR, CniNetns, IS_ROOT, globalAddresses } from "./netns.js";

if (!IS_ROOT) console.warn("\n!! test/cni/node.test.ts SKIPPED: not root, cannot create network namespaces !!\n");

const SHIM_SOURCE = join(dirname(NADGUARD_BIN), "nadguard-cni");
const NODE = "node-1";

/**
 * `macvlan` in the daemon's binDir (searched before the reference plugins): on ADD it records the pod
 * netns' nft table and links, then every command runs the real macvlan with the same stdin and environment.
 */
const RECORDING_MACVLAN = `#!/usr/bin/env node
const { execFileSync, spawnSync } = require("node:child_process");
const { appendFileSync, readFileSync } = require("node:fs");
const input = readFileSync(0);
const conf = JSON.parse(input.toString("utf8"));
if (process.env.CNI_COMMAND === "ADD") {
  let table;
  try { table = execFileSync("nsenter", ["--net=" + process.env.CNI_NETNS, "nft", "list", "table", "inet", "nadguard"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }); }
  catch (e) { table = "NO TABLE: " + String(e.stderr || e.message); }
  const links = execFileSync("nsenter", ["--net=" + process.env.CNI_NETNS, "ip", "-o", "link", "show"], { encoding: "utf8" });
  appendFileSync(conf.record, JSON.stringify({ table, links: links.split("\\n").filter(Boolean).map((l) => l.split(": ")[1].split("@")[0]) }) + "\\n");
}
const real = spawnSync(${JSON.stringify(join(CNI_DIR, "macvlan"))}, [], { input, stdio: ["pipe", "inherit", "inherit"] });
process.exit(real.status ?? 1);
`;

/** A TCP server on 0.0.0.0:8080 that accepts and closes, run in a pod netns before its ADD. */
const LISTENER = `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 8080)); s.listen(128)
while True:
    c, _ = s.accept(); c.close()
`;

/** Every 100 ms for argv[1] seconds, a new connection to port 8080 of each address .2-.40 of net1's subnet; prints the successes by address. */
const PROBE = `
import json, select, socket, sys, time
end = time.time() + float(sys.argv[1]); ok = {}
while time.time() < end:
    socks = {}
    for i in range(2, 41):
        s = socket.socket(); s.setblocking(False); s.connect_ex(("198.18.71.%d" % i, 8080)); socks[s] = "198.18.71.%d" % i
    deadline = time.time() + 0.1
    pending = list(socks)
    while pending and time.time() < deadline:
        _, w, _ = select.select([], pending, [], max(0, deadline - time.time()))
        for s in w:
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0: ok[socks[s]] = ok.get(socks[s], 0) + 1
            pending.remove(s)
    for s in socks: s.close()
print(json.dumps(ok))
`;

const yaml = (objects: unknown[]): string => objects.map((o) => JSON.stringify(o)).join("\n---\n");

describe.skipIf(!IS_ROOT)("nadguard node and the nadguard-cni shim", () => {
  let lab: CniNetns;
  let daemon: ChildProcess | undefined;
  let daemonLog = "";
  let dirs: { state: string; netd: string; bin: string; cni: string; sock: string; record: string; daemonConfig: string };

  const statusFile = (ns: string, pod: string): string => join(dirs.state, ".nadguard", "network-status", ns, `${pod}.json`);

  /** The conf the runtime gives the shim: the daemon's conflist's plugin with the list's name and version, and runtimeConfig. */
  async function stdinFor(annotations: Record<string, string>, socketDir?: string): Promise<string> {
    const list = JSON.parse(await readFile(join(dirs.netd, "00-nadguard.conflist"), "utf8")) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    const plugin = { ...list.plugins[0], ...(socketDir && { daemonSocketDir: socketDir }) };
    return JSON.stringify({ ...plugin, name: list.name, cniVersion: list.cniVersion, runtimeConfig: { "io.kubernetes.cri.pod-annotations": annotations } });
  }

  /** Runs the installed shim as containerd does. */
  async function shim(command: string, containerId: string, netns: string, pod: string, options: { input?: string; env?: Record<string, string> } = {}): Promise<RunResult> {
    const [ns, name] = pod.split("/");
    return run(join(dirs.bin, "nadguard-cni"), [], {
      input: options.input ?? (await stdinFor({})),
      env: {
        PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`,
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: netns,
        CNI_IFNAME: "eth0",
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=uid-${name}`,
        CNI_PATH: CNI_DIR,
        ...options.env,
      },
      timeoutMs: 60_000,
    });
  }

  const ready = (): Promise<number> => readyzStatus(join(dirs.sock, "nadguard.sock"));

  const leases = async (): Promise<string[]> => [...(await lab.leases("cluster")), ...(await lab.leases("blue"))];
  const cacheFiles = async (): Promise<string[]> => (await readdir(dirs.cni).catch(() => [] as string[])).filter((f) => f !== "results");
  const netnsName = (path: string): string => path.slice("/run/netns/".length);
  /** A state file `<name>.json`: a NAD of tenant-a named as `config` names its network, and pod `name` selecting `networks`; its path. */
  async function writeNetworkAndPod(name: string, config: unknown, networks: string): Promise<string> {
    const file = join(dirs.state, `${name}.json`);
    const items = [
      { apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition", metadata: { name: (config as { name: string }).name, namespace: "tenant-a" }, spec: { config: JSON.stringify(config) } },
      { apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "tenant-a", uid: `uid-${name}`, annotations: { "k8s.v1.cni.cncf.io/networks": networks } }, spec: { nodeName: NODE, containers: [{ name: "c", image: "i" }] } },
    ];
    await writeFile(file, JSON.stringify({ kind: "List", items }));
    return file;
  }

  /** The host-side veths the bridge plugin made in the switch netns. */
  const veths = async (): Promise<string[]> =>
    (JSON.parse(await must("ip", ["-n", lab.switchNetns, "-j", "link", "show", "type", "veth"])) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== "mvp" && n !== "mvq").sort();

  beforeAll(async () => {
    lab = await CniNetns.create();
    dirs = {
      state: join(lab.dir, "state"),
      netd: join(lab.dir, "net.d"),
      bin: join(lab.dir, "bin"),
      cni: join(lab.dir, "cni"),
      sock: join(lab.dir, "sock"),
      record: join(lab.dir, "record.jsonl"),
      daemonConfig: join(lab.dir, "daemon.yaml"),
    };
    for (const dir of [dirs.state, dirs.netd, dirs.bin]) await mkdir(dir, { recursive: true });
    // The shim installed as a user installs it: the one file, copied.
    await copyFile(SHIM_SOURCE, join(dirs.bin, "nadguard-cni"));
    await chmod(join(dirs.bin, "nadguard-cni"), 0o755);
    await writeFile(join(dirs.bin, "macvlan"), RECORDING_MACVLAN, { mode: 0o755 });
    const hostLocal = (subnet: string): unknown => ({ type: "host-local", dataDir: lab.dataDir, ranges: [[{ subnet }]] });
    await writeFile(
      join(dirs.netd, "10-cluster.conflist"),
      JSON.stringify({ cniVersion: "1.0.0", name: "cluster", plugins: [{ type: "bridge", bridge: "ngnodebr", ipam: hostLocal("198.18.70.0/24") }] }),
    );
    await writeFile(dirs.daemonConfig, `socketDir: ${dirs.sock}\ncniConfigDir: ${dirs.netd}\nbinDir: ${dirs.bin}\ncniDir: ${dirs.cni}\n`);
    const pod = (name: string, networks: string, app = name): unknown => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace: "tenant-a", uid: `uid-${name}`, labels: { app }, annotations: { "k8s.v1.cni.cncf.io/networks": networks } },
      spec: { nodeName: NODE, containers: [{ name: "c", image: "i" }] },
      status: { phase: "Running" },
    });
    await writeFile(
      join(dirs.state, "cluster.yaml"),
      yaml([
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "tenant-a" } },
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "tenant-b" } },
        {
          apiVersion: "k8s.cni.cncf.io/v1",
          kind: "NetworkAttachmentDefinition",
          metadata: { name: "blue", namespace: "tenant-a" },
          spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "blue", type: "macvlan", master: "mvp", mode: "bridge", ipam: hostLocal("198.18.71.0/24"), record: dirs.record }) },
        },
        {
          apiVersion: "k8s.cni.cncf.io/v1",
          kind: "NetworkAttachmentDefinition",
          metadata: { name: "private", namespace: "tenant-b" },
          spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "private", type: "bridge", bridge: "ngpriv", ipam: hostLocal("198.18.72.0/24") }) },
        },
        {
          apiVersion: "k8s.cni.cncf.io/v1beta1",
          kind: "MultiNetworkPolicy",
          metadata: { name: "web-from-client", namespace: "tenant-a", annotations: { "k8s.v1.cni.cncf.io/policy-for": "blue" } },
          spec: { podSelector: { matchLabels: { app: "web" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }] },
        },
        {
          apiVersion: "k8s.cni.cncf.io/v1",
          kind: "NetworkAttachmentDefinition",
          metadata: { name: "broken", namespace: "tenant-a" },
          spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "broken", type: "no-such-plugin" }) },
        },
        pod("web", "blue"),
        pod("guarded", "blue", "web"),
        pod("open", "blue"),
        pod("client", "blue"),
        pod("thief", "tenant-b/private"),
        pod("unlucky", "blue,broken"),
      ]),
    );
    await must("ip", ["-n", lab.switchNetns, "link", "set", "lo", "up"]);
    daemon = spawn("ip", ["netns", "exec", lab.switchNetns, process.execPath, NADGUARD_BIN, "node", "--state", dirs.state, "--node", NODE, "--daemon-config", dirs.daemonConfig, "--metrics-listen", "127.0.0.1:0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    daemon.stdout!.on("data", (chunk: Buffer) => (daemonLog += chunk.toString()));
    daemon.stderr!.on("data", (chunk: Buffer) => (daemonLog += chunk.toString()));
    for (let i = 0; i < 300 && (await ready()) !== 200; i++) {
      if (daemon.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if ((await ready()) !== 200) throw new Error(`nadguard node did not become ready:\n${daemonLog}`);
  }, 60_000);

  afterAll(async () => {
    if (daemon?.pid !== undefined && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon!.once("exit", resolve));
      process.kill(daemon.pid, "SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (daemon.exitCode === null) process.kill(daemon.pid, "SIGKILL");
    }
    await lab?.destroy();
  }, 30_000);

  it("writes 00-nadguard.conflist naming the shim, its socket dir and the cluster network", async () => {
    expect(JSON.parse(await readFile(join(dirs.netd, "00-nadguard.conflist"), "utf8"))).toEqual({
      cniVersion: "1.0.0",
      name: "nadguard",
      plugins: [{ type: "nadguard-cni", daemonSocketDir: dirs.sock, clusterNetwork: join(dirs.netd, "10-cluster.conflist"), capabilities: { "io.kubernetes.cri.pod-annotations": true } }],
    });
  });

  it("the shim answers VERSION itself", async () => {
    const version = await shim("VERSION", "", "", "x/y", { input: '{"cniVersion":"0.4.0"}', env: { CNI_COMMAND: "VERSION" } });
    expect({ code: version.code, out: JSON.parse(version.stdout) }).toEqual({ code: 0, out: { cniVersion: "0.4.0", supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] } });
  });

  it("ADD gives eth0 from the cluster network and net1 from the NAD, with the pod's table in place before net1, and records network-status", async () => {
    const pod = await lab.addPod("web");
    const added = await shim("ADD", "sandbox-web", pod, "tenant-a/web");
    expect({ code: added.code, stderr: added.stderr }).toEqual({ code: 0, stderr: "" });
    const result = JSON.parse(added.stdout) as { cniVersion: string; interfaces: { name: string; mac: string; sandbox?: string }[]; ips: { address: string }[] };

    const links = await lab.links(pod);
    expect(links.map((l) => l.ifname).sort()).toEqual(["eth0", "lo", "net1"]);
    const eth0 = links.find((l) => l.ifname === "eth0")!;
    const net1 = links.find((l) => l.ifname === "net1")!;
    expect(globalAddresses(eth0)).toEqual([expect.stringMatching(/^198\.18\.70\.\d+\/24$/)]);
    expect(globalAddresses(net1)).toEqual([expect.stringMatching(/^198\.18\.71\.\d+\/24$/)]);
    // The runtime gets the cluster network's result only, in the conf's version.
    expect(result.cniVersion).toBe("1.0.0");
    expect(result.ips.map((ip) => ip.address)).toEqual(globalAddresses(eth0));
    expect(result.interfaces.filter((i) => i.sandbox).map((i) => [i.name, i.mac])).toEqual([["eth0", eth0.address]]);

    // The table, read back from the kernel: net1's ingress isolated by the policy.
    const table = await must("ip", ["netns", "exec", netnsName(pod), "nft", "list", "table", "inet", "nadguard"]);
    const isolatesNet1 = /set ingress_isolated \{[^}]*elements = \{ "net1" \}/;
    expect(table).toMatch(isolatesNet1);
    // When net1's delegate started, eth0 existed, net1 not yet, and the table was already there.
    const records = (await readFile(dirs.record, "utf8")).trim().split("\n").map((line) => JSON.parse(line) as { table: string; links: string[] });
    expect(records).toHaveLength(1);
    expect(records[0]!.links.sort()).toEqual(["eth0", "lo"]);
    expect(records[0]!.table).toMatch(isolatesNet1);

    expect(JSON.parse(await readFile(statusFile("tenant-a", "web"), "utf8"))).toEqual([
      { name: "cluster", interface: "eth0", ips: globalAddresses(eth0).map((a) => a.split("/")[0]), mac: eth0.address, default: true, dns: {} },
      { name: "tenant-a/blue", interface: "net1", ips: globalAddresses(net1).map((a) => a.split("/")[0]), mac: net1.address, default: false, dns: {} },
    ]);
    expect(await leases()).toHaveLength(2);
    expect(await cacheFiles()).toEqual(["sandbox-web"]);
  });

  it("the state readers see the addresses the daemon assigned: nadguard render shows the pod's net1", async () => {
    const rendered = await nadguard(["render", "--state", dirs.state, "--pod", "tenant-a/web"]);
    expect(rendered.code).toBe(0);
    expect(rendered.stdout).toContain("# net1 (tenant-a/blue): ingress isolated by tenant-a/web-from-client; egress not isolated");
  });

  it("CHECK runs each delegate's CHECK with its cached result and exits 0 while the pod is as attached", async () => {
    const pod = `/run/netns/${lab.prefix}web`;
    const checked = await shim("CHECK", "sandbox-web", pod, "tenant-a/web");
    expect({ code: checked.code, stdout: checked.stdout, stderr: checked.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  it("a probe loop started before ADD never connects through an isolated net1, while a pod no policy isolates is reached on the same network", async () => {
    // An attacker on net1's L2: a macvlan of the same parent, outside any pod and any policy.
    const attacker = await lab.addPod("attacker");
    await must("ip", ["-n", lab.switchNetns, "link", "add", "atk", "link", "mvp", "type", "macvlan", "mode", "bridge"]);
    await must("ip", ["-n", lab.switchNetns, "link", "set", "atk", "netns", netnsName(attacker)]);
    await must("ip", ["-n", netnsName(attacker), "addr", "add", "198.18.71.250/24", "dev", "atk"]);
    await must("ip", ["-n", netnsName(attacker), "link", "set", "atk", "up"]);
    const guarded = await lab.addPod("guarded");
    const open = await lab.addPod("open");
    const listeners = [guarded, open].map((ns) => spawn("ip", ["netns", "exec", netnsName(ns), "python3", "-c", LISTENER], { stdio: "ignore" }));
    const probe = run("ip", ["netns", "exec", netnsName(attacker), "python3", "-c", PROBE, "6"], { timeoutMs: 30_000 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const [name, ns] of [["guarded", guarded], ["open", open]] as const) expect((await shim("ADD", `sandbox-${name}`, ns, `tenant-a/${name}`)).code).toBe(0);
      const address = async (ns: string): Promise<string> => globalAddresses((await lab.links(ns)).find((l) => l.ifname === "net1"))[0]!.split("/")[0]!;
      const [guardedIp, openIp] = [await address(guarded), await address(open)];
      const connected = JSON.parse((await probe).stdout) as Record<string, number>;
      // The control: the loop does reach a pod's net1 once it exists.
      expect(connected[openIp] ?? 0).toBeGreaterThan(0);
      expect({ [guardedIp]: connected[guardedIp] ?? 0 }).toEqual({ [guardedIp]: 0 });
    } finally {
      for (const listener of listeners) if (listener.pid !== undefined && listener.exitCode === null) process.kill(listener.pid, "SIGKILL");
      await probe;
      for (const [name, ns] of [["guarded", guarded], ["open", open]] as const) expect((await shim("DEL", `sandbox-${name}`, ns, `tenant-a/${name}`)).code).toBe(0);
    }
  });

  it("an element's ips, mac and default-route reach the delegate as asked", async () => {
    const conf = { cniVersion: "1.0.0", name: "pinned", plugins: [{ type: "bridge", bridge: "ngpin", ipam: { type: "static" }, capabilities: { ips: true } }, { type: "tuning", capabilities: { mac: true } }] };
    const element = { name: "pinned", ips: ["198.18.74.9/24"], mac: "02:00:5e:00:74:09", "default-route": ["198.18.74.1"] };
    const file = await writeNetworkAndPod("pinned", conf, JSON.stringify([element]));
    const pod = await lab.addPod("pinned");
    try {
      const added = await shim("ADD", "sandbox-pinned", pod, "tenant-a/pinned");
      expect({ code: added.code, stderr: added.stderr, stdout: added.code === 0 ? "" : added.stdout }).toEqual({ code: 0, stderr: "", stdout: "" });
      const net1 = (await lab.links(pod)).find((l) => l.ifname === "net1");
      expect({ mac: net1?.address, addresses: globalAddresses(net1) }).toEqual({ mac: "02:00:5e:00:74:09", addresses: ["198.18.74.9/24"] });
      const routes = JSON.parse(await must("ip", ["-n", netnsName(pod), "-j", "route", "show", "default"])) as { gateway?: string; dev: string }[];
      expect(routes.map((r) => [r.gateway, r.dev])).toEqual([["198.18.74.1", "net1"]]);
    } finally {
      expect((await shim("DEL", "sandbox-pinned", pod, "tenant-a/pinned")).code).toBe(0);
      await rm(file);
    }
  });

  it("the enforcer in the daemon adds a peer's address to the pod's table once the peer is attached", async () => {
    const web = `/run/netns/${lab.prefix}web`;
    const client = await lab.addPod("client");
    try {
      const added = await shim("ADD", "sandbox-client", client, "tenant-a/client");
      expect(added.code).toBe(0);
      const address = globalAddresses((await lab.links(client)).find((l) => l.ifname === "net1"))[0]!.split("/")[0]!;
      let table = "";
      for (let i = 0; i < 100 && !table.includes(address); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        table = await must("ip", ["netns", "exec", netnsName(web), "nft", "list", "table", "inet", "nadguard"]);
      }
      expect(table).toMatch(new RegExp(`set ingress_v4_hosts_all \\{[^}]*elements = \\{ "net1" \\. ${address.replaceAll(".", "\\.")} \\}`));
    } finally {
      expect((await shim("DEL", "sandbox-client", client, "tenant-a/client")).code).toBe(0);
    }
  });

  it("a delegate whose plugin is missing fails the ADD naming the element, the NAD and the plugin, and leaves no interface, lease or cache file", async () => {
    const pod = await lab.addPod("unlucky");
    const before = await leases();
    const failed = await shim("ADD", "sandbox-unlucky", pod, "tenant-a/unlucky");
    expect(failed.code).toBe(1);
    const error = JSON.parse(failed.stdout) as { code: number; msg: string };
    expect(error.msg).toMatch(/^\[tenant-a\/unlucky\/uid-unlucky\] network "tenant-a\/broken" \(element "broken", interface net2\): plugin type="no-such-plugin" name="broken" failed \(add\): no plugin binary "no-such-plugin" in the plugin path: searched /);
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await leases()).toEqual(before);
    expect(await cacheFiles()).toEqual(["sandbox-web"]);
    await expect(readFile(statusFile("tenant-a", "unlucky"))).rejects.toThrow(/ENOENT/);
  });

  it("refuses a pod that may not use its network with the message admission gives, and leaves nothing behind", async () => {
    const pod = await lab.addPod("thief");
    const denied = await shim("ADD", "sandbox-thief", pod, "tenant-a/thief");
    const manifest = join(lab.dir, "thief.json");
    const state = await readFile(join(dirs.state, "cluster.yaml"), "utf8");
    await writeFile(manifest, state.split("\n---\n").find((doc) => doc.includes('"thief"'))!);
    // The pod as its service account creates it: the only identity known at attach time.
    const account = ["--as", "system:serviceaccount:tenant-a:default", "--as-group", "system:serviceaccounts", "--as-group", "system:serviceaccounts:tenant-a"];
    const admitted = await nadguard(["admit", manifest, "--state", dirs.state, ...account, "--output", "json"]);
    expect(admitted.code).toBe(3);
    const message = (JSON.parse(admitted.stdout) as { response: { status: { message: string } } }).response.status.message;
    expect(message).toContain("tenant-b/private");
    expect(denied.code).toBe(1);
    expect(JSON.parse(denied.stdout)).toEqual({ cniVersion: "1.0.0", code: 100, msg: message });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await cacheFiles()).toEqual(["sandbox-web"]);
    await expect(readFile(statusFile("tenant-a", "thief"))).rejects.toThrow(/ENOENT/);
  });

  it("DEL removes every interface, lease, cache and status file; a second DEL with an empty CNI_NETNS exits 0 too", async () => {
    const pod = `/run/netns/${lab.prefix}web`;
    const first = await shim("DEL", "sandbox-web", pod, "tenant-a/web");
    expect({ code: first.code, stdout: first.stdout, stderr: first.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await leases()).toEqual([]);
    expect(await cacheFiles()).toEqual([]);
    await expect(readFile(statusFile("tenant-a", "web"))).rejects.toThrow(/ENOENT/);

    for (const again of [1, 2]) {
      const later = await shim("DEL", "sandbox-web", "", "tenant-a/web");
      expect({ again, code: later.code, stdout: later.stdout }).toEqual({ again, code: 0, stdout: "" });
    }
  });

  it("DEL after the pod and its NAD were deleted from the cluster state still removes the interfaces, the lease and the switch's veth", async () => {
    const vethsBefore = await veths();
    const conf = { cniVersion: "1.0.0", name: "green", type: "bridge", bridge: "nggreen", ipam: { type: "host-local", dataDir: lab.dataDir, ranges: [[{ subnet: "198.18.73.0/24" }]] } };
    const file = await writeNetworkAndPod("gone", conf, "green");
    const pod = await lab.addPod("gone");
    // The daemon waits for a pod its state does not hold yet (podWaitMs): the file may be read after the ADD began.
    const added = await shim("ADD", "sandbox-gone", pod, "tenant-a/gone");
    expect({ code: added.code, stderr: added.stderr }).toEqual({ code: 0, stderr: "" });
    expect(await lab.linkNames(pod)).toEqual(["eth0", "lo", "net1"]);
    expect(await lab.leases("green")).toHaveLength(1);
    expect((await veths()).length).toBe(vethsBefore.length + 2);

    await rm(file);
    // Past the state directory's debounce and poll: the daemon no longer has the pod nor the NAD.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const deleted = await shim("DEL", "sandbox-gone", pod, "tenant-a/gone");
    expect({ code: deleted.code, stdout: deleted.stdout }).toEqual({ code: 0, stdout: "" });
    expect(await lab.linkNames(pod)).toEqual(["lo"]);
    expect(await lab.leases("green")).toEqual([]);
    expect(await veths()).toEqual(vethsBefore);
    expect(await cacheFiles()).toEqual([]);
  });

  it("without a daemon, ADD fails naming the socket after NADGUARD_CNI_READY_TIMEOUT_MS and DEL still exits 0", async () => {
    const nowhere = join(lab.dir, "no-daemon");
    const added = await shim("ADD", "sandbox-x", "/run/netns/none", "tenant-a/web", { input: await stdinFor({}, nowhere), env: { NADGUARD_CNI_READY_TIMEOUT_MS: "300" } });
    expect(added.code).toBe(1);
    expect(JSON.parse(added.stdout)).toMatchObject({
      code: 11,
      msg: `nadguard-cni: the nadguard daemon at ${nowhere}/nadguard.sock is not ready after 300 ms (NADGUARD_CNI_READY_TIMEOUT_MS)`,
    });
    const deleted = await shim("DEL", "sandbox-x", "", "tenant-a/web", { input: await stdinFor({}, nowhere) });
    expect({ code: deleted.code, stdout: deleted.stdout }).toEqual({ code: 0, stdout: "" });
    expect(deleted.stderr).toContain(`cannot reach the nadguard daemon at ${nowhere}/nadguard.sock`);
  });

  it("counts the calls by command and outcome, the errors by reason and times each delegate plugin", async () => {
    const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(daemonLog)?.[1];
    expect(url, daemonLog).toBeDefined();
    // The daemon listens in the switch netns.
    const text = await must("ip", ["netns", "exec", lab.switchNetns, "python3", "-c", `import urllib.request; print(urllib.request.urlopen("${url}").read().decode())`]);
    // Attached: web, guarded, open, pinned, client, gone; denied: thief; a delegate failed: unlucky. DEL: web 3×, the 5 others once.
    expect(text.split("\n").filter((line) => /^nadguard_cni_(requests|errors)_total/.test(line)).sort()).toEqual([
      'nadguard_cni_errors_total{reason="delegate"} 1',
      'nadguard_cni_errors_total{reason="denied"} 1',
      'nadguard_cni_requests_total{command="ADD",outcome="denied"} 1',
      'nadguard_cni_requests_total{command="ADD",outcome="error"} 1',
      'nadguard_cni_requests_total{command="ADD",outcome="ok"} 6',
      'nadguard_cni_requests_total{command="CHECK",outcome="ok"} 1',
      'nadguard_cni_requests_total{command="DEL",outcome="ok"} 8',
    ]);
    expect(text.split("\n").filter((line) => line.startsWith('nadguard_cni_delegate_duration_seconds_count{plugin="macvlan",command="ADD"}'))).toEqual([
      'nadguard_cni_delegate_duration_seconds_count{plugin="macvlan",command="ADD"} 5',
    ]);
  });

  it("GC deletes the attachments of a container the runtime no longer lists, its lease, its cache and its pod's status file", async () => {
    const conf = { cniVersion: "1.0.0", name: "gcnet", type: "bridge", bridge: "nggc", ipam: { type: "host-local", dataDir: lab.dataDir, ranges: [[{ subnet: "198.18.79.0/24" }]] } };
    const file = await writeNetworkAndPod("collected", conf, "gcnet");
    const pod = await lab.addPod("collected");
    try {
      expect((await shim("ADD", "sandbox-collected", pod, "tenant-a/collected")).code).toBe(0);
      expect(await lab.leases("gcnet")).toHaveLength(1);
      await readFile(statusFile("tenant-a", "collected"));
      // The runtime garbage-collects sandboxes that are gone: their netns with them.
      await must("ip", ["netns", "delete", netnsName(pod)]);
      const input = JSON.stringify({ ...JSON.parse(await stdinFor({})), "cni.dev/valid-attachments": [] });
      const collected = await shim("GC", "", "", "tenant-a/collected", { input, env: { CNI_ARGS: "", CNI_NETNS: "", CNI_CONTAINERID: "", CNI_IFNAME: "" } });
      expect({ code: collected.code, stdout: collected.stdout, stderr: collected.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(await lab.leases("gcnet")).toEqual([]);
      expect(await cacheFiles()).toEqual([]);
      await expect(readFile(statusFile("tenant-a", "collected"))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(file);
    }
  });

  it("a daemon config with an unknown key exits 2 naming it", async () => {
    const bad = join(lab.dir, "bad.yaml");
    await writeFile(bad, "socketDir: /tmp/x\nsocketdir: /tmp/y\n");
    const refused = await nadguard(["node", "--state", dirs.state, "--node", NODE, "--daemon-config", bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${bad}: `);
    expect(refused.stderr).toContain("socketdir");
  });

  it("--uninstall removes the conf file and the shim, and says so; the running daemon does not write the conf again", async () => {
    const removed = await nadguard(["node", "--uninstall", "--daemon-config", dirs.daemonConfig]);
    expect({ code: removed.code, stdout: removed.stdout.trim().split("\n") }).toEqual({
      code: 0,
      stdout: [`removed ${join(dirs.netd, "00-nadguard.conflist")}`, `removed ${join(dirs.bin, "nadguard-cni")}`],
    });
    // The daemon re-reads the cluster network every 2 s.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    expect((await readdir(dirs.netd)).sort()).toEqual(["10-cluster.conflist"]);
    expect((await readdir(dirs.bin)).sort()).toEqual(["macvlan"]);
  });

  it("on SIGTERM the daemon stops serving and exits 0, saying the conf file and the tables stay", async () => {
    const exited = new Promise<number | null>((resolve) => daemon!.once("exit", (code) => resolve(code)));
    process.kill(daemon!.pid!, "SIGTERM");
    expect(await exited).toBe(0);
    expect(daemonLog).toContain("nadguard node: SIGTERM: stopping (the conf file and the tables stay in place)");
    expect(await ready()).toBe(0);
  });
});
