// The verdict oracle: would a new connection from one pod to another, on one network, port and
// protocol, be allowed? Evaluated against the same model the compiler renders (model.ts), on both
// sides: egress of the source interface, ingress of the destination interface. Replies of an
// allowed connection are always allowed (conntrack), so one direction of probing is the question.
import { type Problem, type Result, fail, ok } from "../api/errors.js";
import type { Snapshot } from "../api/snapshot.js";
import type { Config } from "../config/config.js";
import type { Family } from "../networks/addresses.js";
import { type AllowEntry, type DirectionModel, type InterfaceModel, type PolicyModel, buildModel } from "./model.js";
import type { Address } from "./pods.js";
import { type L4Protocol, addrInRanges, portInRanges } from "./ranges.js";

export interface Probe {
  /** `ns/pod`. */
  readonly from: string;
  readonly to: string;
  /** `ns/nad`. */
  readonly network: string;
  readonly port: number;
  /** Default TCP. */
  readonly protocol?: L4Protocol;
  /** Only this address family; default every family both pods have on the network. */
  readonly family?: Family;
}

/** Which rule let the probe through: policy, index in spec.ingress/egress, index in from/to (absent: the rule has no peers). */
export interface Match {
  readonly policy: string;
  readonly rule: number;
  readonly peer?: number;
}

export interface SideVerdict {
  readonly direction: "egress" | "ingress";
  readonly pod: string;
  readonly interface?: string;
  /** False when nadguard does not enforce on this interface (see `unmanagedReason`): it isolates nothing. */
  readonly managed: boolean;
  readonly unmanagedReason?: string;
  readonly isolated: boolean;
  /** The applying policies that isolate this side. */
  readonly isolatedBy: readonly string[];
  readonly allowed: boolean;
  /** Every rule that allows the probe (empty when not isolated or denied). */
  readonly allowedBy: readonly Match[];
}

export interface FamilyVerdict {
  readonly family: Family;
  readonly source: string;
  readonly destination: string;
  readonly allowed: boolean;
  /** True when source and destination are the same pod: never blocked (the traffic stays on lo). */
  readonly samePod: boolean;
  readonly egress: SideVerdict;
  readonly ingress: SideVerdict;
}

export interface Verdict {
  readonly probe: Required<Omit<Probe, "family">> & { family?: Family };
  /** Every family's probe is allowed. */
  readonly allowed: boolean;
  readonly families: readonly FamilyVerdict[];
  /** Warnings of the two interfaces (e.g. named ports that resolve nowhere). */
  readonly warnings: readonly Problem[];
}

/** A deciding rule as people read it: `ns/policy ingress[0] from[1]`. */
export function matchText(direction: "egress" | "ingress", m: Match): string {
  const peers = direction === "ingress" ? "from" : "to";
  return `${m.policy} ${direction}[${m.rule}]${m.peer !== undefined ? ` ${peers}[${m.peer}]` : ""}`;
}

/** Whether one entry allows the port (of the protocol). */
export function entryAllowsPort(entry: AllowEntry, protocol: L4Protocol, port: number): boolean {
  return entry.ports === "any" || portInRanges(entry.ports, protocol, port);
}

/** Whether one entry allows the peer address. */
export function entryAllowsAddress(entry: AllowEntry, address: Pick<Address, "family" | "value">): boolean {
  return entry.addresses === "any" || addrInRanges(entry.addresses, address.family, address.value);
}

/** Whether one entry allows traffic with the peer address and port. */
export function entryMatches(entry: AllowEntry, address: Address, protocol: L4Protocol, port: number): boolean {
  return entryAllowsAddress(entry, address) && entryAllowsPort(entry, protocol, port);
}

/** One side of a probe: the interface's direction (egress of the source, ingress of the destination) against the peer's address. */
export function sideVerdict(direction: "egress" | "ingress", model: InterfaceModel, peer: Address, protocol: L4Protocol, port: number): SideVerdict {
  const d: DirectionModel = model[direction];
  const allowedBy: Match[] = [];
  if (d.isolated) {
    for (const e of d.allows) {
      if (entryMatches(e, peer, protocol, port)) allowedBy.push({ policy: e.policy, rule: e.rule, ...(e.peer !== undefined && { peer: e.peer }) });
    }
  }
  return {
    direction,
    pod: model.pod,
    ...(model.interface !== undefined && { interface: model.interface }),
    managed: model.managed,
    ...(model.unmanagedReason !== undefined && { unmanagedReason: model.unmanagedReason }),
    isolated: d.isolated,
    isolatedBy: d.isolated ? d.policies : [],
    allowed: !d.isolated || allowedBy.length > 0,
    allowedBy: uniqueMatches(allowedBy),
  };
}

