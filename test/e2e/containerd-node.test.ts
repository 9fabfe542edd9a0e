// The node harness end to end (root): a private containerd 1.6 creates a pod's sandbox through its
// real CRI gRPC API, runs the reference bridge + host-local plugins from the conflist the suite
// wrote, and the sandbox's netns holds eth0 with an address of each range (dual stack); Stop
// releases the addresses, Remove the sandbox, and stopping the node leaves nothing behind: no
// containerd, no mounts, no netns or bridge, no cgroups, no go-cni cache entries. Also after 20
// pods 4 at a time, when containerd was killed with a sandbox running, when the node fails to
// start, and when the test run itself was killed (the next run's start cleans up).
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pod } from "../../src/api/objects.js";
import { bridgeLeases, bridgeNetwork, ContainerdNode, LIBCNI_RESULTS_DIR, mountsUnder, type NodePaths, processRuns, shimSocket, writeBridgeConflist } from "../support/containerd-node.js";
import { acquireE2eLock, must, run } from "./sys.js";

const IS_ROOT = process.getuid?.() === 0;

function testPod(name: string): Pod {
  return Pod.parse({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "team-a", uid: randomUUID(), labels: { app: name }, annotations: { "example.com/owner": "tests" } },
    spec: { containers: [{ name: "app", image: "example.invalid/app:1", ports: [{ containerPort: 8080, protocol: "TCP" }] }] },
  });
}

interface AddrInfo {
  readonly ifname: string;
  readonly addr_info: { family: string; local: string; prefixlen: number }[];
}

/** The netns's interfaces and their addresses of `family` (link-local left out), read back from the kernel. */
async function interfaces(netnsPath: string, family: "inet" | "inet6" = "inet"): Promise<Record<string, string[]>> {
  const links = JSON.parse(await must("nsenter", [`--net=${netnsPath}`, "ip", "-j", "addr", "show"])) as AddrInfo[];
  return Object.fromEntries(links.map((l) => [l.ifname, l.addr_info.filter((a) => a.family === family && !a.local.startsWith("fe80") && a.local !== "::1").map((a) => `${a.local}/${a.prefixlen}`)]));
}

async function cacheEntries(id: string): Promise<string[]> {
  return (await readdir(LIBCNI_RESULTS_DIR).catch(() => [] as string[])).filter((f) => f.includes(id));
}

