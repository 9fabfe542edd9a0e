// Each lint check on its own, table-driven, on the conformance grid (x/y/z × a/b/c on nets/blue and
// nets/red, macvlan): a case that produces the finding and a near miss that does not.
import { describe, expect, it } from "vitest";
import { parseConfig } from "../config/config.js";
import { gridSnapshot, policy } from "../../test/policy-conformance/grid.js";
import {
  type LintCheck,
  checkAllowAllBeside,
  checkInvalidParts,
  checkIpBlocks,
  checkNadEnforced,
  checkNamedPorts,
  checkPeersMatch,
  checkPolicyFor,
  checkRedundantRules,
  checkSelectsAttached,
  lintPolicies,
} from "./lint.js";
import { buildModel } from "./model.js";

interface Case {
  name: string;
  policies: unknown[];
  config?: unknown;
  /** `severity code object path`, and a fragment of the message. */
  expected: [string, string][];
}

function run(check: LintCheck, c: Case): [string, string][] {
  const snapshot = gridSnapshot(...c.policies);
  const config = parseConfig(c.config ?? {});
  return lintPolicies({ snapshot, config, model: buildModel(snapshot, config) }, [check]).map((f) => [`${f.severity} ${f.code} ${f.object} ${f.path}`, f.message]);
}

function table(check: LintCheck, cases: Case[]): void {
  it.each(cases)("$name", (c) => {
    const got = run(check, c);
    expect(got.map(([head]) => head)).toEqual(c.expected.map(([head]) => head));
    got.forEach(([, message], i) => expect(message).toContain(c.expected[i]![1]));
  });
}

const PF = 'metadata.annotations["k8s.v1.cni.cncf.io/policy-for"]';
const all = {};

describe("checkPolicyFor", () => {
  table(checkPolicyFor, [
    { name: "a NAD that does not exist", policies: [policy("x", "p", { podSelector: all }, "nets/green")], expected: [[`error lint.nad-missing MultiNetworkPolicy x/p ${PF}`, "names NAD nets/green, which does not exist, so the policy protects nothing on it; correct the name or create the NAD (NADs of nets: blue, red)"]] },
    { name: "a bare name in a namespace without NADs", policies: [policy("x", "p", { podSelector: all }, "blue")], expected: [[`error lint.nad-missing MultiNetworkPolicy x/p ${PF}`, "names NAD x/blue, which does not exist"]] },
    { name: "no policy-for", policies: [policy("x", "p", { podSelector: all }, null)], expected: [[`error lint.no-policy-for MultiNetworkPolicy x/p ${PF}`, "names no NAD, so the policy applies to nothing"]] },
    { name: "near miss: NADs that exist", policies: [policy("x", "p", { podSelector: all }, "nets/blue, nets/red")], expected: [] },
  ]);
});

describe("checkNadEnforced", () => {
  table(checkNadEnforced, [
    { name: "a CNI type outside enforcement.networkPlugins", policies: [policy("x", "p", { podSelector: all })], config: { enforcement: { networkPlugins: ["ipvlan"] } }, expected: [[`error lint.nad-not-enforced MultiNetworkPolicy x/p ${PF}`, "NAD nets/blue has CNI type macvlan, which is not in enforcement.networkPlugins (ipvlan), so the policy is not enforced on it"]] },
    { name: "near miss: the default plugins", policies: [policy("x", "p", { podSelector: all })], expected: [] },
  ]);
});

describe("checkSelectsAttached", () => {
  table(checkSelectsAttached, [
    { name: "a podSelector that selects nothing", policies: [policy("x", "p", { podSelector: { matchLabels: { pod: "zz" } } })], expected: [["warning lint.selects-no-attached-pod MultiNetworkPolicy x/p spec.podSelector", "selects no pod in x, so the policy isolates nothing now"]] },
    { name: "a namespace without pods", policies: [policy("w", "p", { podSelector: all })], expected: [["warning lint.selects-no-attached-pod MultiNetworkPolicy w/p spec.podSelector", "selects no pod in w"]] },
    { name: "near miss: one pod", policies: [policy("x", "p", { podSelector: { matchLabels: { pod: "a" } } })], expected: [] },
  ]);
});

