// Allow entries: what one rule of a policy allows, as (addresses × ports) entries naming the policy,
// rule and peer they come from. Most of a rule does not depend on the pod it applies to and is
// computed once per model; ingress named ports resolve against each target pod.
import type { Problem } from "../api/errors.js";
import type { AllowEntry } from "./model.js";
import type { IdSource, PeerPods, PeerSets } from "./peer-sets.js";
import { eligibleRanges, sortedHosts } from "./peer-sets.js";
import type { Direction, Policy, Port } from "./policy.js";
import { type PodInfo, namedPortKey } from "./pods.js";
import { type AddrRange, type L4Protocol, type PortRange, mergePortRanges } from "./ranges.js";

type NamedPort = { readonly name: string; readonly protocol: L4Protocol };

/** Where an entry comes from (see `AllowEntry`). */
type Origin = Pick<AllowEntry, "policy" | "rule" | "peer">;

function portsText(ports: "any" | readonly PortRange[]): string {
  return ports === "any" ? "any" : ports.map((p) => `${p.protocol}:${p.from}-${p.to}`).join(",");
}

/** `addrId` identifies the addresses: with the ports, it makes the entry's signature. */
function entry(origin: Origin, addrId: string, addresses: AllowEntry["addresses"], ports: AllowEntry["ports"], source?: PeerPods): AllowEntry {
  const signature = `${addrId}|${portsText(ports)}`;
  // Literals, not spreads: entries of the rules that read a changed peer set are made again on every recompile.
  const { policy, rule, peer } = origin;
  if (source) return peer === undefined ? { policy, rule, addresses, ports, signature, source } : { policy, rule, peer, addresses, ports, signature, source };
  return peer === undefined ? { policy, rule, addresses, ports, signature } : { policy, rule, peer, addresses, ports, signature };
}

function origin(policy: Policy, rule: number, peer: number | undefined): Origin {
  return { policy: policy.key, rule, ...(peer !== undefined && { peer }) };
}

type SplitPorts = { readonly fixed: "any" | readonly PortRange[]; readonly named: readonly NamedPort[] };

const ANY_PORTS: SplitPorts = { fixed: "any", named: [] };

/** Each port list split once in its life (policies are immutable; a rule's ports are read for every target pod). */
const splitCache = new WeakMap<readonly Port[], SplitPorts>();

/** The fixed (numeric) ports of a rule (`any`: the rule has no port list) and its named ones. */
function splitPorts(ports: readonly Port[] | undefined): SplitPorts {
  if (!ports) return ANY_PORTS;
  let found = splitCache.get(ports);
  if (!found) splitCache.set(ports, (found = readPorts(ports)));
  return found;
}

function readPorts(ports: readonly Port[]): SplitPorts {
  const fixed: PortRange[] = [];
  const named: NamedPort[] = [];
  for (const p of ports) {
    if (p.kind === "range") fixed.push({ protocol: p.protocol, from: p.from, to: p.to });
    else if (p.kind === "named") named.push({ name: p.name, protocol: p.protocol });
  }
  return { fixed: mergePortRanges(fixed), named };
}

/** The port number a pod gives a named port; undefined when none of its containers names it. */
function resolvePort(pod: PodInfo, port: NamedPort): number | undefined {
  return pod.namedPorts.get(namedPortKey(port.name, port.protocol));
}

function unresolved(policy: Policy, direction: Direction, ruleIndex: number, message: string): Problem {
  return { code: "policy.named-port-unresolved", path: `MultiNetworkPolicy ${policy.key}: spec.${direction}[${ruleIndex}].ports`, message };
}

/** A rule's shared entries, with what they were made from: the policy object and the peer sets read. */
export interface SharedEntries {
  readonly entries: AllowEntry[];
  readonly warnings: Problem[];
  readonly policy: Policy;
  readonly sets: readonly PeerPods[];
}

/** The allow entries of one model's rules: shared ones computed once per rule, or taken from the previous model's while still valid. */
export class RuleEntries {
  readonly #peers: PeerSets;
  readonly #ids: IdSource;
  readonly #memo = new Map<string, SharedEntries>();
  // The previous model's entries (not that model's RuleEntries: each holding the one before would chain every model ever built).
  readonly #previous: ReadonlyMap<string, SharedEntries> | undefined;

  /** `previous`: the entries of the model before (see `memo`), reused for a rule whose policy object and peer sets are the same. */
  constructor(peers: PeerSets, ids: IdSource, previous?: ReadonlyMap<string, SharedEntries>) {
    this.#peers = peers;
    this.#ids = ids;
    this.#previous = previous;
  }

  /** The shared entries computed or reused so far, by rule. */
  get memo(): ReadonlyMap<string, SharedEntries> {
    return this.#memo;
  }

