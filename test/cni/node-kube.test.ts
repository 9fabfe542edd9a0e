// `nadguard node --kube --kubeconfig FILE` as a node runs it: the daemon as its own process (in the
// lab's "switch" netns, where the REAL bridge and macvlan plugins of /usr/lib/cni make their
// host-side links), the cluster in the fake API server (test/kube/fake-apiserver.ts, or
// KUBECONFIG's cluster), reached from the switch netns through a veth of 198.18.75.0/30 and a TCP
// relay in this process. The shim is a copy of bin/nadguard-cni run with containerd's environment
// and stdin. What is asserted is what a user sees: the shim's exit status and output, the pod's
// interfaces read back with `ip -n`, the pod's network-status annotation and Events read back
// from the API server, SubjectAccessReview deciding a cross-namespace NAD, a policy peer of another
// node in the pod's table read back with nft, host-local's leases.
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, copyFile, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { type Server, type Socket, connect, createServer } from "node:net";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeRequest } from "../../src/authz/kube-http.js";
import { NADGUARD_BIN, type RunResult, must, nadguard, run } from "../e2e/sys.js";
import { type Obj, type TestCluster, eventually, grantNadUse, nad, startTestCluster } from "../kube/cluster.js";
import { readyzStatus } from "../support/nadguard-node.js";
import { CNI_DIR, CniNetns, IS_ROOT, globalAddresses } from "./netns.js";

if (!IS_ROOT) console.warn("\n!! test/cni/node-kube.test.ts SKIPPED: not root, cannot create network namespaces !!\n");

const SHIM_SOURCE = join(dirname(NADGUARD_BIN), "nadguard-cni");
const NODE = "node-kube-1";
const STATUS = "k8s.v1.cni.cncf.io/network-status";

