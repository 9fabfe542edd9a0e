// IPAM sections of a CNI config: host-local, static, whereabouts and dhcp, checked the way the
// plugins themselves read them (containernetworking/plugins allocator.LoadIPAMConfig and
// Range.Canonicalize; whereabouts config.LoadIPAMConfig). Each check reports what would make the
// plugin fail at pod creation, and returns the address ranges the section hands out so that NAD
// admission can compare them with other NADs' ranges.
import { type Cidr, type Family, cidrContains, cidrContainsIp, cidrLast, formatIp, parseCidr, parseIp } from "./addresses.js";
import {
  type Findings,
  type JsonObject,
  at,
  familyName,
  field,
  isObject,
  optArray,
  optBool,
  optIp,
  optString,
  report,
  show,
} from "./cni-fields.js";

/** A block of addresses an IPAM section hands out (inclusive bounds). */
export interface IpamRange {
  readonly family: Family;
  readonly start: bigint;
  readonly end: bigint;
  /** How it reads in messages: a CIDR, `first-last`, or one address. */
  readonly text: string;
  /** The subnet a pod's address on it is in, e.g. `198.18.10.0/24`. */
  readonly subnet: string;
}

export interface IpamSummary {
  readonly type: string;
  readonly ranges: readonly IpamRange[];
  /** A gateway or a route is configured (or, for dhcp, supplied by the server). */
  readonly routed: boolean;
  /** whereabouts with enable_overlapping_ranges (its default): no address is handed out twice across overlapping ranges. */
  readonly clusterWideUnique: boolean;
}

export const KNOWN_IPAM_TYPES = ["host-local", "static", "whereabouts", "dhcp"] as const;

/** Checks an `ipam` object; returns what it hands out, or undefined for IPAM types nadguard does not know. */
export function checkIpam(findings: Findings, ipam: JsonObject, path: string): IpamSummary | undefined {
  const type = optString(findings, ipam, "type", path);
  switch (type) {
    case "host-local":
      return checkHostLocal(findings, ipam, path);
    case "static":
      return checkStatic(findings, ipam, path);
    case "whereabouts":
      return checkWhereabouts(findings, ipam, path);
    case "dhcp":
      return { type, ranges: [], routed: true, clusterWideUnique: true };
    default:
      return undefined;
  }
}

// ---- shared pieces ----------------------------------------------------------------------------

/** A CIDR with its prefix; host bits are allowed (types.IPNet keeps them). */
function cidrField(findings: Findings, object: JsonObject, key: string, path: string, example: string): { cidr: Cidr; ip: bigint } | undefined {
  const text = optString(findings, object, key, path);
  if (text === undefined) return undefined;
  const cidr = parseCidr(text);
  if (cidr) return { cidr, ip: parseIp(text.slice(0, text.indexOf("/")))!.value };
  report(findings, "bad-cidr", at(path, key), `${show(text)} is not a CIDR (address/prefix, e.g. "${example}")`);
  return undefined;
}

/** An IP that must lie in `cidr` (same family). Returns it when it does. */
function ipInside(findings: Findings, object: JsonObject, key: string, path: string, cidr: Cidr, what: string): { value: bigint; text: string } | undefined {
  const ip = optIp(findings, object, key, path);
  if (!ip) return undefined;
  if (ip.family !== cidr.family) {
    report(findings, "wrong-family", at(path, key), `${ip.text} is ${familyName(ip.family)} but ${what} ${cidr.text} is ${familyName(cidr.family)}`);
    return undefined;
  }
  if (!cidrContainsIp(cidr, ip.family, ip.value)) {
    report(findings, "outside-subnet", at(path, key), `${ip.text} is outside ${what} ${cidr.text}`);
    return undefined;
  }
  return ip;
}

/** `routes`: [{dst: CIDR, gw?: IP}], as types.Route decodes them. Returns how many are usable. */
function checkRoutes(findings: Findings, ipam: JsonObject, path: string): number {
  const routes = optArray(findings, ipam, "routes", path, "route objects ({\"dst\": CIDR, \"gw\": IP})");
  if (!routes) return 0;
  let usable = 0;
  routes.forEach((route, i) => {
    const where = at(at(path, "routes"), i);
    if (!isObject(route)) {
      report(findings, "wrong-type", where, `must be a route object ({"dst": CIDR, "gw": IP}), not ${show(route)}`);
      return;
    }
    if (field(route, "dst") === undefined) {
      report(findings, "missing", at(where, "dst"), `is missing; give the destination CIDR, e.g. "0.0.0.0/0"`);
      return;
    }
    const dst = cidrField(findings, route, "dst", where, "0.0.0.0/0");
    const gw = optIp(findings, route, "gw", where);
    if (dst && gw && gw.family !== dst.cidr.family) {
      report(findings, "wrong-family", at(where, "gw"), `${gw.text} is ${familyName(gw.family)} but dst ${dst.cidr.text} is ${familyName(dst.cidr.family)}`);
    } else if (dst) usable++;
  });
  return usable;
}

