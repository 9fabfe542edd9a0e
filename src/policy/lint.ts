// `nadguard lint`'s checks: what makes a MultiNetworkPolicy silently do nothing, or
// something else than its author meant. Each check is a small pure function of one policy and its
// context (the snapshot, the config, the policy model that `verdict` and the compiler use) and
// returns findings: a severity (an error is a policy that is not enforced or cannot mean what it
// says; a warning is one that does nothing now, or less than it reads), the object, the place in
// it, and a sentence saying what to do.
import { ANNOTATION_POLICY_FOR, type LabelSelector, type MultiNetworkPolicy, type PolicyPeer, type PolicyPort, annotationsOf } from "../api/objects.js";
import type { Snapshot } from "../api/snapshot.js";
import type { Config } from "../config/config.js";
import { type Cidr, cidrLast, cidrsOverlap, parseCidr } from "../networks/addresses.js";
import { checkCniConfig } from "../networks/cni-config.js";
import { nadCniInfo } from "../networks/nad-config.js";
import type { PolicyModel } from "./model.js";
import { namespaceLabels, peerSelects } from "./peer-sets.js";
import { type Direction, DIRECTIONS, type Policy, parsePolicyFor } from "./policy.js";
import { type PodInfo, namedPortKey } from "./pods.js";
import { type AddrRange, mergeAddrRanges } from "./ranges.js";

export type Severity = "error" | "warning";

export interface Finding {
  readonly severity: Severity;
  /** Stable, e.g. `lint.nad-missing`. */
  readonly code: string;
  /** `MultiNetworkPolicy ns/name`. */
  readonly object: string;
  /** Where in the object, e.g. `spec.ingress[0].from[1]`. */
  readonly path: string;
  /** What is wrong and what to do. */
  readonly message: string;
}

export interface LintContext {
  readonly snapshot: Snapshot;
  readonly config: Config;
  readonly model: PolicyModel;
}

/** One policy as a check reads it: the object as written and as the model reads it. */
export interface LintTarget {
  readonly raw: MultiNetworkPolicy;
  readonly policy: Policy;
}

export type LintCheck = (target: LintTarget, ctx: LintContext) => Finding[];

const POLICY_FOR = `metadata.annotations["${ANNOTATION_POLICY_FOR}"]`;
const NAMESPACE_NAME = "kubernetes.io/metadata.name";

function finding(target: LintTarget, severity: Severity, code: string, path: string, message: string): Finding {
  return { severity, code: `lint.${code}`, object: `MultiNetworkPolicy ${target.policy.key}`, path, message };
}

const peerField = (direction: Direction): string => (direction === "ingress" ? "from" : "to");

/** The rules the model reads, with the raw rule beside each (same indexes). */
function rulesOf(target: LintTarget, direction: Direction): { index: number; peers: readonly PolicyPeer[] | undefined; ports: readonly PolicyPort[] | undefined; path: string }[] {
  const parsed = target.policy[direction];
  if (!parsed) return [];
  const raw = target.raw.spec[direction] ?? [];
  return parsed.map((_, index) => {
    const rule = raw[index] as { from?: PolicyPeer[] | null; to?: PolicyPeer[] | null; ports?: PolicyPort[] | null };
    const peers = (direction === "ingress" ? rule.from : rule.to) ?? [];
    const ports = rule.ports ?? [];
    return { index, peers: peers.length > 0 ? peers : undefined, ports: ports.length > 0 ? ports : undefined, path: `spec.${direction}[${index}]` };
  });
}

/** Pods attached to any of the policy's networks. */
function attached(ctx: LintContext, policy: Policy): PodInfo[] {
  return [...ctx.model.pods.values()].filter((pod) => policy.networks.some((n) => pod.attachments.has(n)));
}

/** policy-for missing, or naming a NAD that does not exist: the policy protects nothing there. */
export const checkPolicyFor: LintCheck = (target, ctx) => {
  const named = parsePolicyFor(annotationsOf(target.raw.metadata)[ANNOTATION_POLICY_FOR], target.policy.namespace);
  if (named.length === 0) {
    return [finding(target, "error", "no-policy-for", POLICY_FOR, "names no NAD, so the policy applies to nothing; add the annotation with the NADs it guards (name, or ns/name)")];
  }
  return named
    .filter((nad) => !ctx.snapshot.nads.has(nad))
    .map((nad) => {
      const ns = nad.split("/")[0]!;
      const known = ctx.snapshot.nadNamesByNamespace.get(ns) ?? [];
      const hint = known.length > 0 ? ` (NADs of ${ns}: ${known.join(", ")})` : ` (${ns} has no NAD)`;
      return finding(target, "error", "nad-missing", POLICY_FOR, `names NAD ${nad}, which does not exist, so the policy protects nothing on it; correct the name or create the NAD${hint}`);
    });
};

