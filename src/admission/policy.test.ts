import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import type { AdmissionRequest } from "../api/admission-review.js";
import { loadStateDir } from "../cluster/state-dir.js";
import { createRequest, envOf, snapshotFrom } from "../../test/support/cluster.js";
import type { AdmissionEnv, Decision } from "./decision.js";
import { admitPolicy, isPortName } from "./policy.js";

const NS = "fixtures";
const POLICY_FOR = `metadata.annotations["k8s.v1.cni.cncf.io/policy-for"]`;

interface PolicyInput {
  name?: string;
  namespace?: string;
  /** The policy-for annotation; null leaves it out. Default `lan`. */
  policyFor?: string | null;
  labels?: Record<string, string>;
}

/** A MultiNetworkPolicy manifest with the given spec. */
function mnp(spec: Record<string, unknown>, input: PolicyInput = {}): Record<string, unknown> {
  const policyFor = input.policyFor === undefined ? "lan" : input.policyFor;
  return {
    apiVersion: "k8s.cni.cncf.io/v1beta1",
    kind: "MultiNetworkPolicy",
    metadata: {
      name: input.name ?? "p",
      namespace: input.namespace ?? NS,
      ...(policyFor !== null && { annotations: { "k8s.v1.cni.cncf.io/policy-for": policyFor } }),
      ...(input.labels && { labels: input.labels }),
    },
    spec,
  };
}

/** Ingress rules with one rule of these peers and ports. */
const ingress = (from?: unknown[], ports?: unknown[]): Record<string, unknown> => ({
  podSelector: {},
  ingress: [{ ...(from && { from }), ...(ports && { ports }) }],
});
const egress = (to?: unknown[], ports?: unknown[]): Record<string, unknown> => ({
  podSelector: {},
  policyTypes: ["Egress"],
  egress: [{ ...(to && { to }), ...(ports && { ports }) }],
});
const fromPorts = (...ports: unknown[]): Record<string, unknown> => ingress([{ namespaceSelector: {} }], ports);
const fromBlock = (ipBlock: unknown): Record<string, unknown> => ingress([{ ipBlock }]);
const withPodSelector = (podSelector: unknown): Record<string, unknown> => ({ podSelector, policyTypes: ["Ingress"] });

const CLUSTER = snapshotFrom(`
apiVersion: v1
kind: Namespace
metadata: { name: fixtures, labels: { team: alpha } }
---
apiVersion: v1
kind: Namespace
metadata: { name: other, labels: { team: beta } }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: lan, namespace: fixtures }
spec: { config: '{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","ipam":{"type":"whereabouts","range":"198.18.10.0/24","gateway":"198.18.10.1"}}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: data, namespace: fixtures }
spec: { config: '{"cniVersion":"1.0.0","type":"ipvlan","master":"eth2","ipam":{"type":"whereabouts","range":"198.18.20.0/24","gateway":"198.18.20.1"}}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: ovn, namespace: fixtures }
spec: { config: '{"cniVersion":"1.0.0","type":"ovn-k8s-cni-overlay"}' }
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: { name: node-file, namespace: fixtures }
spec: { config: "" }
---
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: fixtures, labels: { app: web } }
spec:
  containers:
    - name: app
      ports: [{ name: http, containerPort: 8080 }, { name: metrics, containerPort: 9090, protocol: TCP }]
---
apiVersion: v1
kind: Pod
metadata: { name: db, namespace: fixtures, labels: { app: db } }
spec: { containers: [{ name: db }] }
---
apiVersion: v1
kind: Pod
metadata: { name: host, namespace: fixtures, labels: { app: host } }
spec: { hostNetwork: true, containers: [{ name: agent, ports: [{ name: agent, containerPort: 7000 }] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: dns, namespace: other, labels: { app: dns } }
spec: { containers: [{ name: dns, ports: [{ name: dns, containerPort: 53, protocol: UDP }] }] }
`);
const ENV = envOf(CLUSTER);

function create(object: Record<string, unknown>, env: AdmissionEnv = ENV): Decision {
  return admitPolicy(createRequest(object), env, "validate");
}

function update(old: Record<string, unknown>, object: Record<string, unknown>, env: AdmissionEnv = ENV): Decision {
  const request: AdmissionRequest = { ...createRequest(object), operation: "UPDATE", oldObject: old };
  return admitPolicy(request, env, "validate");
}

const LABEL_KEY = "optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.'";
const LABEL_VALUE = "at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends";
const PORT_NAME = "at most 15 lower-case letters, digits and '-', with a letter, no '-' at either end or twice in a row";
const NAD_REF = "is not a NAD reference (name or namespace/name, each a DNS-1123 label)";
const expr = (key: string, operator: string, values?: string[]): Record<string, unknown> => ({ key, operator, ...(values && { values }) });

