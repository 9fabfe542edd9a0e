// IP addresses, CIDRs and MACs as values: parsed once, compared as bigints. Used by the selection
// parser (ips, mac), the policy engine (ipBlock) and NAD validation (IPAM ranges).
import { isIPv4, isIPv6 } from "node:net";

export type Family = 4 | 6;

export interface Cidr {
  readonly family: Family;
  /** The network address (host bits cleared). */
  readonly network: bigint;
  readonly prefix: number;
  /** Canonical text, e.g. `198.18.0.0/15` or `fd00::/8`. */
  readonly text: string;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function ipFamily(address: string): Family | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(address)) return 6;
  return undefined;
}

/** Parses an IPv4 or IPv6 address (no zone) into its family and value; undefined if invalid. */
export function parseIp(address: string): { family: Family; value: bigint } | undefined {
  if (isIPv4(address)) {
    const value = address.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
    return { family: 4, value };
  }
  if (!isIPv6(address) || address.includes("%")) return undefined;
  return { family: 6, value: ipv6ToBigInt(address) };
}

function ipv6ToBigInt(address: string): bigint {
  let text = address;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = parseIp(tail)!.value;
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = "", rest] = text.split("::");
  const headParts = head === "" ? [] : head.split(":");
  const restParts = rest === undefined || rest === "" ? [] : rest.split(":");
  const zeros = rest === undefined ? 0 : 8 - headParts.length - restParts.length;
  const parts = [...headParts, ...Array<string>(zeros).fill("0"), ...restParts];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
  }
  const hextets = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero hextets.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (hextets[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = hextets.map((h) => h.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/**
 * Parses `addr/prefix`. A bare address is a host route (/32 or /128) when `allowBare` is set,
 * as NetworkPolicy's ipBlock.except allows; otherwise undefined. Host bits are cleared.
 */
export function parseCidr(text: string, options: { allowBare?: boolean } = {}): Cidr | undefined {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addressText);
  if (!ip) return undefined;
  const bits = BITS[ip.family];
  let prefix = bits;
  if (slash < 0) {
    if (!options.allowBare) return undefined;
  } else {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > bits) return undefined;
  }
  const network = ip.value & prefixMask(ip.family, prefix);
  return { family: ip.family, network, prefix, text: `${formatIp(ip.family, network)}/${prefix}` };
}

export function prefixMask(family: Family, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return prefix === 0 ? 0n : (all >> (bits - BigInt(prefix))) << (bits - BigInt(prefix));
}

/** The last address of a CIDR. */
export function cidrLast(cidr: Cidr): bigint {
  return cidr.network | (~prefixMask(cidr.family, cidr.prefix) & ((1n << BigInt(BITS[cidr.family])) - 1n));
}

export function cidrContainsIp(cidr: Cidr, family: Family, value: bigint): boolean {
  return cidr.family === family && (value & prefixMask(family, cidr.prefix)) === cidr.network;
}

/** True when `inner` lies entirely within `outer` (same family). */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.prefix >= outer.prefix && cidrContainsIp(outer, inner.family, inner.network);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** A 6-byte Ethernet MAC, colon or dash separated. */
export function isMac(text: string): boolean {
  return /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/.test(text);
}

/** An 8-byte InfiniBand GUID written as colon-separated bytes. */
export function isInfinibandGuid(text: string): boolean {
  return /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){7}$/.test(text);
}
