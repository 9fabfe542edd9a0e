// One MultiNetworkPolicy (k8s.cni.cncf.io/v1beta1) read into what the engine evaluates: the NADs it
// is for, its policy types as the API server defaults them for NetworkPolicy, and its rules with
// compiled selectors, parsed ipBlocks and ports. Nothing here throws: what cannot be read becomes a
// problem and a part that matches nothing, so a bad policy never isolates less than it asks.
import type { Problem } from "../api/errors.js";
import {
  ANNOTATION_POLICY_FOR,
  type EgressRule,
  type IngressRule,
  type MultiNetworkPolicy,
  type PolicyPeer,
  type PolicyPort,
  annotationsOf,
  objectKey,
} from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import { parseCidr } from "../networks/addresses.js";
import { type AddrRange, type L4Protocol, cidrRange, subtractRanges } from "./ranges.js";
import { type CompiledSelector, compileSelector } from "./selector.js";

export type Direction = "ingress" | "egress";
export const DIRECTIONS: readonly Direction[] = ["ingress", "egress"];

/** A peer: pods chosen by selectors, or addresses of an ipBlock; `invalid` peers match nothing. */
export type Peer =
  | {
      readonly kind: "pods";
      /** Absent: the policy's own namespace. */
      readonly namespaceSelector?: CompiledSelector;
      /** Absent: every pod of the chosen namespaces. */
      readonly podSelector?: CompiledSelector;
      /** Equal keys select the same pods (selectors as written, and the namespace when no namespaceSelector). */
      readonly key: string;
    }
  | { readonly kind: "ipBlock"; readonly cidr: string; readonly ranges: readonly AddrRange[] }
  | { readonly kind: "invalid" };

export type PodsPeer = Peer & { readonly kind: "pods" };

/** A port entry: a numeric range, a named port (resolved against the destination pod), or all of a protocol; `invalid` matches nothing. */
export type Port =
  | { readonly kind: "range"; readonly protocol: L4Protocol; readonly from: number; readonly to: number }
  | { readonly kind: "named"; readonly protocol: L4Protocol; readonly name: string }
  | { readonly kind: "invalid" };

export interface Rule {
  /** Absent (`from`/`to` empty or omitted): every source or destination. */
  readonly peers?: readonly Peer[];
  /** Absent (`ports` empty or omitted): every port of every protocol. */
  readonly ports?: readonly Port[];
}

export interface Policy {
  /** `namespace/name`. */
  readonly key: string;
  readonly namespace: string;
  readonly name: string;
  /** NADs (`ns/name`) named by policy-for that exist; empty: the policy applies to nothing. */
  readonly networks: readonly string[];
  readonly podSelector: CompiledSelector;
  readonly ingress?: readonly Rule[];
  readonly egress?: readonly Rule[];
  /** The pod peers of its rules, both directions, in rule order: whose pods a pod's change may concern. */
  readonly podPeers: readonly PodsPeer[];
  /** An egress rule without `to` has named ports: they resolve against every pod. */
  readonly egressNamedToAll: boolean;
  readonly problems: readonly Problem[];
}

/** Splits policy-for into `ns/name` keys: a bare name is in the policy's namespace; blanks tolerated. */
export function parsePolicyFor(value: string | undefined, namespace: string): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const raw of value.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const slash = item.indexOf("/");
    out.push(slash < 0 ? objectKey(namespace, item) : objectKey(item.slice(0, slash).trim(), item.slice(slash + 1).trim()));
  }
  return [...new Set(out)];
}

function policyTypes(policy: MultiNetworkPolicy): { ingress: boolean; egress: boolean } {
  const types = policy.spec.policyTypes;
  // The API server's defaulting of NetworkPolicy (pkg/apis/networking/v1/defaults.go).
  if (!types || types.length === 0) return { ingress: true, egress: (policy.spec.egress ?? []).length > 0 };
  return { ingress: types.includes("Ingress"), egress: types.includes("Egress") };
}

function readPeer(peer: PolicyPeer, namespace: string, path: string, problems: Problem[]): Peer {
  const hasSelector = peer.podSelector != null || peer.namespaceSelector != null;
  if (peer.ipBlock != null) {
    if (hasSelector) {
      problems.push({ code: "policy.peer", path, message: "a peer gives ipBlock together with a selector; it matches nothing" });
      return { kind: "invalid" };
    }
    return readIpBlock(peer.ipBlock, `${path}.ipBlock`, problems);
  }
  if (!hasSelector) {
    problems.push({ code: "policy.peer", path, message: "a peer needs podSelector, namespaceSelector or ipBlock; it matches nothing" });
    return { kind: "invalid" };
  }
  const namespaceSelector = peer.namespaceSelector != null ? compileSelector(peer.namespaceSelector, `${path}.namespaceSelector`, problems) : undefined;
  const podSelector = peer.podSelector != null ? compileSelector(peer.podSelector, `${path}.podSelector`, problems) : undefined;
  if (namespaceSelector?.invalid || podSelector?.invalid) return { kind: "invalid" };
  const key = JSON.stringify([peer.namespaceSelector ?? namespace, peer.podSelector ?? null]);
  return { kind: "pods", ...(namespaceSelector && { namespaceSelector }), ...(podSelector && { podSelector }), key };
}