// Each case: the policy, then the exact denial message after `MultiNetworkPolicy fixtures/p: `.
const REJECTIONS: Array<[string, Record<string, unknown>, string]> = [
  // policy-for
  ["no policy-for", mnp(withPodSelector({}), { policyFor: null }), `${POLICY_FOR}: is missing; name the NADs the policy guards, e.g. "lan" or "tenant-a/lan", or it applies to nothing`],
  ["policy-for blank", mnp(withPodSelector({}), { policyFor: "  " }), `${POLICY_FOR}: is empty; name the NADs the policy guards, e.g. "lan" or "tenant-a/lan", or it applies to nothing`],
  ["policy-for with an empty element", mnp(withPodSelector({}), { policyFor: "lan,,data" }), `${POLICY_FOR}: element 2 is empty; remove the extra ','`],
  ["policy-for with a trailing comma", mnp(withPodSelector({}), { policyFor: "lan, " }), `${POLICY_FOR}: element 2 is empty; remove the extra ','`],
  ["policy-for upper case", mnp(withPodSelector({}), { policyFor: "Lan" }), `${POLICY_FOR}: "Lan" ${NAD_REF}`],
  ["policy-for with two slashes", mnp(withPodSelector({}), { policyFor: "a/b/c" }), `${POLICY_FOR}: "a/b/c" ${NAD_REF}`],
  ["policy-for namespace with '_'", mnp(withPodSelector({}), { policyFor: "tenant_a/lan" }), `${POLICY_FOR}: "tenant_a/lan" ${NAD_REF}`],
  ["policy-for name with a dot", mnp(withPodSelector({}), { policyFor: "net.v1" }), `${POLICY_FOR}: "net.v1" ${NAD_REF}`],
  ["policy-for without namespace before '/'", mnp(withPodSelector({}), { policyFor: "/lan" }), `${POLICY_FOR}: "/lan" ${NAD_REF}`],
  // selectors
  ["matchLabels key with a space", mnp(withPodSelector({ matchLabels: { "bad key": "x" } })), `spec.podSelector.matchLabels: "bad key" is not a label key (${LABEL_KEY})`],
  ["matchLabels key with a bad prefix", mnp(withPodSelector({ matchLabels: { "Example.com/app": "x" } })), `spec.podSelector.matchLabels: "Example.com/app" is not a label key (${LABEL_KEY})`],
  ["matchLabels value with a space", mnp(withPodSelector({ matchLabels: { app: "my app" } })), `spec.podSelector.matchLabels["app"]: "my app" is not a label value (${LABEL_VALUE})`],
  ["matchLabels value of 64 characters", mnp(withPodSelector({ matchLabels: { app: "a".repeat(64) } })), `spec.podSelector.matchLabels["app"]: "${"a".repeat(64)}" is not a label value (${LABEL_VALUE})`],
  ["unknown operator", mnp(withPodSelector({ matchExpressions: [expr("app", "Equals", ["web"])] })), `spec.podSelector.matchExpressions[0].operator: "Equals" is not an operator; use In, NotIn, Exists or DoesNotExist`],
  ["lower-case operator", mnp(withPodSelector({ matchExpressions: [expr("app", "in", ["web"])] })), `spec.podSelector.matchExpressions[0].operator: "in" is not an operator; use In, NotIn, Exists or DoesNotExist`],
  ["operator missing", mnp(withPodSelector({ matchExpressions: [{ key: "app", values: ["web"] }] })), "spec.podSelector.matchExpressions[0].operator: is missing; use In, NotIn, Exists or DoesNotExist"],
  ["key missing", mnp(withPodSelector({ matchExpressions: [{ operator: "Exists" }] })), "spec.podSelector.matchExpressions[0].key: is missing"],
  ["empty key", mnp(withPodSelector({ matchExpressions: [expr("", "Exists")] })), `spec.podSelector.matchExpressions[0].key: "" is not a label key (${LABEL_KEY})`],
  ["In without values", mnp(withPodSelector({ matchExpressions: [expr("app", "In")] })), "spec.podSelector.matchExpressions[0].values: operator In needs at least one value"],
  ["NotIn with an empty list", mnp(withPodSelector({ matchExpressions: [expr("app", "NotIn", [])] })), "spec.podSelector.matchExpressions[0].values: operator NotIn needs at least one value"],
  ["Exists with values", mnp(withPodSelector({ matchExpressions: [expr("app", "Exists", ["web"])] })), "spec.podSelector.matchExpressions[0].values: must be empty for operator Exists"],
  ["DoesNotExist with values", mnp(withPodSelector({ matchExpressions: [expr("app", "DoesNotExist", ["web"])] })), "spec.podSelector.matchExpressions[0].values: must be empty for operator DoesNotExist"],
  ["In with a bad value", mnp(withPodSelector({ matchExpressions: [expr("app", "In", ["web", "-db"])] })), `spec.podSelector.matchExpressions[0].values[1]: "-db" is not a label value (${LABEL_VALUE})`],
  ["bad namespaceSelector in a peer", mnp(ingress([{ namespaceSelector: { matchExpressions: [expr("team", "In")] } }])), "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values: operator In needs at least one value"],
  ["bad podSelector in an egress peer", mnp(egress([{ namespaceSelector: {}, podSelector: { matchLabels: { "a/b/c": "x" } } }])), `spec.egress[0].to[0].podSelector.matchLabels: "a/b/c" is not a label key (${LABEL_KEY})`],
  // policyTypes
  ["policy type in lower case", mnp({ podSelector: {}, policyTypes: ["ingress"] }), `spec.policyTypes[0]: "ingress" is not a policy type; use Ingress or Egress`],
  ["policy type listed twice", mnp({ podSelector: {}, policyTypes: ["Ingress", "Egress", "Ingress"] }), `spec.policyTypes[2]: "Ingress" is listed twice`],
  ["policyTypes a string", mnp({ podSelector: {}, policyTypes: "Ingress" }), "spec.policyTypes: Invalid input: expected array, received string"],
  // protocols and ports
  ["protocol in lower case", mnp(fromPorts({ protocol: "tcp", port: 80 })), `spec.ingress[0].ports[0].protocol: "tcp" is not a protocol; use TCP, UDP or SCTP`],
  ["protocol ICMP", mnp(fromPorts({ protocol: "ICMP" })), `spec.ingress[0].ports[0].protocol: "ICMP" is not a protocol; use TCP, UDP or SCTP`],
  ["port 0", mnp(fromPorts({ port: 0 })), "spec.ingress[0].ports[0].port: 0 is outside 1-65535"],
  ["port 65536", mnp(egress(undefined, [{ port: 65536 }])), "spec.egress[0].ports[0].port: 65536 is outside 1-65535"],
  ["port not an integer", mnp(fromPorts({ port: 80.5 })), "spec.ingress[0].ports[0].port: must be a port number (1-65535) or a port name, not 80.5"],
  ["port a boolean", mnp(fromPorts({ port: true })), "spec.ingress[0].ports[0].port: must be a port number (1-65535) or a port name, not true"],
  ["port a quoted number", mnp(fromPorts({ port: "80" })), `spec.ingress[0].ports[0].port: "80" is a string, so a port name, and names need a letter; write 80 without quotes`],
  ["port name in upper case", mnp(fromPorts({ port: "HTTP" })), `spec.ingress[0].ports[0].port: "HTTP" is not a port name (${PORT_NAME})`],
  ["port name of 16 characters", mnp(fromPorts({ port: "abcdefghijklmnop" })), `spec.ingress[0].ports[0].port: "abcdefghijklmnop" is not a port name (${PORT_NAME})`],
  ["port name ending in '-'", mnp(fromPorts({ port: "http-" })), `spec.ingress[0].ports[0].port: "http-" is not a port name (${PORT_NAME})`],
  ["port name with '--'", mnp(fromPorts({ port: "h--p" })), `spec.ingress[0].ports[0].port: "h--p" is not a port name (${PORT_NAME})`],
  ["port name empty", mnp(fromPorts({ port: "" })), `spec.ingress[0].ports[0].port: "" is not a port name (${PORT_NAME})`],
  ["endPort without port", mnp(fromPorts({ protocol: "TCP", endPort: 90 })), "spec.ingress[0].ports[0].endPort: needs a numeric port; set port to the first port of the range"],
  ["endPort with a named port", mnp(fromPorts({ port: "http", endPort: 90 })), `spec.ingress[0].ports[0].endPort: needs a numeric port, not the named port "http"`],
  ["endPort below port", mnp(fromPorts({ port: 8080, endPort: 8000 })), "spec.ingress[0].ports[0].endPort: 8000 is less than port 8080"],
  ["endPort above 65535", mnp(fromPorts({ port: 8080, endPort: 70000 })), "spec.ingress[0].ports[0].endPort: 70000 is outside 1-65535"],
  ["endPort a string", mnp(fromPorts({ port: 8080, endPort: "8090" })), `spec.ingress[0].ports[0].endPort: must be a port number (1-65535), not "8090"`],
  // ipBlock
  ["cidr a bare address", mnp(fromBlock({ cidr: "198.18.0.1" })), `spec.ingress[0].from[0].ipBlock.cidr: "198.18.0.1" is not a CIDR (address/prefix, e.g. "198.18.0.0/16")`],
  ["cidr prefix 33", mnp(fromBlock({ cidr: "198.18.0.0/33" })), `spec.ingress[0].from[0].ipBlock.cidr: "198.18.0.0/33" is not a CIDR (address/prefix, e.g. "198.18.0.0/16")`],
  ["cidr missing", mnp(fromBlock({ except: ["198.18.0.0/24"] })), "spec.ingress[0].from[0].ipBlock.cidr: is missing"],
  ["except not an address", mnp(fromBlock({ cidr: "198.18.0.0/16", except: ["198.18.1.0/24", "lan"] })), `spec.ingress[0].from[0].ipBlock.except[1]: "lan" is not an address or CIDR`],
  ["except of the other family", mnp(fromBlock({ cidr: "198.18.0.0/16", except: ["fd00::/64"] })), "spec.ingress[0].from[0].ipBlock.except[0]: fd00::/64 is IPv6 but cidr 198.18.0.0/16 is IPv4"],
  ["except outside cidr", mnp(fromBlock({ cidr: "198.18.0.0/16", except: ["198.19.0.0/24"] })), "spec.ingress[0].from[0].ipBlock.except[0]: 198.19.0.0/24 is not inside cidr 198.18.0.0/16"],
  ["bare except outside cidr", mnp(fromBlock({ cidr: "fd00:20::/64", except: ["fd00:21::1"] })), "spec.ingress[0].from[0].ipBlock.except[0]: fd00:21::1 is not inside cidr fd00:20::/64"],
  ["except equal to cidr", mnp(fromBlock({ cidr: "198.18.0.0/16", except: ["198.18.0.0/16"] })), "spec.ingress[0].from[0].ipBlock.except[0]: 198.18.0.0/16 covers all of cidr 198.18.0.0/16; an except must be strictly inside it"],
  ["except wider than cidr", mnp(fromBlock({ cidr: "198.18.4.0/24", except: ["198.18.0.0/16"] })), "spec.ingress[0].from[0].ipBlock.except[0]: 198.18.0.0/16 covers all of cidr 198.18.4.0/24; an except must be strictly inside it"],
  ["bare except of a /32 cidr", mnp(fromBlock({ cidr: "198.18.0.1/32", except: ["198.18.0.1"] })), "spec.ingress[0].from[0].ipBlock.except[0]: 198.18.0.1 covers all of cidr 198.18.0.1/32; an except must be strictly inside it"],
  // peers
  ["ipBlock with podSelector", mnp(ingress([{ ipBlock: { cidr: "198.18.0.0/16" }, podSelector: {} }])), "spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector in one peer; make them separate peers"],
  ["ipBlock with both selectors", mnp(egress([{ ipBlock: { cidr: "198.18.0.0/16" }, podSelector: {}, namespaceSelector: {} }])), "spec.egress[0].to[0]: ipBlock cannot be combined with podSelector and namespaceSelector in one peer; make them separate peers"],
  ["an empty ingress peer", mnp(ingress([{ namespaceSelector: {} }, {}])), "spec.ingress[0].from[1]: sets none of podSelector, namespaceSelector, ipBlock; to allow every source, leave out from"],
  ["an egress peer of nulls", mnp(egress([{ podSelector: null, ipBlock: null }])), "spec.egress[0].to[0]: sets none of podSelector, namespaceSelector, ipBlock; to allow every destination, leave out to"],
  // the object
  ["no spec", { ...mnp({}), spec: undefined }, "spec: is missing"],
  ["ingress an object", mnp({ podSelector: {}, ingress: { from: [] } }), "spec.ingress: Invalid input: expected array, received object"],
];