describe("checkPeersMatch", () => {
  table(checkPeersMatch, [
    { name: "a podSelector alone, looking in the policy's namespace", policies: [policy("w", "p", { podSelector: all, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "a" } } }] }] })], expected: [["warning lint.peer-matches-nothing MultiNetworkPolicy w/p spec.ingress[0].from[0]", "matches no pod on nets/blue, so it allows nothing; check its selectors (a podSelector alone looks in w only; add namespaceSelector: {} for every namespace)"]] },
    { name: "a namespaceSelector matching no namespace", policies: [policy("x", "p", { podSelector: all, egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: "q" } } }] }] })], expected: [["warning lint.peer-matches-nothing MultiNetworkPolicy x/p spec.egress[0].to[0]", "matches no pod on nets/blue, so it allows nothing; check its selectors"]] },
    { name: "near miss: pods of another namespace", policies: [policy("w", "p", { podSelector: all, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "a" } } }] }] })], expected: [] },
  ]);
});

describe("checkNamedPorts", () => {
  table(checkNamedPorts, [
    { name: "ingress: no selected pod declares it", policies: [policy("x", "p", { podSelector: { matchLabels: { pod: "c" } }, ingress: [{ ports: [{ port: "web" }] }] })], expected: [["warning lint.named-port-undeclared MultiNetworkPolicy x/p spec.ingress[0].ports[0]", 'no selected pod declares port "web" (TCP), so it allows nothing']] },
    { name: "near miss: a selected pod declares it", policies: [policy("x", "p", { podSelector: all, ingress: [{ ports: [{ port: "web" }] }] })], expected: [] },
    { name: "egress: no destination pod declares it", policies: [policy("x", "p", { podSelector: all, egress: [{ to: [{ namespaceSelector: {}, podSelector: { matchLabels: { pod: "c" } } }], ports: [{ port: "web" }] }] })], expected: [["warning lint.named-port-undeclared MultiNetworkPolicy x/p spec.egress[0].ports[0]", 'no destination pod declares port "web" (TCP)']] },
    { name: "egress: only ipBlock destinations", policies: [policy("x", "p", { podSelector: all, egress: [{ to: [{ ipBlock: { cidr: "198.18.0.0/24" } }], ports: [{ port: "dns", protocol: "UDP" }] }] })], expected: [["warning lint.named-port-ip-block MultiNetworkPolicy x/p spec.egress[0].ports[0]", 'named port "dns" never matches an ipBlock destination']] },
    { name: "near miss: a destination declares it with that protocol", policies: [policy("x", "p", { podSelector: all, egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: "dns", protocol: "UDP" }] }] })], expected: [] },
  ]);
});

describe("checkIpBlocks", () => {
  const block = (ipBlock: unknown) => policy("x", "p", { podSelector: all, ingress: [{ from: [{ ipBlock }] }] });
  const at = "MultiNetworkPolicy x/p spec.ingress[0].from[0].ipBlock";
  table(checkIpBlocks, [
    { name: "an except outside the cidr", policies: [block({ cidr: "198.18.0.0/24", except: ["198.18.1.5"] })], expected: [[`error lint.except-outside-cidr ${at}.except[0]`, "198.18.1.5 is not strictly inside 198.18.0.0/24, so it excludes nothing; correct the address or the cidr"]] },
    { name: "an except of the other family", policies: [block({ cidr: "198.18.0.0/24", except: ["fd00:b::/64"] })], expected: [[`error lint.except-outside-cidr ${at}.except[0]`, "excludes nothing"]] },
    { name: "an except wider than the cidr", policies: [block({ cidr: "198.18.0.0/24", except: ["198.18.0.0/23"] })], expected: [[`error lint.except-outside-cidr ${at}.except[0]`, "excludes only part of what it names"]] },
    { name: "near miss: an except inside", policies: [block({ cidr: "198.18.0.0/24", except: ["198.18.0.5", "198.18.0.128/25"] })], expected: [] },
    { name: "a cidr off the networks", policies: [block({ cidr: "198.19.200.0/24" })], expected: [[`warning lint.cidr-off-network ${at}.cidr`, "198.19.200.0/24 overlaps no address of nets/blue (its IPAM ranges and pods), so it matches nothing there"]] },
    { name: "near miss: a cidr around the pods", policies: [block({ cidr: "198.18.0.0/16" })], expected: [] },
  ]);
});

