// The enforcer's ways of finding a pod's netns, checked against real sandboxes of containerd's CRI
// (node harness, reference bridge): strategy (c) asks the runtime (ListPodSandbox by the pod's
// labels, PodSandboxStatus(verbose)) and gets the netns path the CNI plugins were given; strategy
// (b) scans /proc for the pause process in the pod's cgroup (`…/kubepods/besteffort/pod<uid>/…`)
// and enters /proc/<pid>/ns/net. Both name the same namespace (same inode) for each running pod,
// and neither finds a pod whose sandbox is stopped or was never made. `nadguard enforce --once
// --netns cri:SOCKET`, run as a user runs it, puts the pod's table into the sandbox's netns.
import { randomUUID } from "node:crypto";
import { mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { Pod } from "../../src/api/objects.js";
import { criResolver } from "../../src/enforcer/cri-netns.js";
import type { PodRef } from "../../src/enforcer/netns.js";
import { procResolver } from "../../src/enforcer/proc-netns.js";
import { type NodeSandbox, writeBridgeConflist } from "../support/containerd-node.js";
import { useContainerdNode } from "../support/containerd-node-fixture.js";
import { LEVEL, logLines, nadguard } from "./sys.js";
import { actualTable } from "./tables.js";

const IS_ROOT = process.getuid?.() === 0;

/** A pod of node-1 on the secondary network team-c/blue, as the API server would hold it once attached. */
function pod(name: string, net1 = "198.18.77.10"): Pod {
  return Pod.parse({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "team-c",
      uid: randomUUID(),
      labels: { app: name },
      annotations: {
        "k8s.v1.cni.cncf.io/networks": "blue",
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify([{ name: "team-c/blue", interface: "net1", ips: [net1] }]),
      },
    },
    spec: { nodeName: "node-1", containers: [{ name: "app", image: "example.invalid/app:1" }] },
    status: { phase: "Running" },
  });
}

function ref(p: Pod, withUid = true): PodRef {
  return { namespace: p.metadata.namespace!, name: p.metadata.name!, ...(withUid ? { uid: p.metadata.uid! } : {}) };
}

describe.skipIf(!IS_ROOT)("netns of containerd sandboxes", () => {
  const pods = [pod("one"), pod("two"), pod("three")];
  const sandboxes: NodeSandbox[] = [];
  const node = useContainerdNode({ writeConf: writeBridgeConflist }, async (n) => {
    await n.waitCondition("NetworkReady");
    for (const p of pods) sandboxes.push(await n.runPod(p));
  });

  it("the CRI strategy finds each pod's netns at the path containerd gave the plugins", async () => {
    const resolved = await criResolver(node().paths.socket).resolve(pods.map((p) => ref(p)));
    for (const [i, p] of pods.entries()) {
      const st = await stat(sandboxes[i]!.netnsPath);
      expect(resolved.get(`team-c/${p.metadata.name}`)).toEqual({ ok: true, value: { path: sandboxes[i]!.netnsPath, id: `${st.dev}:${st.ino}` } });
    }
  });

  it("the CRI strategy finds a pod without a uid by namespace and name", async () => {
    const resolved = await criResolver(node().paths.socket).resolve([ref(pods[1]!, false)]);
    expect(resolved.get("team-c/two")).toMatchObject({ ok: true, value: { path: sandboxes[1]!.netnsPath } });
  });

  it("the /proc strategy finds the pause process in the pod's cgroup, in the same netns", async () => {
    const resolved = await procResolver().resolve(pods.map((p) => ref(p)));
    for (const [i, p] of pods.entries()) {
      const st = await stat(sandboxes[i]!.netnsPath);
      expect(resolved.get(`team-c/${p.metadata.name}`)).toEqual({ ok: true, value: { path: `/proc/${sandboxes[i]!.pid}/ns/net`, id: `net:[${st.ino}]` } });
    }
  });

  it("nadguard enforce --once --netns cri:SOCKET puts the pod's table into its sandbox's netns; a relative socket exits 2", async () => {
    const state = join(node().paths.dataDir, "state");
    await mkdir(join(state, "pods"), { recursive: true });
    await writeFile(join(state, "namespaces.yaml"), stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "team-c" } }));
    const nad = { apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition", metadata: { name: "blue", namespace: "team-c" }, spec: { config: JSON.stringify({ cniVersion: "1.0.0", name: "blue", type: "bridge", bridge: "ngblue" }) } };
    await writeFile(join(state, "nads.yaml"), stringify(nad));
    await writeFile(join(state, "pods", "one.yaml"), stringify(pods[0]));

    const r = await nadguard(["enforce", "--state", state, "--node", "node-1", "--netns", `cri:${node().paths.socket}`, "--once"]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
    const logs = logLines(r.stdout);
    expect(logs.find((l) => l.pod === "team-c/one")).toMatchObject({ level: LEVEL.info, netns: sandboxes[0]!.netnsPath, mode: "fresh" });
    expect(logs.at(-1)).toMatchObject({ reconciled: 1, failed: 0 });
    expect(await actualTable(sandboxes[0]!.netnsPath)).toBeDefined();

    const bad = await nadguard(["enforce", "--state", state, "--node", "node-1", "--netns", "cri:containerd.sock", "--once"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.split("\n")[0]).toBe("nadguard enforce: --netns cri:containerd.sock: the runtime's CRI socket must be an absolute path (e.g. cri:/run/containerd/containerd.sock)");
  }, 120_000);

  it("neither finds a pod that has no sandbox, nor one whose sandbox is stopped", async () => {
    const stopped = pods[2]!;
    await node().cri.stopPodSandbox(sandboxes[2]!.id);
    const absent = pod("absent");
    const refs = [ref(absent), ref(stopped)];
    const byCri = await criResolver(node().paths.socket).resolve(refs);
    const byProc = await procResolver().resolve(refs);
    for (const resolved of [byCri, byProc]) {
      expect(resolved.get("team-c/absent")).toMatchObject({ ok: false, error: { code: "netns.not-found", path: "team-c/absent" } });
      expect(resolved.get("team-c/three")).toMatchObject({ ok: false, error: { code: "netns.not-found", path: "team-c/three" } });
    }
    expect(byCri.get("team-c/absent")).toMatchObject({ error: { message: `cri ${node().paths.socket}: no ready sandbox` } });
    expect(byProc.get("team-c/absent")).toMatchObject({ error: { message: `no process in /proc belongs to pod uid ${absent.metadata.uid}` } });
  });

  it("the CRI strategy on a socket nobody serves reports the transport error for every pod", async () => {
    const resolved = await criResolver(`${node().paths.dir}/absent.sock`, { timeoutMs: 1_000 }).resolve([ref(pods[0]!)]);
    expect(resolved.get("team-c/one")).toMatchObject({ ok: false, error: { code: "netns.error", message: expect.stringMatching(/^cri .*absent\.sock: CRI ListPodSandbox failed \((UNAVAILABLE|DEADLINE_EXCEEDED)\): /) } });
  });
});