describe("admitPolicy: rejections", () => {
  it.each(REJECTIONS)("%s", (_label, object, message) => {
    const decision = create(object);
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toBe("invalid-policy");
    expect(decision.message).toBe(`MultiNetworkPolicy ${NS}/p: ${message}`);
  });

  it("lists several problems one per line, each with its path", () => {
    const decision = create(
      mnp(
        {
          podSelector: { matchExpressions: [expr("app", "In")] },
          ingress: [{ from: [{ ipBlock: { cidr: "198.18.0.0/16", except: ["198.19.0.0/24"] } }], ports: [{ port: 80, endPort: 79 }] }],
        },
        { policyFor: "lan,,Data" },
      ),
    );
    expect(decision.message).toBe(
      `MultiNetworkPolicy ${NS}/p: 5 problems:` +
        `\n- ${POLICY_FOR}: element 2 is empty; remove the extra ','` +
        `\n- ${POLICY_FOR}: "Data" ${NAD_REF}` +
        "\n- spec.podSelector.matchExpressions[0].values: operator In needs at least one value" +
        "\n- spec.ingress[0].from[0].ipBlock.except[0]: 198.19.0.0/24 is not inside cidr 198.18.0.0/16" +
        "\n- spec.ingress[0].ports[0].endPort: 79 is less than port 80",
    );
  });

  it("lists every schema problem, reworded where it helps", () => {
    const decision = create(mnp({ podSelector: {}, policyTypes: ["Both"], ingress: [{ ports: [{ protocol: "ICMP", port: [80] }] }] }));
    expect(decision.message).toBe(
      `MultiNetworkPolicy ${NS}/p: 3 problems:` +
        `\n- spec.policyTypes[0]: "Both" is not a policy type; use Ingress or Egress` +
        `\n- spec.ingress[0].ports[0].protocol: "ICMP" is not a protocol; use TCP, UDP or SCTP` +
        "\n- spec.ingress[0].ports[0].port: must be a port number (1-65535) or a port name, not an array",
    );
  });

  it("reports every problem in one pass: a wrong enum or type in one place hides none of the others", () => {
    const decision = create(
      mnp(
        {
          podSelector: { matchExpressions: [expr("app", "In"), expr("tier", "Sometimes", ["a"]), expr("zone", "Exists", ["x"])] },
          policyTypes: ["Ingress", "ingress", "Ingress"],
          ingress: [
            { from: [{ ipBlock: { cidr: "198.18.0.0/33" } }, { podSelector: { matchLabels: { app: 7 } } }, {}], ports: [{ protocol: "tcp", port: 0 }, { port: "HTTP", endPort: 90 }] },
          ],
          egress: "everywhere",
        },
        { policyFor: "lan,,Data" },
      ),
    );
    expect(decision.reason).toBe("invalid-policy");
    expect(decision.message).toBe(
      `MultiNetworkPolicy ${NS}/p: 14 problems:` +
        `\n- ${POLICY_FOR}: element 2 is empty; remove the extra ','` +
        `\n- ${POLICY_FOR}: "Data" ${NAD_REF}` +
        "\n- spec.podSelector.matchExpressions[0].values: operator In needs at least one value" +
        `\n- spec.podSelector.matchExpressions[1].operator: "Sometimes" is not an operator; use In, NotIn, Exists or DoesNotExist` +
        "\n- spec.podSelector.matchExpressions[2].values: must be empty for operator Exists" +
        `\n- spec.policyTypes[1]: "ingress" is not a policy type; use Ingress or Egress` +
        `\n- spec.policyTypes[2]: "Ingress" is listed twice` +
        `\n- spec.ingress[0].from[0].ipBlock.cidr: "198.18.0.0/33" is not a CIDR (address/prefix, e.g. "198.18.0.0/16")` +
        "\n- spec.ingress[0].from[1].podSelector.matchLabels.app: Invalid input: expected string, received number" +
        "\n- spec.ingress[0].from[2]: sets none of podSelector, namespaceSelector, ipBlock; to allow every source, leave out from" +
        // Denials list ten problems at most (the count above is the whole): the other four.
        "\n- and 4 more problems",
    );
  });

  it("names a generated policy by its generateName", () => {
    const object = mnp({ podSelector: {}, policyTypes: ["Sideways"] });
    const { name: _name, ...metadata } = object.metadata as Record<string, unknown>;
    const decision = create({ ...object, metadata: { ...metadata, generateName: "deny-" } });
    expect(decision.message).toBe(`MultiNetworkPolicy ${NS}/deny-<generated>: spec.policyTypes[0]: "Sideways" is not a policy type; use Ingress or Egress`);
  });
});