function readIpBlock(block: { cidr: string; except?: string[] | null | undefined }, path: string, problems: Problem[]): Peer {
  const cidr = parseCidr(block.cidr.trim());
  if (!cidr) {
    problems.push({ code: "policy.ip-block", path: `${path}.cidr`, message: `"${block.cidr}" is not a CIDR; the peer matches nothing` });
    return { kind: "invalid" };
  }
  const except: AddrRange[] = [];
  for (const [i, text] of (block.except ?? []).entries()) {
    const ex = parseCidr(text.trim(), { allowBare: true });
    if (!ex) {
      // Dropping an except would allow more than asked; the whole block is refused instead.
      problems.push({ code: "policy.ip-block", path: `${path}.except[${i}]`, message: `"${text}" is not an address or CIDR; the peer matches nothing` });
      return { kind: "invalid" };
    }
    except.push(cidrRange(ex));
  }
  return { kind: "ipBlock", cidr: cidr.text, ranges: subtractRanges(cidrRange(cidr), except) };
}

function readPort(port: PolicyPort, path: string, problems: Problem[]): Port {
  const protocol: L4Protocol = port.protocol ?? "TCP";
  const bad = (message: string): Port => {
    problems.push({ code: "policy.port", path, message: `${message}; this port entry matches nothing` });
    return { kind: "invalid" };
  };
  const value = port.port;
  if (value === undefined || value === null) {
    if (port.endPort != null) return bad("endPort needs a numeric port");
    return { kind: "range", protocol, from: 0, to: 65535 };
  }
  if (typeof value === "string") {
    if (port.endPort != null) return bad("endPort needs a numeric port, not a named one");
    if (value === "") return bad("a named port cannot be empty");
    return { kind: "named", protocol, name: value };
  }
  if (value < 1 || value > 65535) return bad(`port ${value} is outside 1-65535`);
  const end = port.endPort ?? value;
  if (end < value || end > 65535) return bad(`endPort ${end} must be between port ${value} and 65535`);
  return { kind: "range", protocol, from: value, to: end };
}

function readRule(rule: IngressRule | EgressRule, peersOf: PolicyPeer[] | null | undefined, namespace: string, path: string, problems: Problem[]): Rule {
  const field = path.startsWith("spec.ingress") ? "from" : "to";
  const peers = (peersOf ?? []).map((peer, i) => readPeer(peer, namespace, `${path}.${field}[${i}]`, problems));
  const ports = (rule.ports ?? []).map((port, i) => readPort(port, `${path}.ports[${i}]`, problems));
  return { ...(peers.length > 0 && { peers }), ...(ports.length > 0 && { ports }) };
}

type PolicyBody = Omit<Policy, "networks" | "problems"> & { readonly named: readonly string[]; readonly problems: readonly Problem[] };

// Snapshots are immutable: a policy object is read once, whatever snapshot it reappears in.
const cache = new WeakMap<MultiNetworkPolicy, PolicyBody>();

function readBody(policy: MultiNetworkPolicy): PolicyBody {
  const namespace = policy.metadata.namespace ?? "default";
  const name = policy.metadata.name ?? "";
  const problems: Problem[] = [];
  const named = parsePolicyFor(annotationsOf(policy.metadata)[ANNOTATION_POLICY_FOR], namespace);
  if (named.length === 0) problems.push({ code: "policy.no-policy-for", path: POLICY_FOR_PATH, message: "names no NAD; the policy applies to nothing" });
  const podSelector = compileSelector(policy.spec.podSelector, "spec.podSelector", problems);
  const types = policyTypes(policy);
  const ingress = types.ingress ? (policy.spec.ingress ?? []).map((r, i) => readRule(r, r.from, namespace, `spec.ingress[${i}]`, problems)) : undefined;
  const egress = types.egress ? (policy.spec.egress ?? []).map((r, i) => readRule(r, r.to, namespace, `spec.egress[${i}]`, problems)) : undefined;
  const podPeers = [...(ingress ?? []), ...(egress ?? [])].flatMap((rule) => (rule.peers ?? []).filter((peer): peer is PodsPeer => peer.kind === "pods"));
  const egressNamedToAll = (egress ?? []).some((rule) => !rule.peers && rule.ports?.some((p) => p.kind === "named"));
  return { key: objectKey(namespace, name), namespace, name, named, podSelector, ...(ingress && { ingress }), ...(egress && { egress }), podPeers, egressNamedToAll, problems };
}

const POLICY_FOR_PATH = `metadata.annotations["${ANNOTATION_POLICY_FOR}"]`;

/** Reads one policy against the snapshot's NADs. */
export function readPolicy(policy: MultiNetworkPolicy, snapshot: Pick<Snapshot, "nads">): Policy {
  let body = cache.get(policy);
  if (!body) cache.set(policy, (body = readBody(policy)));
  const problems = [...body.problems];
  const networks = body.named.filter((nad) => {
    if (snapshot.nads.has(nad)) return true;
    problems.push({ code: "policy.nad-missing", path: POLICY_FOR_PATH, message: `NAD ${nad} does not exist; the policy does not apply to it` });
    return false;
  });
  const { named: _named, problems: _problems, ...rest } = body;
  return { ...rest, networks, problems: problems.map((p) => ({ ...p, path: `MultiNetworkPolicy ${body.key}: ${p.path}` })) };
}
