// The matrix's pieces: who takes part (pods without an address on the network are left out, pods
// without a common family get no cell), and the default ports (named by the network's policies,
// plus the lowest TCP port none names).
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { DEFAULT_CONFIG } from "../config/config.js";
import { gridSnapshot, policy } from "../../test/policy-conformance/grid.js";
import { snapshotFrom } from "../../test/support/cluster.js";
import { cellStates, defaultMatrixPorts, reachabilityMatrix } from "./matrix.js";
import { buildModel } from "./model.js";

function pod(name: string, ips: string[]): string {
  const status = [{ name: "n/lan", interface: "net1", ips }];
  return stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "t", annotations: { "k8s.v1.cni.cncf.io/network-status": JSON.stringify(status) } },
    spec: { containers: [{ name: "c" }] },
    status: { phase: "Running" },
  });
}

const nad = stringify({ apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition", metadata: { name: "lan", namespace: "n" }, spec: { config: '{"cniVersion":"1.0.0","type":"bridge"}' } });

describe("reachabilityMatrix", () => {
  it("leaves out pods without an address, and gives no cell to pods without a common family", () => {
    const snapshot = snapshotFrom(nad, pod("v4", ["198.18.9.1"]), pod("v6", ["fd00:9::1"]), pod("dual", ["198.18.9.3", "fd00:9::3"]), pod("none", []));
    const m = reachabilityMatrix(buildModel(snapshot, DEFAULT_CONFIG), { network: "n/lan", ports: [{ port: 80, protocol: "TCP" }] });
    expect(m.members.map((x) => x.key)).toEqual(["t/dual", "t/v4", "t/v6"]);
    expect(m.excluded).toEqual([{ pod: "t/none", reason: "no address on n/lan" }]);
    const families = (from: number, to: number) => cellStates(m, m.grids[0]!, from, to).map((s) => s.family);
    expect([families(0, 1), families(0, 2), families(1, 2), families(2, 0)]).toEqual([[4], [6], [], [6]]);
  });
});

describe("defaultMatrixPorts", () => {
  const ports = (...policies: unknown[]) => {
    const model = buildModel(gridSnapshot(...policies), DEFAULT_CONFIG);
    return defaultMatrixPorts(model, "nets/blue", [...model.pods.values()]).map((p) => `${p.port}/${p.protocol}`);
  };

  it.each([
    { name: "no policy: the lowest port", policies: [], expected: ["1/TCP"] },
    {
      name: "numeric, range and named ports, then a port none names",
      policies: [policy("x", "p", { podSelector: {}, ingress: [{ ports: [{ port: 1 }, { port: 2, endPort: 3 }, { port: "web" }, { port: "dns", protocol: "UDP" }] }] })],
      expected: ["1/TCP", "2/TCP", "4/TCP", "80/TCP", "81/TCP", "53/UDP"],
    },
    { name: "a protocol alone names no port, and covers every port of it", policies: [policy("x", "p", { podSelector: {}, egress: [{ ports: [{ protocol: "TCP" }, { port: 53, protocol: "UDP" }] }] })], expected: ["53/UDP"] },
    { name: "policies of another network do not count", policies: [policy("x", "p", { podSelector: {}, ingress: [{ ports: [{ port: 8080 }] }] }, "nets/red")], expected: ["1/TCP"] },
  ])("$name", ({ policies, expected }) => {
    expect(ports(...policies)).toEqual(expected);
  });
});