describe("admitPolicy: what is allowed", () => {
  it.each([
    ["ports 1 and 65535, endPort 65535", mnp(fromPorts({ port: 1 }, { port: 65000, endPort: 65535 }, { protocol: "UDP", port: 65535 }))],
    ["endPort equal to port", mnp(fromPorts({ port: 5432, endPort: 5432 }))],
    ["a named port of 15 characters with digits and '-'", mnp(fromPorts({ port: "a1-b2-c3-d4-e5f" }))],
    ["a protocol without port (all its ports)", mnp(fromPorts({ protocol: "SCTP" }))],
    ["excepts as bare addresses of both families", mnp(ingress([{ ipBlock: { cidr: "198.18.0.0/15", except: ["198.19.255.255"] } }, { ipBlock: { cidr: "fd00::/8", except: ["fd00::1", "fd12::/16"] } }]))],
    ["a cidr with host bits set (the API server accepts it)", mnp(fromBlock({ cidr: "198.18.0.1/16", except: ["198.18.1.0/24"] }))],
    ["policy-for with blanks around names and '/'", mnp(withPodSelector({}), { policyFor: " lan , fixtures / data " })],
    ["policy-for naming another namespace's NAD", mnp(withPodSelector({}), { policyFor: "other/lan" })],
    ["podSelector null (every pod, as the CRD allows)", mnp({ podSelector: null, policyTypes: ["Ingress"] })],
    ["a peer whose podSelector is null beside a namespaceSelector", mnp(ingress([{ podSelector: null, namespaceSelector: {} }]))],
    ["an empty label value", mnp(withPodSelector({ matchLabels: { app: "" } }))],
    ["label keys with a DNS prefix", mnp(withPodSelector({ matchLabels: { "app.kubernetes.io/name": "web" }, matchExpressions: [expr("example.com/tier", "NotIn", ["a", "b"])] }))],
    ["Exists with values: []", mnp(withPodSelector({ matchExpressions: [expr("app", "Exists", [])] }))],
    ["empty policyTypes, ingress and egress lists", mnp({ podSelector: {}, policyTypes: [], ingress: [], egress: [] })],
    ["ingress: [{}] (every source, every port)", mnp(ingress())],
    ["unknown fields (passed through)", mnp({ podSelector: {}, policyTypes: ["Ingress"], futureField: { x: 1 } })],
  ])("%s", (_label, object) => {
    const decision = create(object);
    expect(decision.message).toBeUndefined();
    expect(decision.allowed).toBe(true);
  });

  it("answers the same on both endpoints", () => {
    const object = mnp(fromPorts({ port: 0 }));
    expect(admitPolicy(createRequest(object), ENV, "mutate")).toEqual(admitPolicy(createRequest(object), ENV, "validate"));
  });

  it("allows a DELETE, even of an invalid policy", () => {
    const object = mnp(fromPorts({ port: 0 }), { policyFor: null });
    const { object: _object, ...base } = createRequest(object);
    expect(admitPolicy({ ...base, operation: "DELETE", oldObject: object }, ENV, "validate")).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
  });

  it("is asked as the API server would for a bare manifest (nadguard admit)", () => {
    const request = createRequest(mnp(withPodSelector({})));
    expect(request.kind).toEqual({ group: "k8s.cni.cncf.io", version: "v1beta1", kind: "MultiNetworkPolicy" });
    expect(request.resource).toEqual({ group: "k8s.cni.cncf.io", version: "v1beta1", resource: "multi-networkpolicies" });
    expect(request.namespace).toBe(NS);
  });
});

