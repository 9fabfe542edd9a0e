import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type CniResult, convertResult, parseResult } from "./result.js";

// What Debian's bridge plugin 1.1.1 printed for one attachment when asked in each version (MACs
// and names made equal across the three runs).
const fixture = (version: string): unknown => JSON.parse(readFileSync(new URL(`../../test/fixtures/cni/bridge-${version}.json`, import.meta.url), "utf8"));

function read(json: unknown): CniResult {
  const parsed = parseResult(json, "fixture");
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  return parsed.value;
}

function convert(result: CniResult, version: string): CniResult {
  const converted = convertResult(result, version);
  if (!converted.ok) throw new Error(converted.error.msg);
  return converted.value;
}

describe("result conversion", () => {
  it.each([
    ["1.0.0", "0.4.0"],
    ["1.0.0", "0.3.1"],
    ["0.4.0", "1.0.0"],
    ["0.3.1", "1.0.0"],
    ["0.3.1", "0.4.0"],
  ])("the plugin's %s answer converted to %s is what the plugin answers in %s", (from, to) => {
    const converted = convert(read(fixture(from)), to);
    expect(converted).toEqual(read(fixture(to)));
    // Printed as libcni prints it: 0.x with each IP's version and "dns": {}, 1.x without an empty dns.
    const { dns, ...withoutDns } = fixture(to) as { dns: unknown };
    expect(JSON.parse(JSON.stringify(converted))).toStrictEqual(to === "1.0.0" ? withoutDns : { ...withoutDns, dns });
  });

  it.each(["0.3.0", "0.3.1", "0.4.0", "1.1.0"])("1.0.0 -> %s -> 1.0.0 gives the original back", (via) => {
    const original = read(fixture("1.0.0"));
    expect(convert(convert(original, via), "1.0.0")).toEqual(original);
  });

  it("1.1.0 -> 0.4.0 drops the interface fields 0.4.0 does not have, keeps routes whole, sets IP versions like Go's To4", () => {
    const result = read({
      cniVersion: "1.1.0",
      interfaces: [{ name: "net1", mac: "02:00:00:00:00:01", mtu: 9000, sandbox: "/run/netns/p", socketPath: "/run/vhost.sock", pciID: "0000:00:1f.6" }],
      ips: [
        { interface: 0, address: "198.18.0.2/24", gateway: "198.18.0.1" },
        { interface: 0, address: "::ffff:198.18.0.3/120" },
        { interface: 0, address: "fd00::2/64" },
      ],
      routes: [{ dst: "0.0.0.0/0", gw: "198.18.0.1", mtu: 1400, table: 100 }],
      dns: { nameservers: ["198.18.0.53"], search: ["svc.local"] },
    });
    expect(convert(result, "0.4.0")).toEqual({
      cniVersion: "0.4.0",
      interfaces: [{ name: "net1", mac: "02:00:00:00:00:01", sandbox: "/run/netns/p" }],
      ips: [
        { version: "4", interface: 0, address: "198.18.0.2/24", gateway: "198.18.0.1" },
        { version: "4", interface: 0, address: "::ffff:198.18.0.3/120" },
        { version: "6", interface: 0, address: "fd00::2/64" },
      ],
      routes: [{ dst: "0.0.0.0/0", gw: "198.18.0.1", mtu: 1400, table: 100 }],
      dns: { nameservers: ["198.18.0.53"], search: ["svc.local"] },
    });
  });

  it("a result without cniVersion is read in the version given for it; null reads as absent", () => {
    const parsed = parseResult({ ips: [{ address: "198.18.0.2/24", gateway: null }], routes: null }, "plugin bridge", "0.4.0");
    expect(parsed).toEqual({ ok: true, value: { cniVersion: "0.4.0", ips: [{ version: "4", address: "198.18.0.2/24" }], dns: {} } });
  });

  it("refuses to convert to a version it cannot write, with code 1", () => {
    const converted = convertResult(read(fixture("1.0.0")), "0.2.0");
    expect(converted).toEqual({
      ok: false,
      error: { code: 1, msg: 'cannot convert a 1.0.0 result to version "0.2.0"', details: "nadguard converts results between 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0" },
    });
  });

  it("a bad result is refused with the path of the bad field", () => {
    expect(parseResult({ cniVersion: "1.0.0", ips: [{ address: "198.18.0.2" }] }, "plugin bridge")).toEqual({
      ok: false,
      error: [{ code: "cni.result", path: "plugin bridge.ips[0].address", message: "is not an address with a prefix (e.g. 198.18.0.2/24)" }],
    });
    expect(parseResult({ cniVersion: "0.2.0", ip4: { ip: "198.18.0.2/24" } }, "plugin old")).toEqual({
      ok: false,
      error: [{ code: "cni.result-version", path: "plugin old.cniVersion", message: '"0.2.0" is not a result version nadguard reads (0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)' }],
    });
  });
});
