// Plugin sections of a CNI config, checked against what each plugin accepts when it loads its
// config (containernetworking/plugins loadConf of macvlan, ipvlan, bridge, host-device, vlan,
// tuning, bandwidth; k8snetworkplumbingwg/sriov-cni LoadConf). Only what makes the plugin fail,
// or what it would silently read differently, is a problem; fields a plugin does not know pass.
import { isMac, parseCidr } from "./addresses.js";
import {
  type Findings,
  type JsonObject,
  at,
  either,
  field,
  isObject,
  optArray,
  optBool,
  optEnum,
  optInt,
  optInterface,
  optObject,
  optString,
  report,
  show,
} from "./cni-fields.js";

export interface PluginContext {
  /** The NAD names a device-plugin resource: Multus then passes the device's PCI address as runtimeConfig.deviceID. */
  readonly hasResourceName: boolean;
}

export type PluginCheck = (findings: Findings, plugin: JsonObject, path: string, context: PluginContext) => void;

const MTU = { min: 0, max: 65535 };
/** 802.1Q VLAN IDs; 4095 is reserved and the plugins (bridge, vlan, sriov-cni) refuse it. */
const VLAN_ID = { min: 0, max: 4094 };
/** A PCI address as sysfs names it (domain:bus:device.function), e.g. 0000:af:06.0. */
const PCI_ADDRESS = /^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;

function optMac(findings: Findings, object: JsonObject, key: string, path: string): void {
  const value = optString(findings, object, key, path);
  if (value !== undefined && !isMac(value)) report(findings, "bad-mac", at(path, key), `${show(value)} is not a MAC address (e.g. "02:00:00:00:00:01")`);
}

function optPciAddress(findings: Findings, object: JsonObject, key: string, path: string): void {
  const value = optString(findings, object, key, path);
  if (value !== undefined && !PCI_ADDRESS.test(value)) {
    report(findings, "bad-pci-address", at(path, key), `${show(value)} is not a PCI address (domain:bus:device.function, e.g. "0000:af:06.0")`);
  }
}

const macvlan: PluginCheck = (findings, plugin, path) => {
  optInterface(findings, plugin, "master", path);
  optEnum(findings, plugin, "mode", path, ["bridge", "private", "vepa", "passthru"], "a macvlan mode");
  optInt(findings, plugin, "mtu", path, MTU);
  optBool(findings, plugin, "linkInContainer", path);
};

const ipvlan: PluginCheck = (findings, plugin, path) => {
  optInterface(findings, plugin, "master", path);
  optEnum(findings, plugin, "mode", path, ["l2", "l3", "l3s"], "an ipvlan mode");
  // The kernel's ipvlan flags (ip link ... type ipvlan mode l2 bridge|private|vepa).
  optEnum(findings, plugin, "flag", path, ["bridge", "private", "vepa"], "an ipvlan flag");
  optInt(findings, plugin, "mtu", path, MTU);
  optBool(findings, plugin, "linkInContainer", path);
};

const bridge: PluginCheck = (findings, plugin, path) => {
  optInterface(findings, plugin, "bridge", path);
  for (const key of ["isGateway", "isDefaultGateway", "forceAddress", "ipMasq", "hairpinMode", "promiscMode", "macspoofchk", "enabledad", "disableContainerInterface", "portIsolation", "preserveDefaultVlan"]) {
    optBool(findings, plugin, key, path);
  }
  optInt(findings, plugin, "vlan", path, VLAN_ID);
  optInt(findings, plugin, "mtu", path, MTU);
  const trunk = optArray(findings, plugin, "vlanTrunk", path, "trunk objects ({\"id\": n} or {\"minID\": n, \"maxID\": m})");
  trunk?.forEach((item, i) => {
    const where = at(at(path, "vlanTrunk"), i);
    if (!isObject(item)) {
      report(findings, "wrong-type", where, `must be {"id": n} or {"minID": n, "maxID": m}, not ${show(item)}`);
      return;
    }
    // collectVlanTrunk: trunk IDs are 1-4094 (0 is not a VLAN on a trunk).
    optInt(findings, item, "id", where, { min: 1, max: 4094 });
    const min = optInt(findings, item, "minID", where, { min: 1, max: 4094 });
    const max = optInt(findings, item, "maxID", where, { min: 1, max: 4094 });
    if (min !== undefined && max !== undefined && max < min) report(findings, "start-after-end", at(where, "maxID"), `${max} is less than minID ${min}`);
  });
};