describe("isPortName (IANA_SVC_NAME)", () => {
  it.each([
    ["http", true],
    ["h2c", true],
    ["x-1", true],
    ["a".repeat(15), true],
    ["a".repeat(16), false],
    ["8080", false],
    ["-http", false],
    ["http-", false],
    ["ht--tp", false],
    ["Http", false],
    ["ht_tp", false],
    ["", false],
  ])("%s → %s", (name, valid) => {
    expect(isPortName(name)).toBe(valid);
  });
});

const sel = (labels: Record<string, string>): Record<string, unknown> => ({ matchLabels: labels });
const WEB = sel({ app: "web" });
const DNS_PEER = { namespaceSelector: {}, podSelector: sel({ app: "dns" }) };
const undefinedPort = (rule: number, port: number, name: string, protocol = "TCP", whose = "selected", direction = "ingress"): string =>
  `spec.${direction}[${rule}].ports[${port}]: no ${whose} pod defines port "${name}" (${protocol}); nothing will match it`;

// Each case: the policy, then the exact warnings (the policy is allowed).
const WARNINGS: Array<[string, Record<string, unknown>, string[]]> = [
  ["a policy that means what it says: nothing", mnp({ podSelector: WEB, ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: "http" }] }] }), []],
  [
    "policy-for NADs that do not exist",
    mnp(withPodSelector(WEB), { policyFor: "lan, missing, other/lan" }),
    ["NAD fixtures/missing does not exist yet; the policy applies to it once it is created", "NAD other/lan does not exist yet; the policy applies to it once it is created"],
  ],
  [
    "a NAD whose CNI type the enforcer does not handle",
    mnp(withPodSelector(WEB), { policyFor: "ovn" }),
    ["NAD fixtures/ovn: CNI type ovn-k8s-cni-overlay is not in enforcement.networkPlugins; nothing will be enforced on it"],
  ],
  [
    "a NAD with an empty config (the node's file: type unknown)",
    mnp(withPodSelector(WEB), { policyFor: "node-file" }),
    ["NAD fixtures/node-file: CNI type unknown (empty or unreadable config); nothing will be enforced on it"],
  ],
  ["a policy that selects no pod", mnp(withPodSelector(sel({ app: "nothing" }))), ["spec.podSelector selects no pod in fixtures at the moment; the policy isolates nothing yet"]],
  ["a policy that selects only hostNetwork pods (never isolated)", mnp(withPodSelector(sel({ app: "host" }))), ["spec.podSelector selects no pod in fixtures at the moment; the policy isolates nothing yet"]],
  [
    "ingress named port no selected pod defines",
    mnp({ podSelector: WEB, ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 443 }, { port: "https" }] }] }),
    [undefinedPort(0, 1, "https")],
  ],
  ["ingress named port defined for another protocol", mnp({ podSelector: WEB, ingress: [{ ports: [{ protocol: "UDP", port: "http" }] }] }), [undefinedPort(0, 0, "http", "UDP")]],
  ["ingress named port defined by one of the selected pods", mnp({ podSelector: {}, ingress: [{ ports: [{ port: "metrics" }] }] }), []],
  ["ingress named port and a policy that selects no pod: one warning", mnp({ podSelector: sel({ app: "nothing" }), ingress: [{ ports: [{ port: "https" }] }] }), ["spec.podSelector selects no pod in fixtures at the moment; the policy isolates nothing yet"]],
  ["egress named port of the peer pods", mnp({ podSelector: WEB, policyTypes: ["Egress"], egress: [{ to: [DNS_PEER], ports: [{ protocol: "UDP", port: "dns" }] }] }), []],
  ["egress named port without `to` (every pod)", mnp({ podSelector: WEB, policyTypes: ["Egress"], egress: [{ ports: [{ protocol: "UDP", port: "dns" }] }] }), []],
  [
    "egress named port the peer pods do not define",
    mnp({ podSelector: WEB, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: {}, podSelector: sel({ app: "db" }) }], ports: [{ protocol: "UDP", port: "dns" }] }] }),
    [undefinedPort(0, 0, "dns", "UDP", "destination", "egress")],
  ],
  [
    "egress named port defined by a pod in a namespace the peer does not select",
    mnp({ podSelector: WEB, policyTypes: ["Egress"], egress: [{ to: [{ namespaceSelector: sel({ team: "alpha" }) }], ports: [{ protocol: "UDP", port: "dns" }] }] }),
    [undefinedPort(0, 0, "dns", "UDP", "destination", "egress")],
  ],
  [
    "egress named port to ipBlocks only",
    mnp({ podSelector: WEB, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "198.18.0.0/15" } }], ports: [{ protocol: "UDP", port: "dns" }] }] }),
    [`spec.egress[0].ports[0]: named port "dns" never matches an ipBlock destination; nothing will match it`],
  ],
  [
    "rules of a direction policyTypes leaves out",
    mnp({ podSelector: WEB, policyTypes: ["Egress"], ingress: [{ ports: [{ port: "nope" }] }], egress: [{}] }),
    ["spec.ingress: ignored, since spec.policyTypes does not list Ingress"],
  ],
  [
    "podSelector alone in peers: once, naming the first",
    mnp({ podSelector: WEB, policyTypes: ["Ingress", "Egress"], ingress: [{ from: [DNS_PEER, { podSelector: sel({ app: "db" }) }] }], egress: [{ to: [{ podSelector: {} }] }] }),
    ["spec.ingress[0].from[1]: podSelector alone matches fixtures only; add namespaceSelector: {} for all namespaces"],
  ],
  [
    "several, in order: NADs, selection, named ports, peers",
    mnp({ podSelector: sel({ app: "nothing" }), policyTypes: ["Egress"], egress: [{ to: [{ podSelector: {} }], ports: [{ port: "https" }] }] }, { policyFor: "missing" }),
    [
      "NAD fixtures/missing does not exist yet; the policy applies to it once it is created",
      "spec.podSelector selects no pod in fixtures at the moment; the policy isolates nothing yet",
      undefinedPort(0, 0, "https", "TCP", "destination", "egress"),
      "spec.egress[0].to[0]: podSelector alone matches fixtures only; add namespaceSelector: {} for all namespaces",
    ],
  ],
  [
    "at most five named-port warnings, then a count",
    mnp({ podSelector: WEB, ingress: [{ ports: ["p-a", "p-b", "p-c", "p-d", "p-e", "p-f", "p-g"].map((port) => ({ port })) }] }),
    [...["p-a", "p-b", "p-c", "p-d", "p-e"].map((name, i) => undefinedPort(0, i, name)), "and 2 more named ports that no pod defines"],
  ],
];