const rangeOf = (cidr: Cidr, start: bigint, end: bigint, text: string): IpamRange => ({ family: cidr.family, start, end, text, subnet: cidr.text });

export function rangesOverlap(a: IpamRange, b: IpamRange): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end;
}

// ---- host-local -------------------------------------------------------------------------------

/** One host-local range ({subnet, rangeStart, rangeEnd, gateway}); undefined when unusable. */
function checkHostLocalRange(findings: Findings, range: JsonObject, path: string): { range: IpamRange; gateway: boolean } | undefined {
  const cidr = hostLocalSubnet(findings, range, path);
  if (!cidr) return undefined;
  const gateway = ipInside(findings, range, "gateway", path, cidr, "subnet");
  const start = ipInside(findings, range, "rangeStart", path, cidr, "subnet");
  const end = ipInside(findings, range, "rangeEnd", path, cidr, "subnet");
  if (start && end && start.value > end.value) {
    report(findings, "start-after-end", at(path, "rangeEnd"), `${end.text} is before rangeStart ${start.text}`);
    return undefined;
  }
  // Defaults of Range.Canonicalize: the first address after the network, the last before broadcast (IPv4).
  const first = start?.value ?? cidr.network + 1n;
  const last = end?.value ?? cidrLast(cidr) - (cidr.family === 4 ? 1n : 0n);
  const text = start || end ? `${formatIp(cidr.family, first)}-${formatIp(cidr.family, last)}` : cidr.text;
  return { range: rangeOf(cidr, first, last, text), gateway: gateway !== undefined || field(range, "gateway") !== undefined };
}

/** A host-local range's `subnet`, when present, a CIDR and large enough to allocate from. */
function hostLocalSubnet(findings: Findings, range: JsonObject, path: string): Cidr | undefined {
  if (field(range, "subnet") === undefined) {
    report(findings, "missing", at(path, "subnet"), `is missing; give the range's CIDR, e.g. "198.18.0.0/24"`);
    return undefined;
  }
  const cidr = cidrField(findings, range, "subnet", path, "198.18.0.0/24")?.cidr;
  if (!cidr) return undefined;
  const bits = cidr.family === 4 ? 32 : 128;
  if (cidr.prefix > bits - 2) {
    // Range.Canonicalize: "Network %s too small to allocate from".
    report(findings, "subnet-too-small", at(path, "subnet"), `${cidr.text} is too small to allocate from; host-local needs a prefix of at most /${bits - 2}`);
    return undefined;
  }
  return cidr;
}

