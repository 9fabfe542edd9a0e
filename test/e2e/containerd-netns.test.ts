// The enforcer's ways of finding a pod's netns, checked against real sandboxes of containerd's CRI
// (node harness, reference bridge): strategy (c) asks the runtime (ListPodSandbox by the pod's
// labels, PodSandboxStatus(verbose)) and gets the netns path the CNI plugins were given; strategy
// (b) scans /proc for the pause process in the pod's cgroup (`…/kubepods/besteffort/pod<uid>/…`)
// and enters /proc/<pid>/ns/net. Both name the same namespace (same inode) for each running pod,
// and neither finds a pod whose sandbox is stopped or was never made.
import { randomUUID } from "node:crypto";
import { stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pod } from "../../src/api/objects.js";
import { criResolver } from "../../src/enforcer/cri-netns.js";
import type { PodRef } from "../../src/enforcer/netns.js";
import { procResolver } from "../../src/enforcer/proc-netns.js";
import { ContainerdNode, type NodeSandbox, writeBridgeConflist } from "../support/containerd-node.js";
import { acquireE2eLock } from "./sys.js";

const IS_ROOT = process.getuid?.() === 0;

function pod(name: string): Pod {
  return Pod.parse({ metadata: { name, namespace: "team-c", uid: randomUUID() }, spec: { containers: [{ name: "app" }] } });
}

function ref(p: Pod, withUid = true): PodRef {
  return { namespace: p.metadata.namespace!, name: p.metadata.name!, ...(withUid ? { uid: p.metadata.uid! } : {}) };
}

describe.skipIf(!IS_ROOT)("netns of containerd sandboxes", () => {
  let release: (() => Promise<void>) | undefined;
  let node: ContainerdNode | undefined;
  const pods = [pod("one"), pod("two"), pod("three")];
  const sandboxes: NodeSandbox[] = [];
  beforeAll(async () => {
    release = await acquireE2eLock();
    node = await ContainerdNode.start({ writeConf: writeBridgeConflist });
    await node.waitCondition("NetworkReady");
    for (const p of pods) sandboxes.push(await node.runPod(p));
  }, 660_000);
  afterAll(async () => {
    try {
      expect(await node?.stop()).toEqual([]);
    } finally {
      await release?.();
    }
  }, 120_000);

  it("the CRI strategy finds each pod's netns at the path containerd gave the plugins", async () => {
    const resolved = await criResolver(node!.paths.socket).resolve(pods.map((p) => ref(p)));
    for (const [i, p] of pods.entries()) {
      const st = await stat(sandboxes[i]!.netnsPath);
      expect(resolved.get(`team-c/${p.metadata.name}`)).toEqual({ ok: true, value: { path: sandboxes[i]!.netnsPath, id: `${st.dev}:${st.ino}` } });
    }
  });

  it("the CRI strategy finds a pod without a uid by namespace and name", async () => {
    const resolved = await criResolver(node!.paths.socket).resolve([ref(pods[1]!, false)]);
    expect(resolved.get("team-c/two")).toMatchObject({ ok: true, value: { path: sandboxes[1]!.netnsPath } });
  });

  it("the /proc strategy finds the pause process in the pod's cgroup, in the same netns", async () => {
    const resolved = await procResolver().resolve(pods.map((p) => ref(p)));
    for (const [i, p] of pods.entries()) {
      const st = await stat(sandboxes[i]!.netnsPath);
      expect(resolved.get(`team-c/${p.metadata.name}`)).toEqual({ ok: true, value: { path: `/proc/${sandboxes[i]!.pid}/ns/net`, id: `net:[${st.ino}]` } });
    }
  });

  it("neither finds a pod that has no sandbox, nor one whose sandbox is stopped", async () => {
    const stopped = pods[2]!;
    await node!.cri.stopPodSandbox(sandboxes[2]!.id);
    const absent = pod("absent");
    const refs = [ref(absent), ref(stopped)];
    const byCri = await criResolver(node!.paths.socket).resolve(refs);
    const byProc = await procResolver().resolve(refs);
    for (const resolved of [byCri, byProc]) {
      expect(resolved.get("team-c/absent")).toMatchObject({ ok: false, error: { code: "netns.not-found", path: "team-c/absent" } });
      expect(resolved.get("team-c/three")).toMatchObject({ ok: false, error: { code: "netns.not-found", path: "team-c/three" } });
    }
    expect(byCri.get("team-c/absent")).toMatchObject({ error: { message: `cri ${node!.paths.socket}: no ready sandbox` } });
    expect(byProc.get("team-c/absent")).toMatchObject({ error: { message: `no process in /proc belongs to pod uid ${absent.metadata.uid}` } });
  });

  it("the CRI strategy on a socket nobody serves reports the transport error for every pod", async () => {
    const resolved = await criResolver(`${node!.paths.dir}/absent.sock`, { timeoutMs: 1_000 }).resolve([ref(pods[0]!)]);
    expect(resolved.get("team-c/one")).toMatchObject({ ok: false, error: { code: "netns.error", message: expect.stringMatching(/^cri .*absent\.sock: CRI ListPodSandbox failed \((UNAVAILABLE|DEADLINE_EXCEEDED)\): /) } });
  });
});
