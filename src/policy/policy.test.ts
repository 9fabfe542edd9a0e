import { describe, expect, it } from "vitest";
import { MultiNetworkPolicy } from "../api/objects.js";
import { parsePolicyFor, readPolicy } from "./policy.js";

const nads = new Map([["x/blue", {}], ["nets/red", {}]].map(([k, v]) => [k as string, v as never]));

function read(spec: Record<string, unknown>, policyFor: string | null = "blue") {
  const raw = MultiNetworkPolicy.parse({
    metadata: { name: "p", namespace: "x", ...(policyFor !== null && { annotations: { "k8s.v1.cni.cncf.io/policy-for": policyFor } }) },
    spec,
  });
  return readPolicy(raw, { nads });
}

describe("policy-for", () => {
  it.each([
    ["blue", ["x/blue"]],
    [" blue , nets/red ,", ["x/blue", "nets/red"]],
    ["nets / red", ["nets/red"]],
    ["", []],
  ])("%j names %j", (value, expected) => {
    expect(parsePolicyFor(value, "x")).toEqual(expected);
  });

  it("keeps only NADs that exist and reports the others", () => {
    const policy = read({ podSelector: {} }, "blue, green, nets/red");
    expect(policy.networks).toEqual(["x/blue", "nets/red"]);
    expect(policy.problems).toEqual([expect.objectContaining({ code: "policy.nad-missing", message: expect.stringContaining("x/green") })]);
    expect(read({ podSelector: {} }, null).networks).toEqual([]);
  });
});

describe("policyTypes as the API server defaults them", () => {
  it.each<[string, Record<string, unknown>, [boolean, boolean]]>([
    ["omitted, no egress: Ingress", { ingress: [{}] }, [true, false]],
    ["omitted, empty egress list: Ingress", { egress: [] }, [true, false]],
    ["omitted, non-empty egress: Ingress and Egress", { egress: [{}] }, [true, true]],
    ["Egress only: ingress rules ignored", { policyTypes: ["Egress"], ingress: [{}] }, [false, true]],
    ["both, no rules: deny all", { policyTypes: ["Ingress", "Egress"] }, [true, true]],
  ])("%s", (_, spec, [ingress, egress]) => {
    const policy = read({ podSelector: {}, ...spec });
    expect([policy.ingress !== undefined, policy.egress !== undefined]).toEqual([ingress, egress]);
  });

  it("reads ports: protocol defaults to TCP, endPort is inclusive, named ports stay names", () => {
    const policy = read({ podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 90 }, { protocol: "SCTP" }, { port: "web", protocol: "UDP" }] }] });
    expect(policy.ingress![0]!.ports).toEqual([
      { kind: "range", protocol: "TCP", from: 80, to: 90 },
      { kind: "range", protocol: "SCTP", from: 0, to: 65535 },
      { kind: "named", protocol: "UDP", name: "web" },
    ]);
  });
});