function checkHostLocal(findings: Findings, ipam: JsonObject, path: string): IpamSummary {
  const sets: { path: string; ranges: IpamRange[] }[] = [];
  let gateways = false;
  // The legacy single range (subnet/rangeStart/rangeEnd/gateway beside type) is prepended as a set of its own.
  if (field(ipam, "subnet") !== undefined) {
    const legacy = checkHostLocalRange(findings, ipam, path);
    if (legacy) {
      sets.push({ path: at(path, "subnet"), ranges: [legacy.range] });
      gateways ||= legacy.gateway;
    }
  }
  const rangeSets = optArray(findings, ipam, "ranges", path, "range sets (arrays of {\"subnet\": CIDR})");
  rangeSets?.forEach((set, i) => {
    const setPath = at(at(path, "ranges"), i);
    if (!Array.isArray(set) || set.length === 0) {
      report(findings, "wrong-type", setPath, `must be a non-empty array of ranges ({"subnet": CIDR}), not ${Array.isArray(set) ? "an empty array" : show(set)}`);
      return;
    }
    const ranges: IpamRange[] = [];
    set.forEach((range, j) => {
      const rangePath = at(setPath, j);
      if (!isObject(range)) {
        report(findings, "wrong-type", rangePath, `must be a range object ({"subnet": CIDR}), not ${show(range)}`);
        return;
      }
      const checked = checkHostLocalRange(findings, range, rangePath);
      if (!checked) return;
      gateways ||= checked.gateway;
      const first = ranges[0];
      if (first && first.family !== checked.range.family) {
        // RangeSet.Canonicalize: "mixed address families".
        report(findings, "mixed-families", at(rangePath, "subnet"), `${checked.range.subnet} is ${familyName(checked.range.family)} but this range set is ${familyName(first.family)}; put each family in its own range set`);
        return;
      }
      const clash = ranges.find((other) => rangesOverlap(other, checked.range));
      if (clash) {
        report(findings, "overlap", rangePath, `${checked.range.text} overlaps ${clash.text} in the same range set`);
        return;
      }
      ranges.push(checked.range);
    });
    if (ranges.length > 0) sets.push({ path: setPath, ranges });
  });
  const rawSets = field(ipam, "ranges");
  if (field(ipam, "subnet") === undefined && (rawSets === undefined || (Array.isArray(rawSets) && rawSets.length === 0))) {
    report(findings, "missing", path, `host-local needs "ranges" (e.g. [[{"subnet": "198.18.0.0/24"}]]) or "subnet"`);
  }
  // allocator.LoadIPAMConfig: "range set %d overlaps with %d".
  sets.forEach((set, i) => {
    const earlier = sets.slice(0, i).find((other) => other.ranges.some((a) => set.ranges.some((b) => rangesOverlap(a, b))));
    if (earlier) report(findings, "overlap", set.path, `overlaps ${earlier.path}; host-local refuses overlapping range sets`);
  });
  const routes = checkRoutes(findings, ipam, path);
  optString(findings, ipam, "dataDir", path);
  optString(findings, ipam, "resolvConf", path);
  findings.warnings.push(`${path}: host-local is per node, so pods on two nodes can get the same IP; use whereabouts`);
  return { type: "host-local", ranges: sets.flatMap((set) => set.ranges), routed: gateways || routes > 0, clusterWideUnique: false };
}

// ---- static -----------------------------------------------------------------------------------

function checkStatic(findings: Findings, ipam: JsonObject, path: string): IpamSummary {
  const ranges: IpamRange[] = [];
  let gateways = false;
  const addresses = optArray(findings, ipam, "addresses", path, "address objects ({\"address\": CIDR})");
  addresses?.forEach((entry, i) => {
    const where = at(at(path, "addresses"), i);
    if (!isObject(entry)) {
      report(findings, "wrong-type", where, `must be an address object ({"address": "198.18.40.10/24"}), not ${show(entry)}`);
      return;
    }
    if (field(entry, "address") === undefined) {
      report(findings, "missing", at(where, "address"), `is missing; give the address with its prefix, e.g. "198.18.40.10/24"`);
      return;
    }
    const address = cidrField(findings, entry, "address", where, "198.18.40.10/24");
    const gateway = optIp(findings, entry, "gateway", where);
    if (!address) return;
    if (gateway && gateway.family !== address.cidr.family) {
      report(findings, "wrong-family", at(where, "gateway"), `${gateway.text} is ${familyName(gateway.family)} but address ${field(entry, "address") as string} is ${familyName(address.cidr.family)}`);
      return;
    }
    gateways ||= gateway !== undefined;
    ranges.push(rangeOf(address.cidr, address.ip, address.ip, formatIp(address.cidr.family, address.ip)));
  });
  const routes = checkRoutes(findings, ipam, path);
  return { type: "static", ranges, routed: gateways || routes > 0, clusterWideUnique: false };
}

// ---- whereabouts ------------------------------------------------------------------------------

/** `range` as whereabouts reads it: a CIDR (host bits ignored) or `first-last/prefix`. */
function parseWhereaboutsRange(findings: Findings, text: string, path: string): { cidr: Cidr; first?: bigint; last?: bigint } | undefined {
  const dash = text.indexOf("-");
  if (dash < 0) {
    const cidr = parseCidr(text);
    if (cidr) return { cidr };
    report(findings, "bad-cidr", path, `${show(text)} is not a CIDR or a first-last/prefix range (e.g. "198.18.0.0/24" or "198.18.0.10-198.18.0.50/24")`);
    return undefined;
  }
  const firstText = text.slice(0, dash);
  const lastText = text.slice(dash + 1);
  const first = parseIp(firstText);
  const cidr = parseCidr(lastText);
  if (!first || !cidr) {
    report(findings, "bad-cidr", path, `${show(text)} is not a first-last/prefix range (e.g. "198.18.0.10-198.18.0.50/24")`);
    return undefined;
  }
  const last = parseIp(lastText.slice(0, lastText.indexOf("/")))!.value;
  if (!cidrContainsIp(cidr, first.family, first.value)) {
    report(findings, "outside-subnet", path, `first address ${firstText} is outside ${cidr.text}`);
    return undefined;
  }
  if (first.value > last) {
    report(findings, "start-after-end", path, `first address ${firstText} comes after last address ${lastText.slice(0, lastText.indexOf("/"))}`);
    return undefined;
  }
  return { cidr, first: first.value, last };
}