describe("admitPolicy: warnings", () => {
  it.each(WARNINGS)("%s", (_label, object, warnings) => {
    const decision = create(object);
    expect(decision.message).toBeUndefined();
    expect(decision.allowed).toBe(true);
    expect(decision.warnings).toEqual(warnings);
  });

  it("does not warn about a CNI type listed in enforcement.networkPlugins", () => {
    const env = envOf(CLUSTER, { enforcement: { networkPlugins: ["macvlan", "ovn-k8s-cni-overlay"] } });
    expect(create(mnp(withPodSelector(WEB), { policyFor: "ovn" }), env).warnings).toEqual([]);
  });

  it("warns about a NAD that is missing with an empty snapshot, and selects no pod", () => {
    expect(create(mnp(withPodSelector({})), envOf(snapshotFrom())).warnings).toEqual([
      "NAD fixtures/lan does not exist yet; the policy applies to it once it is created",
      "spec.podSelector selects no pod in fixtures at the moment; the policy isolates nothing yet",
    ]);
  });

  it("keeps every warning under 120 characters, the longest one cut at the end", () => {
    const long = `${"n".repeat(63)}/${"m".repeat(63)}`;
    const [warning] = create(mnp(withPodSelector(WEB), { policyFor: long })).warnings;
    expect(warning).toBe(`${`NAD ${long} does not exist yet; the policy applies to it once it is created`.slice(0, 118)}…`);
    expect(warning!.length).toBe(119);
  });
});