describe.skipIf(!IS_ROOT)("nadguard node --kube and the nadguard-cni shim", () => {
  let lab: CniNetns;
  let cluster: TestCluster;
  let relay: Server | undefined;
  const sockets = new Set<Socket>();
  let daemon: ChildProcess | undefined;
  let daemonLog = "";
  let ns: string;
  let other: string;
  let dirs: { netd: string; bin: string; cni: string; sock: string; daemonConfig: string; kubeconfig: string };

  async function shim(command: string, containerId: string, netns: string, pod: Obj): Promise<RunResult> {
    const list = JSON.parse(await readFile(join(dirs.netd, "00-nadguard.conflist"), "utf8")) as { name: string; cniVersion: string; plugins: Record<string, unknown>[] };
    const uid = String(pod.metadata.uid);
    return run(join(dirs.bin, "nadguard-cni"), [], {
      input: JSON.stringify({ ...list.plugins[0], name: list.name, cniVersion: list.cniVersion, runtimeConfig: {} }),
      env: {
        PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`,
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: netns,
        CNI_IFNAME: "eth0",
        CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.metadata.namespace};K8S_POD_NAME=${pod.metadata.name};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${uid}`,
        CNI_PATH: CNI_DIR,
      },
      timeoutMs: 60_000,
    });
  }

  const ready = (): Promise<number> => readyzStatus(join(dirs.sock, "nadguard.sock"));

  const pod = (namespace: string, name: string, networks: string): Obj => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels: { app: name }, annotations: { "k8s.v1.cni.cncf.io/networks": networks } },
    spec: { nodeName: NODE, automountServiceAccountToken: false, containers: [{ name: "app", image: "registry.invalid/nadguard-test:none" }] },
  });

  /** The pod in the informers' cache of the daemon is what ADD needs; the API server has it at once. */
  async function createPod(object: Obj): Promise<Obj> {
    return cluster.api.create(object);
  }

  const events = async (namespace: string, name: string): Promise<string[]> => {
    const list = (await cluster.api.names("Event", namespace).catch(() => [] as string[])).filter((n) => n.startsWith(`${name}.`));
    const out: string[] = [];
    for (const event of list) {
      const e = (await cluster.api.get("Event", namespace, event)) as Obj & { reason: string; message: string; involvedObject: { name: string } };
      out.push(`${e.involvedObject.name} ${e.reason}: ${e.message}`);
    }
    return out.sort();
  };

  beforeAll(async () => {
    lab = await CniNetns.create();
    cluster = await startTestCluster();
    dirs = {
      netd: join(lab.dir, "net.d"),
      bin: join(lab.dir, "bin"),
      cni: join(lab.dir, "cni"),
      sock: join(lab.dir, "sock"),
      daemonConfig: join(lab.dir, "daemon.yaml"),
      kubeconfig: join(lab.dir, "kubeconfig"),
    };
    for (const dir of [dirs.netd, dirs.bin]) await mkdir(dir, { recursive: true });
    await copyFile(SHIM_SOURCE, join(dirs.bin, "nadguard-cni"));
    await chmod(join(dirs.bin, "nadguard-cni"), 0o755);
    const hostLocal = (subnet: string): unknown => ({ type: "host-local", dataDir: lab.dataDir, ranges: [[{ subnet }]] });
    await writeFile(join(dirs.netd, "10-cluster.conflist"), JSON.stringify({ cniVersion: "1.0.0", name: "cluster", plugins: [{ type: "bridge", bridge: "ngkubebr", ipam: hostLocal("198.18.76.0/24") }] }));
    await writeFile(dirs.daemonConfig, `socketDir: ${dirs.sock}\ncniConfigDir: ${dirs.netd}\nbinDir: ${dirs.bin}\ncniDir: ${dirs.cni}\n`);

    // The API server from the switch netns: a veth to this netns and a relay to the fault proxy's loopback port.
    // An interface name has at most 15 bytes: the run's hex part of the prefix, not the whole prefix.
    const rootSide = `ngapi${lab.prefix.split("-")[2]}`;
    await must("ip", ["link", "add", rootSide, "type", "veth", "peer", "name", "api", "netns", lab.switchNetns]);
    await must("ip", ["addr", "add", "198.18.75.1/30", "dev", rootSide]);
    await must("ip", ["link", "set", rootSide, "up"]);
    await must("ip", ["-n", lab.switchNetns, "addr", "add", "198.18.75.2/30", "dev", "api"]);
    await must("ip", ["-n", lab.switchNetns, "link", "set", "api", "up"]);
    await must("ip", ["-n", lab.switchNetns, "link", "set", "lo", "up"]);
    const upstream = new URL(cluster.kubeConfig.getCurrentCluster()!.server);
    relay = createServer((socket) => {
      const to = connect(Number(upstream.port), upstream.hostname);
      for (const s of [socket, to]) {
        sockets.add(s);
        s.on("error", () => undefined);
        s.on("close", () => sockets.delete(s));
      }
      socket.pipe(to).pipe(socket);
    });
    await new Promise<void>((resolve) => relay!.listen(0, "198.18.75.1", resolve));
    const exported = JSON.parse(cluster.kubeConfig.exportConfig()) as { clusters: { cluster: { server: string } }[] };
    for (const c of exported.clusters) c.cluster.server = `${upstream.protocol}//198.18.75.1:${(relay.address() as { port: number }).port}`;
    await writeFile(dirs.kubeconfig, JSON.stringify(exported), { mode: 0o600 });

    ns = await cluster.namespace("node-pods");
    other = await cluster.namespace("node-nets");
    const macvlan = (name: string, subnet: string): string => JSON.stringify({ cniVersion: "1.0.0", name, type: "macvlan", master: "mvp", mode: "bridge", ipam: hostLocal(subnet) });
    await cluster.api.create(nad(ns, "blue", { config: macvlan("blue", "198.18.77.0/24") }));
    await cluster.api.create(nad(other, "shared", { config: macvlan("shared", "198.18.78.0/24") }));

    daemon = spawn("ip", ["netns", "exec", lab.switchNetns, process.execPath, NADGUARD_BIN, "node", "--kube", "--kubeconfig", dirs.kubeconfig, "--node", NODE, "--daemon-config", dirs.daemonConfig], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    daemon.stdout!.on("data", (chunk: Buffer) => (daemonLog += chunk.toString()));
    daemon.stderr!.on("data", (chunk: Buffer) => (daemonLog += chunk.toString()));
    for (let i = 0; i < 300 && (await ready()) !== 200; i++) {
      if (daemon.exitCode !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if ((await ready()) !== 200) throw new Error(`nadguard node --kube did not become ready:\n${daemonLog}`);
  }, 60_000);

  afterAll(async () => {
    if (daemon?.pid !== undefined && daemon.exitCode === null) {
      const exited = new Promise((resolve) => daemon!.once("exit", resolve));
      process.kill(daemon.pid, "SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (daemon.exitCode === null) process.kill(daemon.pid, "SIGKILL");
    }
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => (relay ? relay.close(resolve) : resolve(undefined)));
    await cluster?.cleanup();
    // The switch netns takes the veth's peer (and so the root side) with it.
    await lab?.destroy();
  }, 30_000);

  it("ADD attaches eth0 and net1, writes network-status to the pod through pods/status, and reports an Event per interface", async () => {
    const web = await createPod(pod(ns, "web", "blue"));
    const netns = await lab.addPod("web");
    const added = await shim("ADD", "sandbox-web", netns, web);
    expect({ code: added.code, stderr: added.stderr, out: added.code === 0 ? "" : added.stdout }).toEqual({ code: 0, stderr: "", out: "" });
    const links = await lab.links(netns);
    const eth0 = links.find((l) => l.ifname === "eth0")!;
    const net1 = links.find((l) => l.ifname === "net1")!;
    expect(globalAddresses(eth0)).toEqual([expect.stringMatching(/^198\.18\.76\.\d+\/24$/)]);
    expect(globalAddresses(net1)).toEqual([expect.stringMatching(/^198\.18\.77\.\d+\/24$/)]);
    const ip = (link: typeof eth0): string => globalAddresses(link)[0]!.split("/")[0]!;

    const stored = await cluster.api.get("Pod", ns, "web");
    expect(JSON.parse(stored.metadata.annotations![STATUS]!)).toEqual([
      { name: "cluster", interface: "eth0", ips: [ip(eth0)], mac: eth0.address, default: true, dns: {} },
      { name: `${ns}/blue`, interface: "net1", ips: [ip(net1)], mac: net1.address, default: false, dns: {} },
    ]);
    // Through the status subresource, never a write of the pod itself.
    if (cluster.fake) {
      const writes = cluster.fake.requests.filter((r) => r.method !== "GET" && r.path.includes(`/namespaces/${ns}/pods/web`)).map((r) => `${r.method} ${r.path}`);
      expect(writes).toEqual([`PUT /api/v1/namespaces/${ns}/pods/web/status`]);
    }
    expect(await eventually(async () => {
      const seen = await events(ns, "web");
      expect(seen).toHaveLength(2);
      return seen;
    })).toEqual([`web AddedInterface: Add eth0 [${ip(eth0)}] from cluster`, `web AddedInterface: Add net1 [${ip(net1)}] from ${ns}/blue`]);
    expect(await lab.leases("blue")).toHaveLength(1);
  });

  it("puts a policy peer that runs on another node into the pod's table: the daemon watches every node's pods, not only its own", async () => {
    await cluster.api.create({
      apiVersion: "k8s.cni.cncf.io/v1beta1",
      kind: "MultiNetworkPolicy",
      metadata: { name: "guarded-from-far", namespace: ns, annotations: { "k8s.v1.cni.cncf.io/policy-for": "blue" } },
      spec: { podSelector: { matchLabels: { app: "guarded" } }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: { app: "far" } } }] }] },
    });
    // The peer's own node recorded its network-status; this node never attached it.
    const far = pod(ns, "far", "blue");
    const created = await createPod({
      ...far,
      metadata: { ...far.metadata, annotations: { ...far.metadata.annotations, [STATUS]: JSON.stringify([{ name: `${ns}/blue`, interface: "net1", ips: ["198.18.77.250"], default: false }]) } },
      spec: { ...(far.spec as Record<string, unknown>), nodeName: "node-kube-2" },
    });
    // Its kubelet reports it Running (a peer counts only then).
    await kubeRequest(cluster.kubeConfig, { method: "PUT", path: `/api/v1/namespaces/${ns}/pods/far/status`, body: { ...created, status: { phase: "Running" } }, timeoutMs: 10_000 });
    const guarded = await createPod(pod(ns, "guarded", "blue"));
    const netns = await lab.addPod("guarded");
    const added = await shim("ADD", "sandbox-guarded", netns, guarded);
    expect({ code: added.code, out: added.code === 0 ? "" : added.stdout }).toEqual({ code: 0, out: "" });
    const table = await eventually(async () => {
      const listed = await must("ip", ["netns", "exec", `${lab.prefix}guarded`, "nft", "list", "table", "inet", "nadguard"]);
      expect(listed).toContain("198.18.77.250");
      return listed;
    }, 10_000, 200);
    expect(table).toMatch(/set ingress_isolated \{[^}]*elements = \{ "net1" \}/);
    expect((await shim("DEL", "sandbox-guarded", netns, guarded)).code).toBe(0);
  }, 60_000);

  it("refuses a pod whose service account may not use another namespace's NAD, by SubjectAccessReview, and attaches it once a RoleBinding allows it", async () => {
    const thief = await createPod(pod(ns, "thief", `${other}/shared`));
    const netns = await lab.addPod("thief");
    const denied = await shim("ADD", "sandbox-thief", netns, thief);
    expect(denied.code).toBe(1);
    const error = JSON.parse(denied.stdout) as { code: number; msg: string };
    expect(error.code).toBe(100);
    expect(error.msg).toContain(`may not use NetworkAttachmentDefinition ${other}/shared: it is not in the pod's namespace ${ns}`);
    expect(error.msg).toContain(`system:serviceaccount:${ns}:default`);
    expect(await lab.linkNames(netns)).toEqual(["lo"]);
    expect((await cluster.api.get("Pod", ns, "thief")).metadata.annotations?.[STATUS]).toBeUndefined();
    if (cluster.fake) expect(cluster.fake.requests.some((r) => r.path === "/apis/authorization.k8s.io/v1/subjectaccessreviews")).toBe(true);

    await grantNadUse(cluster.api, other, "shared", { thief: { kind: "ServiceAccount", name: "default", namespace: ns } });
    // The SAR answer is cached briefly; the allowed one arrives once the cache entry expires.
    const added = await eventually(async () => {
      const again = await shim("ADD", "sandbox-thief", netns, thief);
      expect({ code: again.code, out: again.code === 0 ? "" : again.stdout }).toEqual({ code: 0, out: "" });
      return again;
    }, 20_000, 500);
    expect(added.code).toBe(0);
    expect(await lab.linkNames(netns)).toEqual(["eth0", "lo", "net1"]);
    expect((await shim("DEL", "sandbox-thief", netns, thief)).code).toBe(0);
  }, 60_000);

  it("DEL removes the interfaces, the leases, the cache and the pod's network-status; again with an empty CNI_NETNS it exits 0", async () => {
    const web = await cluster.api.get("Pod", ns, "web");
    const netns = `/run/netns/${lab.prefix}web`;
    const deleted = await shim("DEL", "sandbox-web", netns, web);
    expect({ code: deleted.code, stdout: deleted.stdout, stderr: deleted.stderr }).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await lab.linkNames(netns)).toEqual(["lo"]);
    expect([...(await lab.leases("cluster")), ...(await lab.leases("blue")), ...(await lab.leases("shared"))]).toEqual([]);
    expect((await readdir(dirs.cni)).filter((f) => f !== "results")).toEqual([]);
    expect((await cluster.api.get("Pod", ns, "web")).metadata.annotations?.[STATUS]).toBeUndefined();
    const again = await shim("DEL", "sandbox-web", "", web);
    expect({ code: again.code, stdout: again.stdout }).toEqual({ code: 0, stdout: "" });
  });

  it("--state with --kube, and a kubeconfig that cannot be read, exit 2 saying so", async () => {
    const both = await nadguard(["node", "--state", lab.dir, "--kube", "--node", NODE, "--daemon-config", dirs.daemonConfig]);
    expect({ code: both.code, stderr: both.stderr.split("\n")[0] }).toEqual({ code: 2, stderr: "nadguard node: give either --state DIR or Kubernetes (--kube, --kubeconfig, --in-cluster, --context), not both" });
    const missing = join(lab.dir, "no-such-kubeconfig");
    const unreadable = await nadguard(["node", "--kubeconfig", missing, "--node", NODE, "--daemon-config", dirs.daemonConfig]);
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toContain(`nadguard node: cannot load ${missing}: `);
  });
});