/** A policy-for NAD whose CNI type nadguard does not enforce: nothing is enforced on it. */
export const checkNadEnforced: LintCheck = (target, ctx) => {
  const plugins = ctx.config.enforcement.networkPlugins;
  return target.policy.networks.flatMap((nad) => {
    const type = nadCniInfo(ctx.snapshot.nads.get(nad)!).types[0];
    if (type !== undefined && plugins.includes(type)) return [];
    const what = type === undefined ? "has no readable CNI type (empty or unreadable config)" : `has CNI type ${type}, which is not in enforcement.networkPlugins (${plugins.join(", ")})`;
    return [finding(target, "error", "nad-not-enforced", POLICY_FOR, `NAD ${nad} ${what}, so the policy is not enforced on it; enforce that type (enforcement.networkPlugins) or guard this network another way`)];
  });
};

/** The podSelector selects no pod attached to the policy's NADs: it isolates nothing now. */
export const checkSelectsAttached: LintCheck = (target, ctx) => {
  const { policy } = target;
  if (policy.networks.length === 0) return [];
  const selected = ctx.model.selectedPods(policy.key);
  if ([...selected].some((key) => policy.networks.some((n) => ctx.model.pods.get(key)!.attachments.has(n)))) return [];
  const what = selected.size === 0 ? `selects no pod in ${policy.namespace}` : `selects ${selected.size} pod(s) in ${policy.namespace}, none attached to ${policy.networks.join(", ")}`;
  return [finding(target, "warning", "selects-no-attached-pod", "spec.podSelector", `${what}, so the policy isolates nothing now; check the labels and the policy-for NADs`)];
};

/** A pod peer that matches no pod on the policy's networks: it allows nothing. */
export const checkPeersMatch: LintCheck = (target, ctx) => {
  const { policy } = target;
  if (policy.networks.length === 0) return [];
  const pods = attached(ctx, policy);
  const out: Finding[] = [];
  for (const direction of DIRECTIONS) {
    policy[direction]?.forEach((rule, i) => {
      rule.peers?.forEach((peer, k) => {
        if (peer.kind !== "pods") return;
        if (pods.some((pod) => peerSelects(peer, policy.namespace, pod, namespaceLabels(ctx.snapshot, pod.namespace)))) return;
        const scope = peer.namespaceSelector ? "" : ` (a podSelector alone looks in ${policy.namespace} only; add namespaceSelector: {} for every namespace)`;
        out.push(finding(target, "warning", "peer-matches-nothing", `spec.${direction}[${i}].${peerField(direction)}[${k}]`, `matches no pod on ${policy.networks.join(", ")}, so it allows nothing; check its selectors${scope}`));
      });
    });
  }
  return out;
};

/** A named port that no pod it resolves against declares (ingress: the selected pods; egress: the destination pods). */
export const checkNamedPorts: LintCheck = (target, ctx) => {
  const { policy } = target;
  if (policy.networks.length === 0) return [];
  const pods = attached(ctx, policy);
  const selected = pods.filter((pod) => ctx.model.selectedPods(policy.key).has(pod.key));
  const out: Finding[] = [];
  for (const direction of DIRECTIONS) {
    policy[direction]?.forEach((rule, i) => {
      rule.ports?.forEach((port, k) => {
        if (port.kind !== "named") return;
        const path = `spec.${direction}[${i}].ports[${k}]`;
        if (direction === "egress" && rule.peers?.every((p) => p.kind === "ipBlock")) {
          out.push(finding(target, "warning", "named-port-ip-block", path, `named port "${port.name}" never matches an ipBlock destination, so it allows nothing; give the port number`));
          return;
        }
        const candidates =
          direction === "ingress"
            ? selected
            : pods.filter((pod) => !rule.peers || rule.peers.some((peer) => peer.kind === "pods" && peerSelects(peer, policy.namespace, pod, namespaceLabels(ctx.snapshot, pod.namespace))));
        if (candidates.length === 0 || candidates.some((pod) => pod.namedPorts.has(namedPortKey(port.name, port.protocol)))) return;
        const whose = direction === "ingress" ? "selected pod" : "destination pod";
        out.push(finding(target, "warning", "named-port-undeclared", path, `no ${whose} declares port "${port.name}" (${port.protocol}), so it allows nothing; name the port in the pods' containerPorts or give its number`));
      });
    });
  }
  return out;
};