describe("admitPolicy: updates judge only what changes", () => {
  const invalid = mnp(fromPorts({ port: 0 }), { labels: { team: "a" } });

  it("allows a label change on a policy whose spec predates the rules, without warnings", () => {
    const relabelled = mnp(fromPorts({ port: 0 }), { labels: { team: "b" } });
    expect(update(invalid, relabelled)).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
  });

  it("allows a label change on a policy whose stored policyTypes the rules refuse (the unchanged spec is not read)", () => {
    const stored = mnp({ podSelector: {}, policyTypes: ["ingress"] }, { labels: { team: "a" } });
    const relabelled = mnp({ podSelector: {}, policyTypes: ["ingress"] }, { labels: { team: "b" } });
    expect(update(stored, relabelled)).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
    expect(update(stored, mnp({ podSelector: {}, policyTypes: ["ingress", "Egress"] })).message).toBe(
      `MultiNetworkPolicy ${NS}/p: spec.policyTypes[0]: "ingress" is not a policy type; use Ingress or Egress`,
    );
  });

  it("denies a spec change that is invalid", () => {
    const decision = update(mnp(fromPorts({ port: 80 })), invalid);
    expect(decision.message).toBe(`MultiNetworkPolicy ${NS}/p: spec.ingress[0].ports[0].port: 0 is outside 1-65535`);
  });

  it("judges policy-for when it changes, and not when it stays", () => {
    const before = mnp(withPodSelector(WEB), { policyFor: "lan,,data" });
    expect(update(mnp(withPodSelector(WEB)), before).message).toBe(`MultiNetworkPolicy ${NS}/p: ${POLICY_FOR}: element 2 is empty; remove the extra ','`);
    expect(update(before, mnp(withPodSelector({}), { policyFor: "lan,,data" })).allowed).toBe(true);
  });

  it("warns about what the changed policy means", () => {
    const decision = update(mnp(withPodSelector(WEB)), mnp(withPodSelector(sel({ app: "gone" }))));
    expect(decision.warnings).toEqual(["spec.podSelector selects no pod in fixtures at the moment; the policy isolates nothing yet"]);
  });

  it("allows the finalizer removal of a policy being deleted", () => {
    const deleting = mnp(fromPorts({ port: 0 }));
    (deleting.metadata as Record<string, unknown>).deletionTimestamp = "2025-01-01T00:00:00Z";
    expect(update(deleting, deleting).allowed).toBe(true);
  });
});

