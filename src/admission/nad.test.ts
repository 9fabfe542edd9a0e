import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import type { AdmissionRequest } from "../api/admission-review.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { createRequest, envOf, snapshotFrom } from "../../test/support/cluster.js";
import type { AdmissionEnv, Decision } from "./decision.js";
import { admitNad } from "./nad.js";

const EMPTY = envOf(snapshotFrom());
const NS = "tenant-a";

interface NadInput {
  name?: string;
  namespace?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

/** A NAD manifest; `config` is a string as written or an object to stringify. */
function nad(config: unknown, input: NadInput = {}): Record<string, unknown> {
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: {
      name: input.name ?? "net",
      namespace: input.namespace ?? NS,
      ...(input.annotations && { annotations: input.annotations }),
      ...(input.labels && { labels: input.labels }),
    },
    ...(config !== undefined && { spec: { config: typeof config === "string" ? config : JSON.stringify(config) } }),
  };
}

const single = (fields: Record<string, unknown>): Record<string, unknown> => ({ cniVersion: "1.0.0", name: "net", ...fields });
const list = (...plugins: unknown[]): Record<string, unknown> => ({ cniVersion: "1.0.0", name: "net", plugins });

function create(object: Record<string, unknown>, env: AdmissionEnv = EMPTY): Decision {
  return admitNad(createRequest(object), env, "validate");
}

function update(old: Record<string, unknown>, object: Record<string, unknown>, env: AdmissionEnv = EMPTY): Decision {
  const request: AdmissionRequest = { ...createRequest(object), operation: "UPDATE", oldObject: old };
  return admitNad(request, env, "validate");
}

function remove(old: Record<string, unknown>, env: AdmissionEnv): Decision {
  const { object: _object, ...base } = createRequest(old);
  return admitNad({ ...base, operation: "DELETE", oldObject: old }, env, "validate");
}

const who = (name = "net") => `NetworkAttachmentDefinition ${NS}/${name}: `;
const jsonError = (text: string): string => {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("valid JSON");
};