describe.skipIf(!IS_ROOT)("containerd node harness", () => {
  let release: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    release = await acquireE2eLock();
  }, 660_000);
  afterAll(async () => {
    await release?.();
  });

  describe("a pod through the CRI with the reference plugins", () => {
    let node: ContainerdNode | undefined;
    beforeAll(async () => {
      node = await ContainerdNode.start({ writeConf: writeBridgeConflist });
    }, 120_000);
    afterAll(async () => {
      const left = await node?.stop();
      expect(left).toEqual([]);
    }, 120_000);

    it("is containerd 1.6 speaking CRI v1, runtime and network ready with the conflist in conf_dir", async () => {
      const version = await node!.cri.version();
      expect(version.runtimeName).toBe("containerd");
      expect(version.runtimeVersion).toMatch(/^1\.6\./);
      expect(version.runtimeApiVersion).toBe("v1");
      await node!.waitCondition("NetworkReady");
      const conditions = await node!.cri.status();
      expect(conditions.filter((c) => c.status).map((c) => c.type).sort()).toEqual(["NetworkReady", "RuntimeReady"]);
    });

    it("RunPodSandbox gives the pod eth0 from the range; Stop releases it; Remove leaves nothing", async () => {
      const net = bridgeNetwork(node!.paths);
      const pod = testPod("web");
      const sandbox = await node!.runPod(pod);

      expect(sandbox.status.state).toBe("SANDBOX_READY");
      expect(sandbox.status.metadata).toEqual({ name: "web", namespace: "team-a", uid: pod.metadata.uid, attempt: 0 });
      expect(sandbox.status.labels).toMatchObject({ app: "web", "io.kubernetes.pod.name": "web", "io.kubernetes.pod.namespace": "team-a" });
      expect(sandbox.status.annotations).toEqual({ "example.com/owner": "tests" });
      expect(sandbox.netnsPath.startsWith(`${node!.paths.state}/`)).toBe(true);
      expect(await must("cat", [`/proc/${sandbox.pid}/cmdline`])).toBe("/pause\0");
      expect(existsSync(shimSocket(node!.paths, sandbox.id))).toBe(true);

      const links = await interfaces(sandbox.netnsPath);
      expect(Object.keys(links).sort()).toEqual(["eth0", "lo"]);
      const [address] = links["eth0"]!;
      expect(address).toMatch(new RegExp(`^198\\.19\\.${net.subnet.split(".")[2]}\\.\\d+/24$`));
      const ip = address!.split("/")[0]!;
      expect(sandbox.status.network?.ip).toBe(ip);
      // Dual stack: the second range gives eth0 an IPv6 address, which the CRI reports as additional.
      const [address6] = (await interfaces(sandbox.netnsPath, "inet6"))["eth0"]!;
      expect(address6).toMatch(new RegExp(`^${net.subnet6.replace("::/64", "")}::[0-9a-f]+/64$`));
      const ip6 = address6!.split("/")[0]!;
      expect(sandbox.status.network?.additionalIps).toEqual([{ ip: ip6 }]);
      expect(await bridgeLeases(node!.paths)).toEqual([ip, ip6].sort());
      expect(await cacheEntries(sandbox.id)).toEqual([`${net.name}-${sandbox.id}-eth0`, `cni-loopback-${sandbox.id}-lo`].sort());
      // The host side: one veth on the run's bridge, in the node's netns, none in the machine's.
      const ports = JSON.parse(await must("ip", ["-n", node!.paths.netns, "-j", "link", "show", "master", net.bridge])) as unknown[];
      expect(ports).toHaveLength(1);
      expect((await run("ip", ["link", "show", net.bridge])).code).not.toBe(0);
      expect(await node!.cri.listPodSandbox()).toEqual([expect.objectContaining({ id: sandbox.id, state: "SANDBOX_READY" })]);

      await node!.cri.stopPodSandbox(sandbox.id);
      expect(await bridgeLeases(node!.paths)).toEqual([]);
      expect((await node!.cri.podSandboxStatus(sandbox.id)).state).toBe("SANDBOX_NOTREADY");
      expect(JSON.parse(await must("ip", ["-n", node!.paths.netns, "-j", "link", "show", "master", net.bridge]))).toEqual([]);

      // kubelet stops again before it removes; the second DEL has nothing left to release.
      await node!.removePod(sandbox.id);
      expect(await node!.cri.listPodSandbox()).toEqual([]);
      expect(existsSync(sandbox.netnsPath)).toBe(false);
      expect(existsSync(shimSocket(node!.paths, sandbox.id))).toBe(false);
      expect(await cacheEntries(sandbox.id)).toEqual([]);
      // Nothing of the pod is left; the node itself (containerd, its dir, netns, QoS cgroups) stays.
      expect((await node!.leftovers()).filter((l) => l.includes(sandbox.id) || l.includes(pod.metadata.uid!))).toEqual([]);
    }, 120_000);
  });

  it("20 pods created and removed through the CRI, 4 at a time, leave nothing behind", async () => {
    const node = await ContainerdNode.start({ writeConf: writeBridgeConflist });
    try {
      await node.waitCondition("NetworkReady");
      const pods = Array.from({ length: 20 }, (_, i) => testPod(`batch-${i}`));
      const addresses = new Set<string>();
      for (let i = 0; i < pods.length; i += 4) {
        const sandboxes = await Promise.all(pods.slice(i, i + 4).map((pod) => node.runPod(pod)));
        for (const sandbox of sandboxes) {
          const [address] = (await interfaces(sandbox.netnsPath))["eth0"] ?? [];
          expect(address?.split("/")[0]).toBe(sandbox.status.network?.ip);
          addresses.add(address!);
        }
        expect(await bridgeLeases(node.paths)).toHaveLength(8);
        await Promise.all(sandboxes.map((sandbox) => node.removePod(sandbox.id)));
        expect(await bridgeLeases(node.paths)).toEqual([]);
      }
      expect(addresses.size).toBeGreaterThanOrEqual(4);
      expect(await node.cri.listPodSandbox()).toEqual([]);
      expect(await mountsUnder(node.paths.dir)).toEqual([]);
      const net = bridgeNetwork(node.paths);
      expect(JSON.parse(await must("ip", ["-n", node.paths.netns, "-j", "link", "show", "master", net.bridge]))).toEqual([]);
      expect((await node.leftovers()).filter((l) => pods.some((pod) => l.includes(pod.metadata.uid!)) || node.sandboxIds.some((id) => l.includes(id)))).toEqual([]);
    } finally {
      expect(await node.stop()).toEqual([]);
    }
  }, 300_000);

  it("containerd killed (SIGKILL) with a sandbox running: stop() still leaves nothing", async () => {
    const node = await ContainerdNode.start({ writeConf: writeBridgeConflist });
    try {
      await node.waitCondition("NetworkReady");
      const sandbox = await node.runPod(testPod("crash"));
      const pid = await node.pid();
      process.kill(pid, "SIGKILL");
      // What the crash left: the pause process, the netns mount, the rootfs, a cgroup.
      const before = await node.leftovers();
      expect(before).toContain(`mount ${sandbox.netnsPath}`);
      expect(before.some((l) => l.startsWith("cgroup "))).toBe(true);
    } finally {
      expect(await node.stop()).toEqual([]);
    }
    expect(await node.pid()).toBe(0);
    expect(existsSync(`/run/netns/${node.paths.netns}`)).toBe(false);
    expect(existsSync(node.paths.dir)).toBe(false);
  }, 180_000);

  it("a test run killed with its node running: the next start() finds it dead and removes all of its node", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "..", "support", "node-child.ts")], { stdio: ["ignore", "pipe", "pipe"] });
    const stderr: Buffer[] = [];
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("\n")) resolve(out.split("\n")[0]!);
      });
      child.on("exit", (code) => reject(new Error(`the child run exited (${code}) before its node was up: ${Buffer.concat(stderr).toString()}`)));
    });
    const orphan = JSON.parse(line) as { dir: string; netns: string; containerd: number; pause: number; netnsPath: string };
    process.kill(child.pid!, "SIGKILL");
    await new Promise((resolve) => child.once("exit", resolve));
    expect(processRuns(orphan.containerd)).toBe(true);
    expect(processRuns(orphan.pause)).toBe(true);
    expect(await mountsUnder(orphan.dir)).toContain(orphan.netnsPath);

    const node = await ContainerdNode.start({ writeConf: writeBridgeConflist });
    try {
      expect(processRuns(orphan.containerd)).toBe(false);
      expect(processRuns(orphan.pause)).toBe(false);
      expect(await mountsUnder(orphan.dir)).toEqual([]);
      expect(existsSync(`/run/netns/${orphan.netns}`)).toBe(false);
      expect(existsSync(orphan.dir)).toBe(false);
    } finally {
      expect(await node.stop()).toEqual([]);
    }
  }, 180_000);

  it("a conf writer's cleanup runs once, after containerd has stopped and the pods are removed", async () => {
    const seen: { containerdRuns: boolean; sandboxes: string[] }[] = [];
    let pidFile = "";
    const node = await ContainerdNode.start({
      writeConf: async (paths) => {
        await writeBridgeConflist(paths);
        pidFile = paths.pidFile;
        return async () => {
          const pid = Number(readFileSync(pidFile, "utf8"));
          seen.push({ containerdRuns: processRuns(pid), sandboxes: readdirSync(join(paths.root, "io.containerd.grpc.v1.cri", "sandboxes")) });
        };
      },
    });
    await node.waitCondition("NetworkReady");
    await node.runPod(testPod("cleanup"));
    expect(await node.stop()).toEqual([]);
    expect(await node.stop()).toEqual([]);
    expect(seen).toEqual([{ containerdRuns: false, sandboxes: [] }]);
  }, 120_000);

  it("a conf writer that fails: start() rejects with its error and leaves nothing", async () => {
    let paths: NodePaths | undefined;
    const started = ContainerdNode.start({
      writeConf: async (p) => {
        paths = p;
        throw new Error("conf writer failed on purpose");
      },
    });
    await expect(started).rejects.toThrow(/^conf writer failed on purpose$/);
    expect(paths).toBeDefined();
    expect(existsSync(paths!.dir)).toBe(false);
    expect(existsSync(`/run/netns/${paths!.netns}`)).toBe(false);
  }, 120_000);
});
