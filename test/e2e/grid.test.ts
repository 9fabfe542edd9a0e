// End-to-end conformance grid (the suite: grid-suite.ts) with every pod attached through the
// meta-plugin — `nadguard node` as a child process, each pod's ADD by executing the shim
// `nadguard-cni` as containerd does, the daemon running the reference CNI plugins and installing
// the pod's table before its interfaces exist — over every scenario of the policy engine.
import { expect, it } from "vitest";
import { scenarios } from "../policy-conformance/scenarios.js";
import { describeGrid } from "./grid-suite.js";

describeGrid("e2e conformance grid: real netns, CNI plugins, nft and sockets", "meta-plugin", scenarios);

it("covers at least ten scenarios with hand-written tables", () => {
  expect(scenarios.filter((s) => s.probes.length > 0).length).toBeGreaterThanOrEqual(10);
});