// Each case: the NAD, then the exact denial message after `NetworkAttachmentDefinition tenant-a/net: `.
const REJECTIONS: Array<[string, Record<string, unknown>, string]> = [
  // the object
  ["name with upper case and '_'", nad(single({ type: "macvlan" }), { name: "Bad_Name" }), `metadata.name: "Bad_Name" is not a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit), so no pod could select it`],
  ["name with a dot (a subdomain, not a label)", nad(single({ type: "macvlan" }), { name: "net.v1" }), `metadata.name: "net.v1" is not a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit), so no pod could select it`],
  ["name of 64 characters", nad(single({ type: "macvlan" }), { name: "a".repeat(64) }), `metadata.name: "${"a".repeat(64)}" is not a DNS-1123 label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit), so no pod could select it`],
  // the envelope
  ["config not JSON", nad("{"), `spec.config: is not valid JSON: ${jsonError("{")}`],
  ["config a JSON array", nad("[]"), "spec.config: must be a JSON object (a CNI config or a conflist), not an array"],
  ["config a JSON string", nad('"macvlan"'), `spec.config: must be a JSON object (a CNI config or a conflist), not "macvlan"`],
  ["plugins an object", nad({ cniVersion: "1.0.0", plugins: {} }), `spec.config.plugins: must be a non-empty array of plugin objects (each with a "type"), not an object`],
  ["plugins empty", nad({ cniVersion: "1.0.0", plugins: [] }), `spec.config.plugins: must be a non-empty array of plugin objects (each with a "type"), not an empty array`],
  ["plugin not an object", nad(list("macvlan")), `spec.config.plugins[0]: must be a plugin object with a "type", not "macvlan"`],
  ["plugin without type", nad(list({ type: "macvlan" }, { sysctl: {} })), `spec.config.plugins[1].type: is missing; name the CNI plugin, e.g. "macvlan"`],
  ["single config without type", nad(single({ master: "eth1" })), `spec.config.type: is missing; name the CNI plugin, e.g. "macvlan"`],
  ["type not a string", nad(single({ type: 42 })), "spec.config.type: must be a string, not 42"],
  ["type a path", nad(single({ type: "../bin/macvlan" })), `spec.config.type: "../bin/macvlan" is a path; type is the file name of a plugin binary in the CNI bin directory`],
  ["unknown cniVersion", nad(single({ type: "macvlan", cniVersion: "1.2.0" })), `spec.config.cniVersion: "1.2.0" is not a CNI spec version; use 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0`],
  ["cniVersion a number", nad(single({ type: "macvlan", cniVersion: 1 })), "spec.config.cniVersion: 1 is not a CNI spec version; use 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0"],
  ["network name with a space", nad(single({ type: "macvlan", name: "my net" })), `spec.config.name: "my net" is not a CNI network name (letters, digits, '_', '.' and '-', starting with a letter or digit)`],
  ["ipam not an object", nad(single({ type: "macvlan", ipam: "whereabouts" })), `spec.config.ipam: must be an object with a "type", not "whereabouts"`],
  // macvlan, ipvlan
  ["macvlan mode", nad(single({ type: "macvlan", mode: "bridged" })), `spec.config.mode: "bridged" is not a macvlan mode; use bridge, private, vepa or passthru`],
  ["macvlan master too long", nad(single({ type: "macvlan", master: "enp175s0f1np1v1" + "x" })), `spec.config.master: "enp175s0f1np1v1x" is not a Linux interface name: it is 16 characters long; Linux allows at most 15`],
  ["macvlan master not a string", nad(single({ type: "macvlan", master: ["eth1"] })), "spec.config.master: must be a string, not an array"],
  ["macvlan mtu a string", nad(single({ type: "macvlan", mtu: "1500" })), `spec.config.mtu: must be an integer from 0 to 65535, not "1500"`],
  ["ipvlan mode", nad(single({ type: "ipvlan", mode: "l4" })), `spec.config.mode: "l4" is not an ipvlan mode; use l2, l3 or l3s`],
  ["ipvlan flag", nad(single({ type: "ipvlan", mode: "l2", flag: "loose" })), `spec.config.flag: "loose" is not an ipvlan flag; use bridge, private or vepa`],
  // bridge
  ["bridge name too long", nad(single({ type: "bridge", bridge: "br-tenant-a-long" })), `spec.config.bridge: "br-tenant-a-long" is not a Linux interface name: it is 16 characters long; Linux allows at most 15`],
  ["bridge isGateway a string", nad(single({ type: "bridge", isGateway: "true" })), `spec.config.isGateway: must be true or false, not "true"`],
  ["bridge hairpinMode a number", nad(single({ type: "bridge", hairpinMode: 1 })), "spec.config.hairpinMode: must be true or false, not 1"],
  ["bridge vlan 4095", nad(single({ type: "bridge", vlan: 4095 })), "spec.config.vlan: must be an integer from 0 to 4094, not 4095"],
  ["bridge trunk minID above maxID", nad(single({ type: "bridge", vlanTrunk: [{ minID: 300, maxID: 200 }] })), "spec.config.vlanTrunk[0].maxID: 200 is less than minID 300"],
  // sriov
  ["sriov vlan 4095", nad(single({ type: "sriov", vlan: 4095 })), "spec.config.vlan: must be an integer from 0 to 4094, not 4095"],
  ["sriov vlanQoS 8", nad(single({ type: "sriov", vlan: 100, vlanQoS: 8 })), "spec.config.vlanQoS: must be an integer from 0 to 7, not 8"],
  ["sriov vlanQoS without vlan", nad(single({ type: "sriov", vlanQoS: 3 })), `spec.config: vlanQoS and vlanProto need "vlan" to be set`],
  ["sriov vlanQoS with vlan 0", nad(single({ type: "sriov", vlan: 0, vlanQoS: 3 })), `spec.config.vlanQoS: 3 needs a non-zero "vlan"`],
  ["sriov vlanProto", nad(single({ type: "sriov", vlan: 100, vlanProto: "qinq" })), `spec.config.vlanProto: "qinq" is not a VLAN protocol; use 802.1q or 802.1ad`],
  ["sriov spoofchk boolean", nad(single({ type: "sriov", spoofchk: true })), "spec.config.spoofchk: true is not a spoofchk value; use on or off"],
  ["sriov trust yes", nad(single({ type: "sriov", trust: "yes" })), `spec.config.trust: "yes" is not a trust value; use on or off`],
  ["sriov link_state", nad(single({ type: "sriov", link_state: "up" })), `spec.config.link_state: "up" is not a link state; use auto, enable or disable`],
  ["sriov deviceID short", nad(single({ type: "sriov", deviceID: "af:06.0" })), `spec.config.deviceID: "af:06.0" is not a PCI address (domain:bus:device.function, e.g. "0000:af:06.0")`],
  ["sriov min above max rate", nad(single({ type: "sriov", min_tx_rate: 100, max_tx_rate: 50 })), "spec.config.min_tx_rate: 100 Mbps is above max_tx_rate 50 Mbps"],
  ["sriov negative rate", nad(single({ type: "sriov", max_tx_rate: -1 })), "spec.config.max_tx_rate: must be an integer of at least 0, not -1"],
  // host-device
  ["host-device without device", nad(single({ type: "host-device" })), "spec.config: host-device needs one of device, hwaddr, kernelpath or pciBusID (or a k8s.v1.cni.cncf.io/resourceName annotation, whose device plugin supplies it)"],
  ["host-device with two devices", nad(single({ type: "host-device", device: "eth3", pciBusID: "0000:3b:00.1" })), `spec.config: sets "device" and "pciBusID"; host-device uses exactly one of device, hwaddr, kernelpath, pciBusID`],
  ["host-device hwaddr", nad(single({ type: "host-device", hwaddr: "zz:00:00:00:00:01" })), `spec.config.hwaddr: "zz:00:00:00:00:01" is not a MAC address (e.g. "02:00:00:00:00:01")`],
  ["host-device kernelpath", nad(single({ type: "host-device", kernelpath: "/proc/net/dev" })), `spec.config.kernelpath: "/proc/net/dev" must be an absolute path under /sys/devices/`],
  // vlan
  ["vlan without vlanId", nad(single({ type: "vlan", master: "eth1" })), "spec.config.vlanId: is missing; give the VLAN ID (0-4094)"],
  ["vlan vlanId 5000", nad(single({ type: "vlan", master: "eth1", vlanId: 5000 })), "spec.config.vlanId: must be an integer from 0 to 4094, not 5000"],
  ["vlan without master", nad(single({ type: "vlan", vlanId: 10 })), "spec.config.master: is missing; the vlan plugin needs the host interface to create the VLAN on"],
  // tuning, bandwidth (in conflists)
  ["tuning sysctl outside net", nad(list({ type: "macvlan" }, { type: "tuning", sysctl: { "kernel.pid_max": "65536" } })), `spec.config.plugins[1].sysctl["kernel.pid_max"]: is not a net.* sysctl; tuning sets only network sysctls`],
  ["tuning sysctl value a number", nad(list({ type: "macvlan" }, { type: "tuning", sysctl: { "net.ipv4.ip_forward": 1 } })), `spec.config.plugins[1].sysctl["net.ipv4.ip_forward"]: must be a string, not 1`],
  ["tuning mac of five bytes", nad(list({ type: "macvlan" }, { type: "tuning", mac: "02:00:00:00:01" })), `spec.config.plugins[1].mac: "02:00:00:00:01" is not a MAC address (e.g. "02:00:00:00:00:01")`],
  ["bandwidth rate without burst", nad(list({ type: "macvlan" }, { type: "bandwidth", ingressRate: 1000 })), "spec.config.plugins[1].ingressRate: is set but ingressBurst is not; bandwidth needs both"],
  ["bandwidth burst without rate", nad(list({ type: "macvlan" }, { type: "bandwidth", egressBurst: 1000 })), "spec.config.plugins[1].egressBurst: is set but egressRate is not; bandwidth needs both"],
  ["bandwidth negative rate", nad(list({ type: "macvlan" }, { type: "bandwidth", ingressRate: -5 })), "spec.config.plugins[1].ingressRate: must be an integer of at least 0, not -5"],
  // host-local
  ["host-local rangeStart outside the subnet", nad(list({ type: "bridge", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/24", rangeStart: "198.18.1.5" }]] } })), "spec.config.plugins[0].ipam.ranges[0][0].rangeStart: 198.18.1.5 is outside subnet 198.18.0.0/24"],
  ["host-local subnet not a CIDR", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/33" }]] } })), `spec.config.ipam.ranges[0][0].subnet: "198.18.0.0/33" is not a CIDR (address/prefix, e.g. "198.18.0.0/24")`],
  ["host-local subnet missing", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: [[{ gateway: "198.18.0.1" }]] } })), `spec.config.ipam.ranges[0][0].subnet: is missing; give the range's CIDR, e.g. "198.18.0.0/24"`],
  ["host-local rangeStart after rangeEnd", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/24", rangeStart: "198.18.0.50", rangeEnd: "198.18.0.10" }]] } })), "spec.config.ipam.ranges[0][0].rangeEnd: 198.18.0.10 is before rangeStart 198.18.0.50"],
  ["host-local gateway outside the subnet", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.0.0/24", gateway: "198.18.1.1" } })), "spec.config.ipam.gateway: 198.18.1.1 is outside subnet 198.18.0.0/24"],
  ["host-local gateway of the other family", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.0.0/24", gateway: "fd00::1" } })), "spec.config.ipam.gateway: fd00::1 is IPv6 but subnet 198.18.0.0/24 is IPv4"],
  ["host-local /31", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.0.0/31" } })), "spec.config.ipam.subnet: 198.18.0.0/31 is too small to allocate from; host-local needs a prefix of at most /30"],
  ["host-local mixed families in a set", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/24" }, { subnet: "fd00::/64" }]] } })), "spec.config.ipam.ranges[0][1].subnet: fd00::/64 is IPv6 but this range set is IPv4; put each family in its own range set"],
  ["host-local overlap in a set", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/24" }, { subnet: "198.18.0.128/25" }]] } })), "spec.config.ipam.ranges[0][1]: 198.18.0.128/25 overlaps 198.18.0.0/24 in the same range set"],
  ["host-local overlapping range sets", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: [[{ subnet: "198.18.0.0/24" }], [{ subnet: "198.18.0.0/25" }]] } })), "spec.config.ipam.ranges[1]: overlaps spec.config.ipam.ranges[0]; host-local refuses overlapping range sets"],
  ["host-local ranges an object", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: {} } })), `spec.config.ipam.ranges: must be an array of range sets (arrays of {"subnet": CIDR}), not an object`],
  ["host-local empty range set", nad(single({ type: "bridge", ipam: { type: "host-local", ranges: [[]] } })), `spec.config.ipam.ranges[0]: must be a non-empty array of ranges ({"subnet": CIDR}), not an empty array`],
  ["host-local without ranges", nad(single({ type: "bridge", ipam: { type: "host-local" } })), `spec.config.ipam: host-local needs "ranges" (e.g. [[{"subnet": "198.18.0.0/24"}]]) or "subnet"`],
  ["route dst not a CIDR", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.0.0/24", routes: [{ dst: "default" }] } })), `spec.config.ipam.routes[0].dst: "default" is not a CIDR (address/prefix, e.g. "0.0.0.0/0")`],
  ["route without dst", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.0.0/24", routes: [{ gw: "198.18.0.1" }] } })), `spec.config.ipam.routes[0].dst: is missing; give the destination CIDR, e.g. "0.0.0.0/0"`],
  ["route gw of the other family", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.0.0/24", routes: [{ dst: "::/0", gw: "198.18.0.1" }] } })), "spec.config.ipam.routes[0].gw: 198.18.0.1 is IPv4 but dst ::/0 is IPv6"],
  // static
  ["static address without prefix", nad(single({ type: "ipvlan", ipam: { type: "static", addresses: [{ address: "198.18.40.10" }] } })), `spec.config.ipam.addresses[0].address: "198.18.40.10" is not a CIDR (address/prefix, e.g. "198.18.40.10/24")`],
  ["static gateway not an IP", nad(single({ type: "ipvlan", ipam: { type: "static", addresses: [{ address: "198.18.40.10/24", gateway: "router" }] } })), `spec.config.ipam.addresses[0].gateway: "router" is not an IP address`],
  ["static gateway of the other family", nad(single({ type: "ipvlan", ipam: { type: "static", addresses: [{ address: "fd00::10/64", gateway: "198.18.40.1" }] } })), "spec.config.ipam.addresses[0].gateway: 198.18.40.1 is IPv4 but address fd00::10/64 is IPv6"],
  // whereabouts
  ["whereabouts range without prefix", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.0.0" } })), `spec.config.ipam.range: "198.18.0.0" is not a CIDR or a first-last/prefix range (e.g. "198.18.0.0/24" or "198.18.0.10-198.18.0.50/24")`],
  ["whereabouts range_start outside", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.0.0/24", range_start: "198.18.5.1" } })), "spec.config.ipam.range_start: 198.18.5.1 is outside range 198.18.0.0/24"],
  ["whereabouts range_end before range_start", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.0.0/24", range_start: "198.18.0.100", range_end: "198.18.0.20" } })), "spec.config.ipam.range_end: 198.18.0.20 is before range_start 198.18.0.100"],
  ["whereabouts exclude outside the range", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.30.0/24", exclude: ["198.18.31.0/28"] } })), "spec.config.ipam.exclude[0]: 198.18.31.0/28 is not inside range 198.18.30.0/24"],
  ["whereabouts exclude not a CIDR", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.30.0/24", exclude: ["198.18.30.5"] } })), `spec.config.ipam.exclude[0]: "198.18.30.5" is not a CIDR (address/prefix, e.g. "198.18.0.0/28")`],
  ["whereabouts first address outside", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.1.5-198.18.0.50/24" } })), "spec.config.ipam.range: first address 198.18.1.5 is outside 198.18.0.0/24"],
  ["whereabouts first after last", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.0.90-198.18.0.50/24" } })), "spec.config.ipam.range: first address 198.18.0.90 comes after last address 198.18.0.50"],
  ["whereabouts without range", nad(single({ type: "macvlan", ipam: { type: "whereabouts", gateway: "198.18.0.1" } })), `spec.config.ipam: whereabouts needs "range" (e.g. "198.18.0.0/24") or "ipRanges"`],
  ["whereabouts ipRanges entry", nad(single({ type: "macvlan", ipam: { type: "whereabouts", ipRanges: [{ range: "198.18.0.0/24" }, { range: "fd00::/129" }] } })), `spec.config.ipam.ipRanges[1].range: "fd00::/129" is not a CIDR or a first-last/prefix range (e.g. "198.18.0.0/24" or "198.18.0.10-198.18.0.50/24")`],
  // annotations
  ["resourceName without domain", nad(single({ type: "sriov" }), { annotations: { "k8s.v1.cni.cncf.io/resourceName": "sriov_netdevice" } }), `metadata.annotations["k8s.v1.cni.cncf.io/resourceName"]: "sriov_netdevice" is not a qualified resource name; use domain/name, e.g. intel.com/sriov_netdevice`],
  ["resourceName in kubernetes.io", nad(single({ type: "sriov" }), { annotations: { "k8s.v1.cni.cncf.io/resourceName": "kubernetes.io/sriov" } }), `metadata.annotations["k8s.v1.cni.cncf.io/resourceName"]: "kubernetes.io/sriov" is in the reserved kubernetes.io domain; device-plugin resources need their own domain, e.g. intel.com/sriov_netdevice`],
  ["nodeSelector without key", nad(single({ type: "sriov" }), { annotations: { "k8s.v1.cni.cncf.io/nodeSelector": "=true" } }), `metadata.annotations["k8s.v1.cni.cncf.io/nodeSelector"]: "=true" has no label key; write key=value pairs separated by commas`],
  ["nodeSelector bad key", nad(single({ type: "sriov" }), { annotations: { "k8s.v1.cni.cncf.io/nodeSelector": "sriov capable=true" } }), `metadata.annotations["k8s.v1.cni.cncf.io/nodeSelector"]: "sriov capable" is not a label key (optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.')`],
  ["nodeSelector bad value", nad(single({ type: "sriov" }), { annotations: { "k8s.v1.cni.cncf.io/nodeSelector": "zone=eu west" } }), `metadata.annotations["k8s.v1.cni.cncf.io/nodeSelector"]: "eu west" (for zone) is not a label value (at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends)`],
];

describe("admitNad: rejections", () => {
  it.each(REJECTIONS)("%s", (_label, object, message) => {
    const decision = create(object);
    const name = (object.metadata as { name: string }).name;
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toBe("invalid-nad");
    expect(decision.message).toBe(`${who(name)}${message}`);
  });

  it("lists several problems one per line, each with its path", () => {
    const decision = create(nad(single({ type: "macvlan", mode: "bridged", mtu: -1, ipam: { type: "whereabouts", range: "198.18.0.0/24", range_start: "10.0.0.1" } })));
    expect(decision.message).toBe(
      `${who()}3 problems:` +
        `\n- spec.config.mode: "bridged" is not a macvlan mode; use bridge, private, vepa or passthru` +
        "\n- spec.config.mtu: must be an integer from 0 to 65535, not -1" +
        "\n- spec.config.ipam.range_start: 10.0.0.1 is outside range 198.18.0.0/24",
    );
  });

  it("rejects a spec.config that is not a string, naming the field", () => {
    const object = { ...nad(undefined), spec: { config: { type: "macvlan" } } };
    const decision = create(object);
    expect(decision.reason).toBe("invalid-nad");
    expect(decision.message).toBe(`${who()}spec.config: Invalid input: expected string, received object`);
  });
});

describe("admitNad: what is allowed", () => {
  it.each([
    ["an empty config (the node's file of that name, multi-net spec 3.2.4)", nad("")],
    ["no spec at all", nad(undefined)],
    ["a conflist without name (Multus names it after the NAD)", nad({ cniVersion: "1.0.0", plugins: [{ type: "bridge" }] })],
    ["a plugin type nadguard does not know, with any fields", nad(single({ type: "ovn-k8s-cni-overlay", mode: 7, vlan: "x" }))],
    ["an IPAM type nadguard does not know", nad(single({ type: "bridge", ipam: { type: "calico-ipam", ranges: "whatever" } }))],
    ["null fields, read as absent like Go does", nad(single({ type: "macvlan", mode: null, master: null, ipam: null }))],
    ["a name of 63 characters", nad(single({ type: "bridge" }), { name: "a".repeat(63) })],
    ["host-device without device when a device plugin supplies it", nad(single({ type: "host-device" }), { annotations: { "k8s.v1.cni.cncf.io/resourceName": "example.com/nic" } })],
    ["sriov min_tx_rate with max_tx_rate 0 (no cap)", nad(single({ type: "sriov", min_tx_rate: 100, max_tx_rate: 0 }))],
    ["an empty resourceName (read as none)", nad(single({ type: "sriov" }), { annotations: { "k8s.v1.cni.cncf.io/resourceName": " " } })],
  ])("%s", (_label, object) => {
    const decision = create(object);
    expect(decision.message).toBeUndefined();
    expect(decision.allowed).toBe(true);
  });

  it("answers the same on both endpoints", () => {
    const object = nad(single({ type: "macvlan", mode: "x" }));
    expect(admitNad(createRequest(object), EMPTY, "mutate")).toEqual(admitNad(createRequest(object), EMPTY, "validate"));
  });
});

const OTHERS = snapshotFrom(`
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: lan-host-local, namespace: tenant-a }
spec: { config: '{"cniVersion":"1.0.0","type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.10.0/24","rangeStart":"198.18.10.10","rangeEnd":"198.18.10.99"}]]}}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: data-whereabouts, namespace: tenant-a }
spec: { config: '{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"whereabouts","range":"198.18.20.0/24","gateway":"198.18.20.1"}}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: elsewhere, namespace: tenant-b }
spec: { config: '{"cniVersion":"1.0.0","type":"bridge","ipam":{"type":"whereabouts","range":"198.18.30.0/24","enable_overlapping_ranges":false}}' }
`);

// Each case: the NAD, its config, then the exact warnings.
const WARNINGS: Array<[string, Record<string, unknown>, string[]]> = [
  ["host-local on a NAD", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.50.0/24" } })), ["spec.config.ipam: host-local is per node, so pods on two nodes can get the same IP; use whereabouts"]],
  [
    "a range overlapping another NAD's in the namespace",
    nad(single({ type: "bridge", ipam: { type: "static", addresses: [{ address: "198.18.10.50/24" }] } })),
    ["IPAM range 198.18.10.50 overlaps NAD lan-host-local (198.18.10.10-198.18.10.99)"],
  ],
  [
    "whereabouts overlapping whereabouts without its overlap protection",
    nad(single({ type: "bridge", ipam: { type: "whereabouts", range: "198.18.20.128/25", enable_overlapping_ranges: false } })),
    ["IPAM range 198.18.20.128/25 overlaps NAD data-whereabouts (198.18.20.0/24)"],
  ],
  ["whereabouts overlapping whereabouts with overlap protection: nothing", nad(single({ type: "bridge", ipam: { type: "whereabouts", range: "198.18.20.0/24" } })), []],
  ["the same subnet, disjoint host-local ranges: nothing but host-local", nad(single({ type: "bridge", ipam: { type: "host-local", subnet: "198.18.10.0/24", rangeStart: "198.18.10.100" } })), ["spec.config.ipam: host-local is per node, so pods on two nodes can get the same IP; use whereabouts"]],
  ["another namespace's range: nothing", nad(single({ type: "bridge", ipam: { type: "whereabouts", range: "198.18.30.0/24", enable_overlapping_ranges: false } })), []],
  ["macvlan without gateway or routes", nad(single({ type: "macvlan", master: "eth1", ipam: { type: "whereabouts", range: "198.18.60.0/24" } })), ["no gateway or routes: pods reach only 198.18.60.0/24 on this network"]],
  [
    "ipvlan dual-stack static without gateway or routes",
    nad(single({ type: "ipvlan", ipam: { type: "static", addresses: [{ address: "198.18.61.5/24" }, { address: "fd00:61::5/64" }] } })),
    ["no gateway or routes: pods reach only 198.18.61.0/24, fd00:61::/64 on this network"],
  ],
  ["macvlan with a gateway: nothing", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.62.0/24", gateway: "198.18.62.1" } })), []],
  ["macvlan with routes: nothing", nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.63.0/24", routes: [{ dst: "198.18.0.0/15" }] } })), []],
  ["macvlan with dhcp: nothing", nad(single({ type: "macvlan", ipam: { type: "dhcp" } })), []],
  ["bridge without gateway: nothing (only macvlan and ipvlan)", nad(single({ type: "bridge", ipam: { type: "whereabouts", range: "198.18.64.0/24" } })), []],
  [
    "a delegate with its own cniVersion",
    nad(list({ type: "bridge" }, { type: "tuning", cniVersion: "0.3.1" })),
    ["spec.config.plugins[1].cniVersion: 0.3.1 differs from the list's 1.0.0; the runtime uses 1.0.0"],
  ],
  ["no cniVersion", nad({ type: "bridge" }), [`spec.config: no cniVersion, so plugins read it as CNI 0.1.0; set one, e.g. "1.0.0"`]],
  [
    "whereabouts exclude without range",
    nad(single({ type: "bridge", ipam: { type: "whereabouts", ipRanges: [{ range: "198.18.65.0/24" }], exclude: ["198.18.65.0/28"] } })),
    [`spec.config.ipam.exclude: applies only to "range", which is not set; put exclude in each ipRanges entry`],
  ],
];

describe("admitNad: warnings", () => {
  const env = envOf(OTHERS);
  it.each(WARNINGS)("%s", (_label, object, warnings) => {
    const decision = create(object, env);
    expect(decision.allowed).toBe(true);
    expect(decision.warnings).toEqual(warnings);
  });

  it("keeps every warning under 120 characters, the longest one cut at the end", () => {
    const long = "n".repeat(63);
    const others = envOf(
      snapshotFrom(`
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: ${long}, namespace: tenant-a }
spec: { config: '{"cniVersion":"1.0.0","type":"bridge","ipam":{"type":"static","addresses":[{"address":"fd00:1234:5678:9abc::10/64"}]}}' }
`),
    );
    const object = nad(single({ type: "bridge", ipam: { type: "whereabouts", range: "fd00:1234:5678:9abc::1-fd00:1234:5678:9abc::ffff/64", enable_overlapping_ranges: false } }));
    const [warning] = create(object, others).warnings;
    const full = `IPAM range fd00:1234:5678:9abc::1-fd00:1234:5678:9abc::ffff overlaps NAD ${long} (fd00:1234:5678:9abc::10)`;
    expect(warning).toBe(`${full.slice(0, 118)}…`);
    expect(warning!.length).toBe(119);
  });

  it("returns the warnings of a denied NAD too", () => {
    const decision = create(nad({ type: "macvlan", mode: "x" }));
    expect(decision.allowed).toBe(false);
    expect(decision.warnings).toEqual([`spec.config: no cniVersion, so plugins read it as CNI 0.1.0; set one, e.g. "1.0.0"`]);
  });
});

describe("admitNad: updates judge only what changes", () => {
  const invalid = nad(single({ type: "macvlan", mode: "bridged" }), { labels: { team: "a" } });

  it("allows a label change on a NAD whose config predates the rules", () => {
    const relabelled = nad(single({ type: "macvlan", mode: "bridged" }), { labels: { team: "b" } });
    expect(update(invalid, relabelled).allowed).toBe(true);
  });

  it("denies a config change that is invalid", () => {
    const decision = update(nad(single({ type: "macvlan" })), invalid);
    expect(decision.message).toBe(`${who()}spec.config.mode: "bridged" is not a macvlan mode; use bridge, private, vepa or passthru`);
  });

  it("denies an annotation that changes to something invalid, and not one that stays", () => {
    const bad = { "k8s.v1.cni.cncf.io/nodeSelector": "=x" };
    expect(update(nad(single({ type: "sriov" })), nad(single({ type: "sriov" }), { annotations: bad })).allowed).toBe(false);
    expect(update(nad(single({ type: "sriov" }), { annotations: bad }), nad(single({ type: "sriov" }), { annotations: bad, labels: { a: "b" } })).allowed).toBe(true);
  });

  it("allows the finalizer removal of a NAD being deleted", () => {
    const deleting = nad(single({ type: "macvlan", mode: "bridged" }));
    (deleting.metadata as Record<string, unknown>).deletionTimestamp = "2025-01-01T00:00:00Z";
    expect(update(deleting, deleting).allowed).toBe(true);
  });
});

const USED = `
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: net, namespace: tenant-a }
spec: { config: '{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"whereabouts","range":"198.18.70.0/24","gateway":"198.18.70.1"}}' }
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: tenant-a
  annotations:
    k8s.v1.cni.cncf.io/network-status: '[{"name":"kindnet","interface":"eth0","default":true},{"name":"tenant-a/net","interface":"net1","ips":["198.18.70.5"]}]'
spec: { containers: [{ name: app }] }
---
apiVersion: v1
kind: Pod
metadata:
  name: api
  namespace: tenant-b
  annotations: { k8s.v1.cni.cncf.io/networks: "tenant-a/net@data" }
spec: { containers: [{ name: app }] }
---
apiVersion: v1
kind: Pod
metadata:
  name: done
  namespace: tenant-a
  annotations: { k8s.v1.cni.cncf.io/networks: net }
spec: { containers: [{ name: app }] }
status: { phase: Succeeded }
---
apiVersion: v1
kind: Pod
metadata:
  name: other
  namespace: tenant-b
  annotations: { k8s.v1.cni.cncf.io/networks: net }
spec: { containers: [{ name: app }] }
`;

describe("admitNad: nads.protectInUse", () => {
  const current = nad('{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"whereabouts","range":"198.18.70.0/24","gateway":"198.18.70.1"}}');
  const changed = nad(single({ type: "macvlan", ipam: { type: "whereabouts", range: "198.18.71.0/24", gateway: "198.18.71.1" } }));
  const protecting = envOf(snapshotFrom(USED), { nads: { protectInUse: true } });
  const open = envOf(snapshotFrom(USED));

  it("denies deleting a NAD that running pods use, naming them", () => {
    const decision = remove(current, protecting);
    expect(decision.reason).toBe("nad-in-use");
    expect(decision.message).toBe("NetworkAttachmentDefinition tenant-a/net: cannot be deleted while pods use it (nads.protectInUse): tenant-a/web, tenant-b/api");
  });

  it("denies changing spec.config of a NAD in use", () => {
    const decision = update(current, changed, protecting);
    expect(decision.reason).toBe("nad-in-use");
    expect(decision.message).toBe("NetworkAttachmentDefinition tenant-a/net: spec.config cannot change while pods use it (nads.protectInUse): tenant-a/web, tenant-b/api");
  });

  it("allows an update that leaves spec.config alone or only reformats it", () => {
    const relabelled = nad('{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"whereabouts","range":"198.18.70.0/24","gateway":"198.18.70.1"}}', { labels: { a: "b" } });
    const reformatted = nad(JSON.stringify(JSON.parse((current.spec as { config: string }).config), null, 2));
    expect(update(current, relabelled, protecting).allowed).toBe(true);
    expect(update(current, reformatted, protecting).allowed).toBe(true);
  });

  it("is off by default", () => {
    expect(remove(current, open).allowed).toBe(true);
    expect(update(current, changed, open).allowed).toBe(true);
  });

  it("allows deleting a NAD no running pod uses", () => {
    expect(remove(nad(single({ type: "bridge" }), { name: "idle" }), protecting).allowed).toBe(true);
  });

  it("names at most ten pods, then counts the rest", () => {
    const pods = Array.from({ length: 12 }, (_, i) => `
---
apiVersion: v1
kind: Pod
metadata: { name: p${String(i).padStart(2, "0")}, namespace: tenant-a, annotations: { k8s.v1.cni.cncf.io/networks: net } }
spec: { containers: [{ name: app }] }`).join("");
    const decision = remove(current, envOf(snapshotFrom(pods), { nads: { protectInUse: true } }));
    const named = Array.from({ length: 10 }, (_, i) => `tenant-a/p${String(i).padStart(2, "0")}`).join(", ");
    expect(decision.message).toBe(`NetworkAttachmentDefinition tenant-a/net: cannot be deleted while pods use it (nads.protectInUse): ${named} and 2 more`);
  });
});

const FIXTURES = join(import.meta.dirname, "../../test/fixtures/nads");

describe("the corpus of valid NADs (test/fixtures/nads)", () => {
  const files = readdirSync(FIXTURES).filter((file) => file.endsWith(".yaml"));

  it("covers every plugin and IPAM type that is checked", () => {
    const text = files.map((file) => readFileSync(join(FIXTURES, file), "utf8")).join("\n");
    for (const type of ["macvlan", "ipvlan", "bridge", "sriov", "host-device", "vlan", "tuning", "bandwidth", "whereabouts", "host-local", "static", "dhcp"]) {
      expect(text, type).toMatch(new RegExp(`"type":\\s*"${type}"`));
    }
  });

  it.each(files)("%s is allowed, with short warnings", (file) => {
    const object = parseYaml(readFileSync(join(FIXTURES, file), "utf8")) as Record<string, unknown>;
    const decision = create(object);
    expect(decision.message).toBeUndefined();
    expect(decision.allowed).toBe(true);
    for (const warning of decision.warnings) expect(warning.length).toBeLessThan(120);
  });
});

describe("the examples (examples/cluster)", () => {
  it("allows every NAD, each judged against the others", async () => {
    const dir = join(import.meta.dirname, "../../examples/cluster");
    const snapshot = await loadStateDir(dir);
    const env = envOf(snapshot);
    const nads = readdirSync(dir)
      .filter((file) => file.endsWith(".yaml"))
      .flatMap((file) => parseAllDocuments(readFileSync(join(dir, file), "utf8")).map((doc) => doc.toJS() as Record<string, unknown> | null))
      .filter((object): object is Record<string, unknown> => object?.kind === "NetworkAttachmentDefinition");
    expect(nads.length).toBeGreaterThan(0);
    for (const object of nads) {
      const decision = create(object, env);
      expect(decision.message, JSON.stringify(object.metadata)).toBeUndefined();
      expect(decision.allowed).toBe(true);
    }
  });
});
