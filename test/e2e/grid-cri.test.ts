// The end-to-end conformance grid (grid-suite.ts) with its nine pods created as sandboxes through
// containerd's CRI: a private containerd 1.6 (test/support/containerd-node.ts) whose CNI conf is
// the one `nadguard node` writes, RunPodSandbox with the config kubelet would build for each pod,
// containerd executing the shim, the daemon attaching eth0, net1 (bridge) and net2 (macvlan) dual
// stack in containerd's netns, and `nadguard enforce --once --netns cri:<socket>` finding each
// pod's netns through the CRI. The scenarios run are those with hand-written truth tables; each is
// also checked against the engine's oracle. Nothing of the node may be left afterwards.
import { expect, it } from "vitest";
import { GRID } from "../policy-conformance/grid.js";
import { scenarios } from "../policy-conformance/scenarios.js";
import { describeGrid } from "./grid-suite.js";

const handChecked = scenarios.filter((s) => s.probes.length > 0);

describeGrid("e2e conformance grid with the pods as containerd sandboxes (CRI)", "cri", handChecked, (lab) => {
  it("has each pod as a ready sandbox of containerd with the pod's uid, its netns containerd's, found by the CRI", async () => {
    const containerd = lab().containerd!;
    const sandboxes = await containerd.cri.listPodSandbox();
    const listed = sandboxes.map((s) => [`${s.metadata?.namespace}/${s.metadata?.name}`, s.metadata?.uid, s.state]).sort();
    expect(listed).toEqual(GRID.map((key) => [key, lab().pod(key).uid, "SANDBOX_READY"]).sort());
    for (const key of GRID) {
      const pod = lab().pod(key);
      expect(pod.netnsPath.startsWith(`${containerd.paths.state}/`), pod.netnsPath).toBe(true);
      expect((await containerd.cri.sandboxDetails(pod.containerId)).netnsPath).toBe(pod.netnsPath);
    }
  });
});

it("runs at least ten hand-checked scenarios through containerd", () => {
  expect(handChecked.length).toBeGreaterThanOrEqual(10);
});
