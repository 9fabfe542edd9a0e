// network-status entries from a delegate's result, as Multus writes them (multus-cni pkg/netutils
// CreateNetworkStatuses): the result read as 1.0.0; one entry per interface inside the sandbox with
// its MAC (and MTU), the addresses whose `interface` index points at it (with a single interface,
// every address), the gateways of its default routes, the result's DNS, and the device's info.
import type { CniResult } from "./result.js";
import { convertResult } from "./result.js";
import { defined } from "./json.js";

/** One element of `k8s.v1.cni.cncf.io/network-status` (NPWG multi-net spec v1.3, 4.1.2). */
export interface NetworkStatus {
  readonly name: string;
  readonly interface?: string;
  readonly ips: readonly string[];
  readonly mac?: string;
  readonly mtu?: number;
  readonly default: boolean;
  readonly dns: { readonly nameservers?: readonly string[]; readonly domain?: string; readonly search?: readonly string[]; readonly options?: readonly string[] };
  readonly gateway?: readonly string[];
  readonly "device-info"?: Readonly<Record<string, unknown>>;
}

const isDefaultRoute = (dst: string): boolean => dst === "0.0.0.0/0" || dst === "::/0";
const addressOnly = (cidr: string): string => cidr.slice(0, cidr.indexOf("/"));

/**
 * The entries of one delegate. `name` is `namespace/nad` (the cluster network's conf name for the
 * default one); a result that cannot be read as 1.0.0 gives none.
 */
export function networkStatuses(result: CniResult, name: string, isDefault: boolean, deviceInfo?: Readonly<Record<string, unknown>>): NetworkStatus[] {
  const converted = convertResult(result, "1.0.0");
  if (!converted.ok) return [];
  const current = converted.value;
  const interfaces = current.interfaces ?? [];
  const ips = current.ips ?? [];
  const gateways = (current.routes ?? []).filter((route) => isDefaultRoute(route.dst) && route.gw !== undefined).map((route) => route.gw!);
  const common = { name, default: isDefault, dns: { ...current.dns } };
  const entry = (iface: { name: string; mac?: string; mtu?: number } | undefined, addresses: string[]): NetworkStatus =>
    defined({
      ...common,
      interface: iface?.name,
      ips: addresses,
      mac: iface?.mac,
      mtu: iface?.mtu,
      gateway: gateways.length > 0 ? gateways : undefined,
      "device-info": deviceInfo,
    }) as NetworkStatus;
  if (interfaces.length <= 1) {
    const sandbox = interfaces.find((i) => i.sandbox !== undefined && i.sandbox !== "");
    return [entry(sandbox, ips.map((ip) => addressOnly(ip.address)))];
  }
  return interfaces.flatMap((iface, index) =>
    iface.sandbox === undefined || iface.sandbox === "" ? [] : [entry(iface, ips.filter((ip) => ip.interface === index).map((ip) => addressOnly(ip.address)))],
  );
}