  /** Entries of a rule that do not depend on the target pod (all of egress; ingress without named ports). */
  shared(policy: Policy, direction: Direction, ruleIndex: number): SharedEntries {
    const memoKey = `${policy.key}\u0000${direction}\u0000${ruleIndex}`;
    let found = this.#memo.get(memoKey);
    if (found) return found;
    const before = this.#previous?.get(memoKey);
    // Same policy object, same peer set objects: the same entries (signatures and ids included).
    if (before?.policy === policy && before.sets.every((set) => this.#peers.of(policy, set.peer) === set)) {
      this.#memo.set(memoKey, before);
      return before;
    }
    const { fixed, named } = splitPorts(policy[direction]![ruleIndex]!.ports);
    const warnings: Problem[] = [];
    const sets: PeerPods[] = [];
    const entries = this.#peerEntries(policy, direction, ruleIndex, fixed, sets);
    if (direction === "egress" && named.length > 0) entries.push(...this.#egressNamed(policy, ruleIndex, named, warnings, sets));
    found = { entries, warnings, policy, sets };
    this.#memo.set(memoKey, found);
    return found;
  }

  /** Ingress named ports: they resolve against the target pod itself. */
  ingressNamed(policy: Policy, ruleIndex: number, target: PodInfo, warnings: Problem[]): AllowEntry[] {
    const { fixed, named } = splitPorts(policy.ingress![ruleIndex]!.ports);
    if (named.length === 0) return [];
    const ports: PortRange[] = [];
    for (const n of named) {
      const number = resolvePort(target, n);
      if (number !== undefined) ports.push({ protocol: n.protocol, from: number, to: number });
      else warnings.push(unresolved(policy, "ingress", ruleIndex, `named port ${n.name}/${n.protocol} is not defined by pod ${target.key}; it allows nothing there`));
    }
    // Numeric ports of the same rule are in the shared entries already; only add what is new.
    const extra = mergePortRanges(ports).filter((p) => fixed === "any" || !fixed.some((f) => f.protocol === p.protocol && f.from <= p.from && p.to <= f.to));
    return this.#peerEntries(policy, "ingress", ruleIndex, extra);
  }

  /** Entries of one rule for every source/destination peer, with the given ports. */
  /** `sets`: where the peer sets read are listed (for `shared`). */
  #peerEntries(policy: Policy, direction: Direction, ruleIndex: number, ports: "any" | readonly PortRange[], sets: PeerPods[] = []): AllowEntry[] {
    if (ports !== "any" && ports.length === 0) return [];
    const rule = policy[direction]![ruleIndex]!;
    if (!rule.peers) return [entry(origin(policy, ruleIndex, undefined), "any", "any", ports)];
    const out: AllowEntry[] = [];
    rule.peers.forEach((peer, i) => {
      if (peer.kind === "ipBlock") {
        out.push(entry(origin(policy, ruleIndex, i), `ip:${peer.ranges.map((r) => `${r.from}-${r.to}`).join(",")}`, peer.ranges, ports));
      } else if (peer.kind === "pods") {
        const found = this.#peers.of(policy, peer);
        sets.push(found);
        if (found.ranges.length > 0) out.push(entry(origin(policy, ruleIndex, i), `p${found.id}`, found.ranges, ports, found));
      }
    });
    return out;
  }

  /** Egress named ports: resolved against each destination pod; pods grouped by what their names resolve to. */
  #egressNamed(policy: Policy, ruleIndex: number, named: readonly NamedPort[], warnings: Problem[], sets: PeerPods[]): AllowEntry[] {
    const rule = policy.egress![ruleIndex]!;
    const targets: { peer: number | undefined; found: PeerPods }[] = rule.peers
      ? rule.peers.flatMap((peer, i) => (peer.kind === "pods" ? [{ peer: i, found: this.#peers.of(policy, peer) }] : []))
      : [{ peer: undefined, found: this.#peers.of(policy, undefined) }];
    const out: AllowEntry[] = [];
    const resolved = new Set<string>();
    for (const { found } of targets) sets.push(found);
    for (const { peer, found } of targets) {
      const groups = new Map<string, { ports: PortRange[]; ranges: AddrRange[] }>();
      for (const pod of found.pods) {
        const ports: PortRange[] = [];
        for (const n of named) {
          const number = resolvePort(pod, n);
          if (number === undefined) continue;
          resolved.add(namedPortKey(n.name, n.protocol));
          ports.push({ protocol: n.protocol, from: number, to: number });
        }
        if (ports.length === 0) continue;
        const merged = mergePortRanges(ports);
        const groupKey = portsText(merged);
        let group = groups.get(groupKey);
        if (!group) groups.set(groupKey, (group = { ports: merged, ranges: [] }));
        for (const r of eligibleRanges(policy.networks, pod) ?? []) group.ranges.push(r);
      }
      for (const group of groups.values()) out.push(entry(origin(policy, ruleIndex, peer), `n${this.#ids.take()}`, sortedHosts(group.ranges), group.ports));
    }
    for (const n of named) {
      if (!resolved.has(namedPortKey(n.name, n.protocol))) {
        warnings.push(unresolved(policy, "egress", ruleIndex, `named port ${n.name}/${n.protocol} is defined by no destination pod; it allows nothing`));
      }
    }
    return out;
  }
}