describe("checkRedundantRules", () => {
  const rules = (ingress: unknown[]) => [policy("x", "p", { podSelector: all, ingress })];
  const fromY = { namespaceSelector: { matchLabels: { ns: "y" } } };
  const fromYa = { namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "a" } } };
  table(checkRedundantRules, [
    { name: "a narrower peer and port", policies: rules([{ from: [fromY] }, { from: [fromYa], ports: [{ port: 80 }] }]), expected: [["warning lint.redundant-rule MultiNetworkPolicy x/p spec.ingress[1]", "allows nothing that spec.ingress[0] does not allow already"]] },
    { name: "the same rule twice: the later one", policies: rules([{ from: [fromYa], ports: [{ port: 80 }] }, { from: [fromYa], ports: [{ port: 80 }] }]), expected: [["warning lint.redundant-rule MultiNetworkPolicy x/p spec.ingress[1]", "spec.ingress[0]"]] },
    { name: "beside an allow-all rule", policies: rules([{ from: [fromYa], ports: [{ port: 80, endPort: 90 }] }, {}]), expected: [["warning lint.redundant-rule MultiNetworkPolicy x/p spec.ingress[0]", "spec.ingress[1]"]] },
    { name: "a port range inside another", policies: rules([{ from: [fromY], ports: [{ port: 80, endPort: 90 }] }, { from: [fromY], ports: [{ port: 85 }] }]), expected: [["warning lint.redundant-rule MultiNetworkPolicy x/p spec.ingress[1]", "spec.ingress[0]"]] },
    { name: "an ipBlock inside another", policies: rules([{ from: [{ ipBlock: { cidr: "198.18.0.0/16" } }] }, { from: [{ ipBlock: { cidr: "198.18.0.0/24", except: ["198.18.0.1"] } }] }]), expected: [["warning lint.redundant-rule MultiNetworkPolicy x/p spec.ingress[1]", "spec.ingress[0]"]] },
    { name: "near miss: other ports", policies: rules([{ from: [fromY], ports: [{ port: 80 }] }, { from: [fromYa], ports: [{ port: 81 }] }]), expected: [] },
    { name: "near miss: other protocol", policies: rules([{ from: [fromY], ports: [{ port: 80 }] }, { from: [fromY], ports: [{ port: 80, protocol: "UDP" }] }]), expected: [] },
    { name: "near miss: a podSelector alone is not every namespace", policies: rules([{ from: [{ podSelector: {} }] }, { from: [fromYa] }]), expected: [] },
  ]);
});

describe("checkAllowAllBeside", () => {
  const allowAll = (policyFor = "nets/blue") => policy("x", "open", { podSelector: all, ingress: [{}] }, policyFor);
  const restrict = policy("x", "only-y", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] });
  table(checkAllowAllBeside, [
    { name: "an allow-all policy on the same pods and network", policies: [allowAll(), restrict], expected: [["warning lint.allow-all-beside MultiNetworkPolicy x/only-y spec.ingress", "MultiNetworkPolicy x/open spec.ingress[0] allows all ingress to x/a, which this policy restricts, so this policy restricts nothing there"]] },
    { name: "beside a default deny", policies: [allowAll(), policy("x", "deny", { podSelector: all, policyTypes: ["Ingress"] })], expected: [["warning lint.allow-all-beside MultiNetworkPolicy x/deny spec.ingress", "allows all ingress to x/a, x/b, x/c"]] },
    { name: "near miss: another network", policies: [allowAll("nets/red"), restrict], expected: [] },
    { name: "near miss: egress only", policies: [policy("x", "open", { podSelector: all, policyTypes: ["Egress"], egress: [{}] }), restrict], expected: [] },
  ]);
});

describe("checkInvalidParts", () => {
  table(checkInvalidParts, [
    { name: "an In without values", policies: [policy("x", "p", { podSelector: { matchExpressions: [{ key: "pod", operator: "In" }] } })], expected: [["error lint.invalid MultiNetworkPolicy x/p spec.podSelector.matchExpressions[0]", "operator In needs at least one value; the selector matches nothing; correct it"]] },
    { name: "near miss: valid", policies: [policy("x", "p", { podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["a"] }] } })], expected: [] },
  ]);
});