/** Every address a policy's networks hand out or use: the NADs' IPAM ranges and the attached pods' addresses. */
function networkRanges(ctx: LintContext, policy: Policy): AddrRange[] {
  const ranges: AddrRange[] = [];
  for (const nad of policy.networks) {
    for (const ipam of checkCniConfig(ctx.snapshot.nads.get(nad)!.spec?.config).ipams) for (const r of ipam.ranges) ranges.push({ family: r.family, from: r.start, to: r.end });
  }
  for (const pod of attached(ctx, policy)) for (const nad of policy.networks) ranges.push(...(pod.attachments.get(nad)?.ranges ?? []));
  return ranges;
}

const overlaps = (cidr: Cidr, r: AddrRange): boolean => r.family === cidr.family && r.from <= cidrLast(cidr) && r.to >= cidr.network;

/** ipBlocks: an `except` not strictly inside its `cidr` (error: it excludes nothing), a cidr that no address of the networks is in (warning). */
export const checkIpBlocks: LintCheck = (target, ctx) => {
  const out: Finding[] = [];
  let known: AddrRange[] | undefined;
  for (const direction of DIRECTIONS) {
    for (const rule of rulesOf(target, direction)) {
      rule.peers?.forEach((peer, k) => {
        if (!peer.ipBlock) return;
        const path = `${rule.path}.${peerField(direction)}[${k}].ipBlock`;
        const cidr = parseCidr(peer.ipBlock.cidr.trim());
        if (!cidr) return; // invalid: reported by checkInvalidParts
        (peer.ipBlock.except ?? []).forEach((text, e) => {
          const ex = parseCidr(text.trim(), { allowBare: true });
          if (!ex) return;
          const inside = ex.family === cidr.family && ex.prefix > cidr.prefix && ex.network >= cidr.network && cidrLast(ex) <= cidrLast(cidr);
          if (!inside) out.push(finding(target, "error", "except-outside-cidr", `${path}.except[${e}]`, `${text} is not strictly inside ${peer.ipBlock!.cidr}, so it excludes ${ex.family !== cidr.family || !cidrsOverlap(ex, cidr) ? "nothing" : "only part of what it names"}; correct the address or the cidr`));
        });
        known ??= networkRanges(ctx, target.policy);
        if (target.policy.networks.length > 0 && known.length > 0 && !known.some((r) => overlaps(cidr, r))) {
          out.push(finding(target, "warning", "cidr-off-network", `${path}.cidr`, `${peer.ipBlock.cidr} overlaps no address of ${target.policy.networks.join(", ")} (its IPAM ranges and pods), so it matches nothing there; check the CIDR`));
        }
      });
    }
  }
  return out;
};

// ---- redundant rules: structural coverage, true whatever the pods and labels ----

type Requirement = { key: string; operator: string; values: string[] };

function requirements(selector: LabelSelector | null | undefined): Requirement[] {
  const out: Requirement[] = Object.entries(selector?.matchLabels ?? {}).map(([key, value]) => ({ key, operator: "In", values: [value] }));
  for (const e of selector?.matchExpressions ?? []) out.push({ key: e.key, operator: e.operator, values: [...(e.values ?? [])].sort() });
  return out;
}

/** `outer` selects everything `inner` selects: each requirement of outer is one of inner's. */
function selectorCovers(outer: LabelSelector | null | undefined, inner: LabelSelector | null | undefined): boolean {
  const innerReqs = requirements(inner).map((r) => JSON.stringify(r));
  return requirements(outer).every((r) => innerReqs.includes(JSON.stringify(r)));
}

function peerCovers(outer: PolicyPeer, inner: PolicyPeer, namespace: string, outerRanges: readonly AddrRange[], innerRanges: readonly AddrRange[]): boolean {
  if (inner.ipBlock) return outer.ipBlock != null && innerRanges.every((r) => outerRanges.some((o) => o.family === r.family && o.from <= r.from && r.to <= o.to));
  if (outer.ipBlock) return false;
  const ownNamespace = { matchLabels: { [NAMESPACE_NAME]: namespace } };
  const nsCovered = outer.namespaceSelector == null ? inner.namespaceSelector == null : selectorCovers(outer.namespaceSelector, inner.namespaceSelector ?? ownNamespace);
  return nsCovered && selectorCovers(outer.podSelector, inner.podSelector);
}

function portsCover(outer: readonly PolicyPort[] | undefined, inner: readonly PolicyPort[] | undefined): boolean {
  if (!outer) return true;
  if (!inner) return false;
  return inner.every((p) => {
    const protocol = p.protocol ?? "TCP";
    const same = outer.filter((o) => (o.protocol ?? "TCP") === protocol);
    if (same.some((o) => o.port == null)) return true;
    if (p.port == null) return false;
    if (typeof p.port === "string") return same.some((o) => o.port === p.port);
    const from = p.port;
    const to = p.endPort ?? from;
    const merged = mergeAddrRanges(same.filter((o) => typeof o.port === "number").map((o) => ({ family: 4 as const, from: BigInt(o.port as number), to: BigInt(o.endPort ?? (o.port as number)) })));
    return merged.some((r) => r.from <= BigInt(from) && BigInt(to) <= r.to);
  });
}