/** One whereabouts range configuration: range, range_start, range_end, exclude. */
function checkWhereaboutsRange(findings: Findings, entry: JsonObject, path: string): IpamRange | undefined {
  const text = optString(findings, entry, "range", path);
  if (text === undefined) {
    report(findings, "missing", at(path, "range"), `is missing; give a CIDR, e.g. "198.18.0.0/24"`);
    return undefined;
  }
  const parsed = parseWhereaboutsRange(findings, text, at(path, "range"));
  const bound = (key: string): { value: bigint; text: string } | undefined =>
    parsed ? ipInside(findings, entry, key, path, parsed.cidr, "range") : optIp(findings, entry, key, path);
  const start = bound("range_start");
  const end = bound("range_end");
  checkExcludes(findings, entry, path, parsed?.cidr);
  if (!parsed) return undefined;
  if (parsed.first === undefined && start && end && start.value > end.value) {
    report(findings, "start-after-end", at(path, "range_end"), `${end.text} is before range_start ${start.text}`);
    return undefined;
  }
  return whereaboutsRange(parsed, start?.value, end?.value);
}

/** `exclude`: CIDRs inside the range (when the range could be read). */
function checkExcludes(findings: Findings, entry: JsonObject, path: string, range: Cidr | undefined): void {
  optArray(findings, entry, "exclude", path, "CIDRs")?.forEach((exclude, i) => {
    const where = at(at(path, "exclude"), i);
    const cidr = typeof exclude === "string" ? parseCidr(exclude) : undefined;
    if (!cidr) {
      report(findings, "bad-cidr", where, `${show(exclude)} is not a CIDR (address/prefix, e.g. "198.18.0.0/28")`);
    } else if (range && !cidrContains(range, cidr)) {
      report(findings, "outside-subnet", where, `${cidr.text} is not inside range ${range.text}`);
    }
  });
}

/** The addresses a whereabouts range hands out; in the first-last form whereabouts takes the bounds from the range itself. */
function whereaboutsRange(parsed: { cidr: Cidr; first?: bigint; last?: bigint }, start: bigint | undefined, end: bigint | undefined): IpamRange {
  const { cidr } = parsed;
  const first = parsed.first ?? start ?? cidr.network;
  const last = parsed.last ?? end ?? cidrLast(cidr);
  const bounded = parsed.first !== undefined || start !== undefined || end !== undefined;
  return rangeOf(cidr, first, last, bounded ? `${formatIp(cidr.family, first)}-${formatIp(cidr.family, last)}` : cidr.text);
}

function checkWhereabouts(findings: Findings, ipam: JsonObject, path: string): IpamSummary {
  const ranges: IpamRange[] = [];
  if (field(ipam, "range") !== undefined) {
    const range = checkWhereaboutsRange(findings, ipam, path);
    if (range) ranges.push(range);
  } else if (field(ipam, "exclude") !== undefined) {
    findings.warnings.push(`${at(path, "exclude")}: applies only to "range", which is not set; put exclude in each ipRanges entry`);
  }
  const ipRanges = optArray(findings, ipam, "ipRanges", path, "range objects ({\"range\": CIDR})");
  ipRanges?.forEach((entry, i) => {
    const where = at(at(path, "ipRanges"), i);
    if (!isObject(entry)) {
      report(findings, "wrong-type", where, `must be a range object ({"range": CIDR}), not ${show(entry)}`);
      return;
    }
    const range = checkWhereaboutsRange(findings, entry, where);
    if (range) ranges.push(range);
  });
  if (field(ipam, "range") === undefined && (ipRanges === undefined || ipRanges.length === 0)) {
    report(findings, "missing", path, `whereabouts needs "range" (e.g. "198.18.0.0/24") or "ipRanges"`);
  }
  const gateway = optIp(findings, ipam, "gateway", path);
  const routes = checkRoutes(findings, ipam, path);
  const overlapping = optBool(findings, ipam, "enable_overlapping_ranges", path);
  return { type: "whereabouts", ranges, routed: gateway !== undefined || routes > 0, clusterWideUnique: overlapping !== false };
}