function uniqueMatches(matches: Match[]): Match[] {
  const seen = new Set<string>();
  return matches.filter((m) => {
    const key = `${m.policy}#${m.rule}#${m.peer ?? ""}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function attachmentOf(model: PolicyModel, podKey: string, network: string, role: string, problems: Problem[]): InterfaceModel | undefined {
  const pod = model.pods.get(podKey);
  if (!pod) {
    problems.push({ code: "verdict.pod", path: `--${role}`, message: `pod ${podKey} is not in the state` });
    return undefined;
  }
  const iface = model.interfaceModel(podKey, network);
  if (!iface) {
    const known = [...pod.attachments.keys()];
    problems.push({
      code: "verdict.network",
      path: `--${role}`,
      message: `pod ${podKey} has no network-status entry for ${network}${known.length ? ` (it has ${known.join(", ")})` : ""}`,
    });
    return undefined;
  }
  if (iface.addresses.length === 0) {
    problems.push({ code: "verdict.address", path: `--${role}`, message: `pod ${podKey} has no address on ${network}` });
    return undefined;
  }
  return iface;
}

/** The address of a family a probe uses on an interface: its first one in network-status. */
export function familyAddress(iface: InterfaceModel, family: Family): Address | undefined {
  return iface.addresses.find((a) => a.family === family);
}

/** The probe of one family between two interfaces of the same network; both must have an address of that family. */
export function familyVerdict(src: InterfaceModel, dst: InterfaceModel, family: Family, protocol: L4Protocol, port: number): FamilyVerdict {
  const s = familyAddress(src, family)!;
  const d = familyAddress(dst, family)!;
  const samePod = src.pod === dst.pod;
  const egress = sideVerdict("egress", src, d, protocol, port);
  const ingress = sideVerdict("ingress", dst, s, protocol, port);
  return { family, source: s.text, destination: d.text, samePod, allowed: samePod || (egress.allowed && ingress.allowed), egress, ingress };
}

/** Evaluates a probe against a model; fails (with problems) when a pod or its address on the network is unknown. */
export function verdictOf(model: PolicyModel, probe: Probe): Result<Verdict> {
  const problems: Problem[] = [];
  const protocol = probe.protocol ?? "TCP";
  if (!Number.isInteger(probe.port) || probe.port < 0 || probe.port > 65535) {
    problems.push({ code: "verdict.port", path: "--port", message: `${probe.port} is not a port (0-65535)` });
  }
  const src = attachmentOf(model, probe.from, probe.network, "from", problems);
  const dst = attachmentOf(model, probe.to, probe.network, "to", problems);
  if (!src || !dst || problems.length > 0) return fail(problems);
  const families = ([4, 6] as const).filter((f) => (probe.family === undefined || probe.family === f) && src.addresses.some((a) => a.family === f) && dst.addresses.some((a) => a.family === f));
  if (families.length === 0) {
    return fail([{ code: "verdict.family", path: "--network", message: `${probe.from} and ${probe.to} share no address family on ${probe.network}` }]);
  }
  const results = families.map((family) => familyVerdict(src, dst, family, protocol, probe.port));
  return ok({
    probe: { from: probe.from, to: probe.to, network: probe.network, port: probe.port, protocol, ...(probe.family !== undefined && { family: probe.family }) },
    allowed: results.every((r) => r.allowed),
    families: results,
    warnings: [...src.warnings, ...(src === dst ? [] : dst.warnings)],
  });
}

/** `verdictOf` on a fresh model of the snapshot. Build the model once (`buildModel`) when asking many probes. */
export function verdict(snapshot: Snapshot, config: Config, probe: Probe): Result<Verdict> {
  return verdictOf(buildModel(snapshot, config), probe);
}