/** A rule whose every allowed flow another rule of the same policy and direction allows too. */
export const checkRedundantRules: LintCheck = (target) => {
  const out: Finding[] = [];
  for (const direction of DIRECTIONS) {
    const rules = rulesOf(target, direction);
    const parsed = target.policy[direction] ?? [];
    const ranges = (i: number, k: number): readonly AddrRange[] => {
      const peer = parsed[i]?.peers?.[k];
      return peer?.kind === "ipBlock" ? peer.ranges : [];
    };
    const covers = (o: (typeof rules)[number], r: (typeof rules)[number]): boolean =>
      portsCover(o.ports, r.ports) &&
      (!o.peers || (r.peers !== undefined && r.peers.every((p, k) => o.peers!.some((q, m) => peerCovers(q, p, target.policy.namespace, ranges(o.index, m), ranges(r.index, k))))));
    for (const r of rules) {
      // Of two rules that allow the same, the later one is reported.
      const by = rules.find((o) => o.index !== r.index && covers(o, r) && (o.index < r.index || !covers(r, o)));
      if (by) out.push(finding(target, "warning", "redundant-rule", r.path, `allows nothing that ${by.path} does not allow already; remove it, or narrow ${by.path} if it allows more than meant`));
    }
  }
  return out;
};

/** A rule that allows every peer on every port. */
function allowsAll(target: LintTarget, direction: Direction): number | undefined {
  return rulesOf(target, direction).find((r) => !r.peers && !r.ports)?.index;
}

/**
 * Another policy on a shared network allows everything in a direction (an allow-all rule) to pods
 * this policy isolates in that direction: allows are a union, so this policy restricts nothing there.
 */
export const checkAllowAllBeside: LintCheck = (target, ctx) => {
  const { policy } = target;
  const out: Finding[] = [];
  for (const direction of DIRECTIONS) {
    if (!policy[direction] || allowsAll(target, direction) !== undefined) continue;
    const mine = ctx.model.selectedPods(policy.key);
    for (const other of ctx.model.policies.values()) {
      if (other.key === policy.key || other.namespace !== policy.namespace || !other.networks.some((n) => policy.networks.includes(n))) continue;
      const raw = ctx.snapshot.policies.get(other.key);
      if (!raw) continue;
      const rule = allowsAll({ raw, policy: other }, direction);
      if (rule === undefined) continue;
      const shared = [...ctx.model.selectedPods(other.key)].filter((key) => mine.has(key));
      if (shared.length === 0) continue;
      const pods = shared.length > 3 ? `${shared.slice(0, 3).join(", ")} and ${shared.length - 3} more` : shared.join(", ");
      out.push(
        finding(target, "warning", "allow-all-beside", `spec.${direction}`, `MultiNetworkPolicy ${other.key} spec.${direction}[${rule}] allows all ${direction} to ${pods}, which this policy restricts, so this policy restricts nothing there (allows are a union); narrow that rule or its podSelector`),
      );
    }
  }
  return out;
};

/** Parts of the policy the engine cannot read (invalid selectors, peers, ports): they match nothing. */
export const checkInvalidParts: LintCheck = (target) =>
  target.policy.problems
    .filter((p) => p.code !== "policy.nad-missing" && p.code !== "policy.no-policy-for")
    .map((p) => {
      const path = p.path.replace(`MultiNetworkPolicy ${target.policy.key}: `, "");
      return finding(target, "error", "invalid", path, `${p.message}; correct it (the API server with nadguard's webhook refuses it)`);
    });

/** Every check, in the order findings are listed for a policy. */
export const LINT_CHECKS: readonly LintCheck[] = [
  checkPolicyFor,
  checkNadEnforced,
  checkInvalidParts,
  checkSelectsAttached,
  checkPeersMatch,
  checkNamedPorts,
  checkIpBlocks,
  checkRedundantRules,
  checkAllowAllBeside,
];

/** Every finding of every policy, policies in key order. */
export function lintPolicies(ctx: LintContext, checks: readonly LintCheck[] = LINT_CHECKS): Finding[] {
  const keys = [...ctx.snapshot.policies.keys()].sort();
  return keys.flatMap((key) => {
    const target = { raw: ctx.snapshot.policies.get(key)!, policy: ctx.model.policies.get(key)! };
    return checks.flatMap((check) => check(target, ctx));
  });
}
