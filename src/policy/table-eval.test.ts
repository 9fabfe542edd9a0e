import { describe, expect, it } from "vitest";
import { element, rule } from "../nft/objects.js";
import type { TableState } from "../nft/state.js";
import { evaluatePacket } from "./table-eval.js";

const packet = { hook: "input", ifname: "net1", family: 4, saddr: "198.18.0.13", daddr: "198.18.0.1", l4proto: "tcp", dport: 80 } as const;

function table(interval: boolean, key: string[]): TableState {
  return {
    chains: [{ kind: "chain", name: "ingress", base: { type: "filter", hook: "input", priority: "filter", policy: "accept" } }],
    sets: [
      { kind: "set", name: "allow", type: ["ifname", "ipv4_addr", "inet_proto", "inet_service"], ...(interval && { flags: ["interval"] }) },
      { kind: "set", name: "isolated", type: "ifname" },
    ],
    elements: [element("allow", key), element("isolated", ['"net1"'])],
    rules: [rule("ingress", "iifname . ip saddr . meta l4proto . th dport @allow accept"), rule("ingress", "iifname @isolated drop")],
  };
}

describe("table-eval", () => {
  it("matches hash elements exactly and interval elements by range", () => {
    expect(evaluatePacket(table(false, ['"net1"', "198.18.0.13", "tcp", "80"]), packet)).toBe("accept");
    expect(evaluatePacket(table(false, ['"net1"', "198.18.0.14", "tcp", "80"]), packet)).toBe("drop");
    expect(evaluatePacket(table(true, ['"net1"', "198.18.0.0/24", "tcp", "80-90"]), packet)).toBe("accept");
  });

  it("refuses, like the kernel, a range or prefix in a set without the interval flag", () => {
    expect(() => evaluatePacket(table(false, ['"net1"', "198.18.0.0/24", "tcp", "80"]), packet)).toThrow(/hash set @allow is a range/);
    expect(() => evaluatePacket(table(false, ['"net1"', "198.18.0.13", "tcp", "80-90"]), packet)).toThrow(/hash set @allow is a range/);
  });
});
