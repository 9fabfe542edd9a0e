import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkCniConfig } from "./cni-config.js";

const json = (value: unknown): string => JSON.stringify(value);

describe("checkCniConfig", () => {
  it.each([
    ["undefined", undefined, "empty", []],
    ["blank", "  \n", "empty", []],
    ["a single config", json({ cniVersion: "1.0.0", type: "macvlan" }), "single", ["macvlan"]],
    ["a conflist", json({ cniVersion: "1.0.0", plugins: [{ type: "bridge" }, { type: "tuning" }, { type: "bandwidth" }] }), "list", ["bridge", "tuning", "bandwidth"]],
    ["a config with plugins: null (absent, as in Go)", json({ cniVersion: "1.0.0", type: "bridge", plugins: null }), "single", ["bridge"]],
  ] as const)("reads %s", (_label, config, form, types) => {
    const check = checkCniConfig(config);
    expect(check.problems).toEqual([]);
    expect(check.form).toBe(form);
    expect(check.types).toEqual(types);
  });

  it("names problems under the path it is given", () => {
    const check = checkCniConfig(json({ cniVersion: "1.0.0", type: "vlan", master: "eth1" }), { path: "config" });
    expect(check.problems).toEqual([{ code: "cni.missing", path: "config.vlanId", message: "is missing; give the VLAN ID (0-4094)" }]);
  });

  it("gives each problem a stable code", () => {
    const check = checkCniConfig(json({ cniVersion: "9", plugins: [{ type: "macvlan", mode: "x" }, {}] }));
    expect(check.problems.map((p) => [p.code, p.path])).toEqual([
      ["cni.bad-version", "spec.config.cniVersion"],
      ["cni.bad-value", "spec.config.plugins[0].mode"],
      ["cni.missing-type", "spec.config.plugins[1].type"],
    ]);
  });

  it("reports the ranges each IPAM section hands out, as the plugins default them", () => {
    const config = json({
      cniVersion: "1.0.0",
      plugins: [
        {
          type: "macvlan",
          ipam: {
            type: "host-local",
            ranges: [[{ subnet: "198.18.1.0/24" }], [{ subnet: "fd00:1::/120", rangeStart: "fd00:1::10" }]],
            routes: [{ dst: "0.0.0.0/0" }],
          },
        },
        { type: "bridge", ipam: { type: "whereabouts", range: "198.18.2.225/28", exclude: ["198.18.2.229/32"] } },
      ],
    });
    const check = checkCniConfig(config);
    expect(check.problems).toEqual([]);
    expect(check.ipams.map((ipam) => [ipam.path, ipam.type, ipam.routed, ipam.ranges.map((r) => `${r.text} in ${r.subnet}`)])).toEqual([
      // host-local skips the network address, and the broadcast address in IPv4.
      ["spec.config.plugins[0].ipam", "host-local", true, ["198.18.1.0/24 in 198.18.1.0/24", "fd00:1::10-fd00:1::ff in fd00:1::/120"]],
      // whereabouts ignores the host bits of range.
      ["spec.config.plugins[1].ipam", "whereabouts", false, ["198.18.2.224/28 in 198.18.2.224/28"]],
    ]);
    const [hostLocal] = check.ipams;
    expect(hostLocal!.ranges[0]!.start).toBe(0xc6120101n);
    expect(hostLocal!.ranges[0]!.end).toBe(0xc61201fen);
  });

  it("warns only once for a single config's missing cniVersion, and never for an empty config", () => {
    expect(checkCniConfig(json({ type: "bridge" })).warnings).toEqual([`spec.config: no cniVersion, so plugins read it as CNI 0.1.0; set one, e.g. "1.0.0"`]);
    expect(checkCniConfig("").warnings).toEqual([]);
  });

  it("does not warn about routes when a later plugin adds them (route-override)", () => {
    const config = json({
      cniVersion: "1.0.0",
      plugins: [{ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.3.0/24" } }, { type: "route-override", addroutes: [{ dst: "0.0.0.0/0", gw: "198.18.3.1" }] }],
    });
    expect(checkCniConfig(config).warnings).toEqual([]);
  });

  it("never throws, and every problem is under spec.config, for any JSON", () => {
    const plugin = fc.record(
      {
        type: fc.constantFrom("macvlan", "ipvlan", "bridge", "sriov", "host-device", "vlan", "tuning", "bandwidth", "other"),
        ipam: fc.oneof(
          fc.jsonValue(),
          fc.record({ type: fc.constantFrom("host-local", "static", "whereabouts", "dhcp"), ranges: fc.jsonValue(), range: fc.jsonValue(), addresses: fc.jsonValue(), routes: fc.jsonValue(), subnet: fc.jsonValue(), ipRanges: fc.jsonValue(), exclude: fc.jsonValue() }, { requiredKeys: ["type"] }),
        ),
        mode: fc.jsonValue(),
        vlan: fc.jsonValue(),
        sysctl: fc.jsonValue(),
        ingressRate: fc.jsonValue(),
      },
      { requiredKeys: [] },
    );
    const config = fc.oneof(fc.jsonValue(), plugin, fc.record({ cniVersion: fc.jsonValue(), plugins: fc.oneof(fc.jsonValue(), fc.array(plugin)) }));
    fc.assert(
      fc.property(config, (value) => {
        const check = checkCniConfig(JSON.stringify(value));
        for (const problem of check.problems) expect(problem.path.startsWith("spec.config")).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