const sriov: PluginCheck = (findings, plugin, path) => {
  optPciAddress(findings, plugin, "deviceID", path);
  checkSriovVlan(findings, plugin, path);
  optEnum(findings, plugin, "spoofchk", path, ["on", "off"], "a spoofchk value");
  optEnum(findings, plugin, "trust", path, ["on", "off"], "a trust value");
  optEnum(findings, plugin, "link_state", path, ["auto", "enable", "disable"], "a link state");
  optMac(findings, plugin, "mac", path);
  const min = optInt(findings, plugin, "min_tx_rate", path, { min: 0 });
  const max = optInt(findings, plugin, "max_tx_rate", path, { min: 0 });
  // The kernel (rtnl_set_vf_rate) refuses max < min unless max is 0 (no cap).
  if (min !== undefined && max !== undefined && max > 0 && min > max) {
    report(findings, "bad-rate", at(path, "min_tx_rate"), `${min} Mbps is above max_tx_rate ${max} Mbps`);
  }
};

/** sriov's vlan, vlanQoS and vlanProto. */
function checkSriovVlan(findings: Findings, plugin: JsonObject, path: string): void {
  const vlan = optInt(findings, plugin, "vlan", path, VLAN_ID);
  const qos = optInt(findings, plugin, "vlanQoS", path, { min: 0, max: 7 });
  const proto = field(plugin, "vlanProto");
  if (typeof proto === "string" && !["802.1q", "802.1ad"].includes(proto.toLowerCase())) {
    report(findings, "bad-value", at(path, "vlanProto"), `${show(proto)} is not a VLAN protocol; use 802.1q or 802.1ad`);
  } else if (proto !== undefined && typeof proto !== "string") {
    report(findings, "wrong-type", at(path, "vlanProto"), `must be a string, not ${show(proto)}`);
  }
  // sriov-cni LoadConf: QoS and protocol only with a VLAN, and a non-zero QoS only with a non-zero VLAN.
  if (field(plugin, "vlan") === undefined && (qos !== undefined || proto !== undefined)) {
    report(findings, "needs-vlan", path, `vlanQoS and vlanProto need "vlan" to be set`);
  } else if (vlan === 0 && qos !== undefined && qos > 0) {
    report(findings, "needs-vlan", at(path, "vlanQoS"), `${qos} needs a non-zero "vlan"`);
  }
}

/** `"a" and "b"`, `"a", "b" and "c"`. */
const both = (keys: readonly string[]): string => either(keys.map((k) => `"${k}"`)).replace(/ or ([^ ]+)$/, " and $1");

const HOST_DEVICE_KEYS = ["device", "hwaddr", "kernelpath", "pciBusID"] as const;

const hostDevice: PluginCheck = (findings, plugin, path, context) => {
  optInterface(findings, plugin, "device", path);
  optMac(findings, plugin, "hwaddr", path);
  const kernelpath = optString(findings, plugin, "kernelpath", path);
  if (kernelpath !== undefined && kernelpath !== "" && !kernelpath.startsWith("/sys/devices/")) {
    report(findings, "bad-value", at(path, "kernelpath"), `${show(kernelpath)} must be an absolute path under /sys/devices/`);
  }
  optPciAddress(findings, plugin, "pciBusID", path);
  const given = HOST_DEVICE_KEYS.filter((key) => {
    const value = field(plugin, key);
    return typeof value === "string" && value !== "";
  });
  if (given.length > 1) {
    // host-device silently takes the first of device, hwaddr, kernelpath, pciBusID and ignores the rest.
    report(findings, "ambiguous-device", path, `sets ${both(given)}; host-device uses exactly one of device, hwaddr, kernelpath, pciBusID`);
  } else if (given.length === 0 && !context.hasResourceName) {
    report(findings, "missing", path, `host-device needs one of device, hwaddr, kernelpath or pciBusID (or a k8s.v1.cni.cncf.io/resourceName annotation, whose device plugin supplies it)`);
  }
};