const FIXTURES = join(import.meta.dirname, "../../test/fixtures/policies");

describe("the corpus of valid policies (test/fixtures/policies)", () => {
  const files = readdirSync(FIXTURES).filter((file) => file.endsWith(".yaml"));

  it("covers default deny, both selector peers, ipBlock except, named ports, endPort and SCTP", () => {
    const text = files.map((file) => readFileSync(join(FIXTURES, file), "utf8")).join("\n");
    for (const needle of ["policyTypes: [Ingress]", "policyTypes: [Egress]", "namespaceSelector:", "podSelector:", "except:", "port: http", "endPort:", "SCTP"]) {
      expect(text, needle).toContain(needle);
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

describe("the examples (examples/)", () => {
  const root = join(import.meta.dirname, "../../examples");
  const yamlFiles = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? yamlFiles(join(dir, entry.name)) : /\.ya?ml$/.test(entry.name) ? [join(dir, entry.name)] : [],
    );

  it("allows every MultiNetworkPolicy, judged against the example cluster", async () => {
    const env = envOf(await loadStateDir(join(root, "cluster")));
    const policies = yamlFiles(root)
      .flatMap((file) => parseAllDocuments(readFileSync(file, "utf8")).map((doc) => doc.toJS() as Record<string, unknown> | null))
      .filter((object): object is Record<string, unknown> => object?.kind === "MultiNetworkPolicy");
    for (const object of policies) {
      const decision = create(object, env);
      expect(decision.message, JSON.stringify(object.metadata)).toBeUndefined();
      expect(decision.allowed).toBe(true);
    }
  });
});