const vlan: PluginCheck = (findings, plugin, path) => {
  if (field(plugin, "master") === undefined) report(findings, "missing", at(path, "master"), `is missing; the vlan plugin needs the host interface to create the VLAN on`);
  else optInterface(findings, plugin, "master", path);
  if (field(plugin, "vlanId") === undefined) report(findings, "missing", at(path, "vlanId"), `is missing; give the VLAN ID (0-4094)`);
  else optInt(findings, plugin, "vlanId", path, VLAN_ID);
  optInt(findings, plugin, "mtu", path, MTU);
  optBool(findings, plugin, "linkInContainer", path);
};

const tuning: PluginCheck = (findings, plugin, path) => {
  const sysctl = optObject(findings, plugin, "sysctl", path);
  for (const [key, value] of Object.entries(sysctl ?? {})) {
    const where = `${at(path, "sysctl")}["${key}"]`;
    if (typeof value !== "string") report(findings, "wrong-type", where, `must be a string, not ${show(value)}`);
    // tuning refuses sysctls outside the network subsystem (/proc/sys/net/).
    if (!/^net[./]/.test(key)) report(findings, "bad-sysctl", where, `is not a net.* sysctl; tuning sets only network sysctls`);
  }
  optMac(findings, plugin, "mac", path);
  optBool(findings, plugin, "promisc", path);
  optBool(findings, plugin, "allmulti", path);
  optInt(findings, plugin, "mtu", path, MTU);
  optInt(findings, plugin, "txQLen", path, { min: 0 });
};

/** bandwidth.validateRateAndBurst: burst/8 must fit in 32 bits. */
const MAX_BURST = 8n * 0xffffffffn;

/** `<direction>Rate` and `<direction>Burst` of the bandwidth plugin: both or neither, burst within its limit. */
function checkRateAndBurst(findings: Findings, plugin: JsonObject, path: string, direction: "ingress" | "egress"): void {
  const rate = optInt(findings, plugin, `${direction}Rate`, path, { min: 0 });
  const burst = optInt(findings, plugin, `${direction}Burst`, path, { min: 0 });
  if ((rate ?? 0) > 0 && !burst) {
    report(findings, "rate-without-burst", at(path, `${direction}Rate`), `is set but ${direction}Burst is not; bandwidth needs both`);
  } else if ((burst ?? 0) > 0 && !rate) {
    report(findings, "burst-without-rate", at(path, `${direction}Burst`), `is set but ${direction}Rate is not; bandwidth needs both`);
  } else if (burst !== undefined && BigInt(burst) >= MAX_BURST) {
    report(findings, "bad-rate", at(path, `${direction}Burst`), `${burst} bits is over the 4 GB burst limit`);
  }
}

const bandwidth: PluginCheck = (findings, plugin, path) => {
  for (const direction of ["ingress", "egress"] as const) checkRateAndBurst(findings, plugin, path, direction);
  const shaped = optArray(findings, plugin, "shapedSubnets", path, "CIDRs");
  const unshaped = optArray(findings, plugin, "unshapedSubnets", path, "CIDRs");
  for (const [key, list] of [["shapedSubnets", shaped], ["unshapedSubnets", unshaped]] as const) {
    list?.forEach((subnet, i) => {
      if (typeof subnet !== "string" || !parseCidr(subnet)) report(findings, "bad-cidr", at(at(path, key), i), `${show(subnet)} is not a CIDR`);
    });
  }
  if (shaped && shaped.length > 0 && unshaped && unshaped.length > 0) {
    report(findings, "conflict", path, `sets both shapedSubnets and unshapedSubnets; bandwidth accepts only one`);
  }
};

/** Validators by CNI type; other types pass unchecked. */
export const PLUGIN_CHECKS: Readonly<Record<string, PluginCheck>> = {
  macvlan,
  ipvlan,
  bridge,
  sriov,
  "host-device": hostDevice,
  vlan,
  tuning,
  bandwidth,
};
