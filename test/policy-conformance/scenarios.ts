// The conformance scenarios on the x/y/z × a/b/c grid, each with hand-written truth tables.
// Rows: from xa … zc; columns: to xa … zc; 1 allowed, . denied.
import { BLUE, RED, policy, truthTable } from "./grid.js";
import type { GridProbe } from "./harness.js";

const ALL = truthTable(`
  xa 111 111 111
  xb 111 111 111
  xc 111 111 111
  ya 111 111 111
  yb 111 111 111
  yc 111 111 111
  za 111 111 111
  zb 111 111 111
  zc 111 111 111`);

const X_INGRESS_DENIED = truthTable(`
  xa 1.. 111 111
  xb .1. 111 111
  xc ..1 111 111
  ya ... 111 111
  yb ... 111 111
  yc ... 111 111
  za ... 111 111
  zb ... 111 111
  zc ... 111 111`);

const X_ALL_DENIED = truthTable(`
  xa 1.. ... ...
  xb .1. ... ...
  xc ..1 ... ...
  ya ... 111 111
  yb ... 111 111
  yc ... 111 111
  za ... 111 111
  zb ... 111 111
  zc ... 111 111`);

export interface Scenario {
  name: string;
  policies: unknown[];
  probes: [GridProbe, boolean[][]][];
}

const TCP80: GridProbe = { port: 80 };
const allX = {};

export const scenarios: Scenario[] = [
  { name: "no policy: everything is allowed", policies: [], probes: [[TCP80, ALL], [{ port: 80, network: RED }, ALL]] },
  {
    name: "default-deny ingress",
    policies: [policy("x", "deny-in", { podSelector: allX, policyTypes: ["Ingress"] })],
    probes: [[TCP80, X_INGRESS_DENIED], [{ port: 53, protocol: "UDP" }, X_INGRESS_DENIED], [{ port: 80, network: RED }, ALL]],
  },
  {
    name: "default-deny egress",
    policies: [policy("x", "deny-out", { podSelector: allX, policyTypes: ["Egress"] })],
    probes: [[TCP80, truthTable(`
      xa 1.. ... ...
      xb .1. ... ...
      xc ..1 ... ...
      ya 111 111 111
      yb 111 111 111
      yc 111 111 111
      za 111 111 111
      zb 111 111 111
      zc 111 111 111`)]],
  },
  {
    name: "implied policyTypes: a non-empty egress list adds Egress to Ingress",
    policies: [policy("y", "a-to-z", { podSelector: { matchLabels: { pod: "a" } }, egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: "z" } } }] }] })],
    probes: [[TCP80, truthTable(`
      xa 111 .11 111
      xb 111 .11 111
      xc 111 .11 111
      ya ... 1.. 111
      yb 111 .11 111
      yc 111 .11 111
      za 111 .11 111
      zb 111 .11 111
      zc 111 .11 111`)]],
  },
  {
    name: "implied policyTypes: an ingress-only policy leaves egress open",
    policies: [policy("z", "c-from-z", { podSelector: { matchLabels: { pod: "c" } }, ingress: [{ from: [{ podSelector: {} }] }] })],
    probes: [[TCP80, truthTable(`
      xa 111 111 11.
      xb 111 111 11.
      xc 111 111 11.
      ya 111 111 11.
      yb 111 111 11.
      yc 111 111 11.
      za 111 111 111
      zb 111 111 111
      zc 111 111 111`)]],
  },
  {
    name: "podSelector-only peer: pods of the policy's namespace only",
    policies: [policy("x", "from-b", { podSelector: allX, ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b" } } }] }] })],
    probes: [[TCP80, truthTable(`
      xa 1.. 111 111
      xb 111 111 111
      xc ..1 111 111
      ya ... 111 111
      yb ... 111 111
      yc ... 111 111
      za ... 111 111
      zb ... 111 111
      zc ... 111 111`)]],
  },
  {
    name: "namespaceSelector-only peer: every pod of the matching namespaces",
    policies: [policy("x", "from-y", { podSelector: allX, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] })],
    probes: [[TCP80, truthTable(`
      xa 1.. 111 111
      xb .1. 111 111
      xc ..1 111 111
      ya 111 111 111
      yb 111 111 111
      yc 111 111 111
      za ... 111 111
      zb ... 111 111
      zc ... 111 111`)]],
  },
  {
    name: "namespaceSelector and podSelector in one peer: AND",
    policies: [
      policy("x", "from-ya", { podSelector: allX, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "a" } } }] }] }),
    ],
    probes: [[TCP80, truthTable(`
      xa 1.. 111 111
      xb .1. 111 111
      xc ..1 111 111
      ya 111 111 111
      yb ... 111 111
      yc ... 111 111
      za ... 111 111
      zb ... 111 111
      zc ... 111 111`)]],
  },
  {
    name: "separate peers: OR",
    policies: [
      policy("x", "from-y-or-a", { podSelector: allX, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }, { podSelector: { matchLabels: { pod: "a" } } }] }] }),
    ],
    probes: [[TCP80, truthTable(`
      xa 111 111 111
      xb .1. 111 111
      xc ..1 111 111
      ya 111 111 111
      yb 111 111 111
      yc 111 111 111
      za ... 111 111
      zb ... 111 111
      zc ... 111 111`)]],
  },
  {
    name: "matchExpressions: NotIn on namespaces, In on pods",
    policies: [
      policy("x", "exprs", {
        podSelector: { matchLabels: { pod: "c" } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchExpressions: [{ key: "ns", operator: "NotIn", values: ["x"] }] },
                podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["a", "b"] }] },
              },
            ],
          },
        ],
      }),
    ],
    probes: [[TCP80, truthTable(`
      xa 11. 111 111
      xb 11. 111 111
      xc 111 111 111
      ya 111 111 111
      yb 111 111 111
      yc 11. 111 111
      za 111 111 111
      zb 111 111 111
      zc 11. 111 111`)]],
  },
  {
    name: "a namespaceSelector matching nothing allows nothing",
    policies: [policy("x", "from-nowhere", { podSelector: allX, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "nope" } } }] }] })],
    probes: [[TCP80, X_INGRESS_DENIED]],
  },
  {
    name: "ipBlock except, re-allowed by another peer of the same rule",
    policies: [
      policy("x", "block", {
        podSelector: allX,
        ingress: [
          {
            from: [
              { ipBlock: { cidr: "198.18.0.0/24", except: ["198.18.0.13", "198.18.0.17/32"] } },
              { ipBlock: { cidr: "fd00:b::/64", except: ["fd00:b::d/128", "fd00:b::11"] } },
              { namespaceSelector: { matchLabels: { ns: "y" } }, podSelector: { matchLabels: { pod: "a" } } },
            ],
          },
        ],
      }),
    ],
    probes: [[TCP80, truthTable(`
      xa 111 111 111
      xb 111 111 111
      xc 111 111 111
      ya 111 111 111
      yb 111 111 111
      yc 111 111 111
      za 111 111 111
      zb ... 111 111
      zc 111 111 111`)]],
  },
  {
    name: "ipBlock except, re-allowed by another policy",
    policies: [
      policy("x", "block", {
        podSelector: allX,
        ingress: [
          {
            from: [
              { ipBlock: { cidr: "198.18.0.0/24", except: ["198.18.0.13", "198.18.0.17/32"] } },
              { ipBlock: { cidr: "fd00:b::/64", except: ["fd00:b::d/128", "fd00:b::11"] } },
            ],
          },
        ],
      }),
      policy("x", "zb-to-a", {
        podSelector: { matchLabels: { pod: "a" } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "z" } }, podSelector: { matchLabels: { pod: "b" } } }] }],
      }),
    ],
    probes: [[TCP80, truthTable(`
      xa 111 111 111
      xb 111 111 111
      xc 111 111 111
      ya ... 111 111
      yb 111 111 111
      yc 111 111 111
      za 111 111 111
      zb 1.. 111 111
      zc 111 111 111`)]],
  },
  {
    name: "numeric port: only that port and protocol",
    policies: [policy("x", "tcp-80", { podSelector: allX, ingress: [{ ports: [{ port: 80 }] }] })],
    probes: [
      [TCP80, ALL],
      [{ port: 81 }, X_INGRESS_DENIED],
      [{ port: 80, protocol: "UDP" }, X_INGRESS_DENIED],
      [{ port: 80, protocol: "SCTP" }, X_INGRESS_DENIED],
    ],
  },
  {
    name: "protocol-only port: every port of that protocol",
    policies: [policy("x", "udp", { podSelector: allX, ingress: [{ ports: [{ protocol: "UDP" }] }] })],
    probes: [
      [{ port: 5353, protocol: "UDP" }, ALL],
      [{ port: 1, protocol: "UDP" }, ALL],
      [TCP80, X_INGRESS_DENIED],
      [{ port: 5353, protocol: "SCTP" }, X_INGRESS_DENIED],
    ],
  },
  {
    name: "endPort: an inclusive range",
    policies: [policy("x", "range", { podSelector: allX, ingress: [{ ports: [{ port: 80, endPort: 81 }] }] })],
    probes: [
      [{ port: 79 }, X_INGRESS_DENIED],
      [TCP80, ALL],
      [{ port: 81 }, ALL],
      [{ port: 82 }, X_INGRESS_DENIED],
    ],
  },
  {
    name: "named port on ingress: resolved against each target pod",
    policies: [policy("x", "web", { podSelector: allX, ingress: [{ ports: [{ port: "web" }] }] })],
    probes: [
      [TCP80, truthTable(`
        xa 1.. 111 111
        xb 11. 111 111
        xc 1.1 111 111
        ya 1.. 111 111
        yb 1.. 111 111
        yc 1.. 111 111
        za 1.. 111 111
        zb 1.. 111 111
        zc 1.. 111 111`)],
      [{ port: 81 }, truthTable(`
        xa 11. 111 111
        xb .1. 111 111
        xc .11 111 111
        ya .1. 111 111
        yb .1. 111 111
        yc .1. 111 111
        za .1. 111 111
        zb .1. 111 111
        zc .1. 111 111`)],
      [{ port: 80, protocol: "SCTP" }, X_INGRESS_DENIED],
    ],
  },
  {
    name: "named port on egress: resolved against each destination pod",
    policies: [policy("x", "web-out", { podSelector: allX, policyTypes: ["Egress"], egress: [{ ports: [{ port: "web" }, { port: "web", protocol: "SCTP" }] }] })],
    probes: [
      [TCP80, truthTable(`
        xa 1.. 1.. 1..
        xb 11. 1.. 1..
        xc 1.1 1.. 1..
        ya 111 111 111
        yb 111 111 111
        yc 111 111 111
        za 111 111 111
        zb 111 111 111
        zc 111 111 111`)],
      [{ port: 81 }, truthTable(`
        xa 11. .1. .1.
        xb .1. .1. .1.
        xc .11 .1. .1.
        ya 111 111 111
        yb 111 111 111
        yc 111 111 111
        za 111 111 111
        zb 111 111 111
        zc 111 111 111`)],
      [{ port: 80, protocol: "SCTP" }, truthTable(`
        xa 1.. 1.. 1..
        xb 11. 1.. 1..
        xc 1.1 1.. 1..
        ya 111 111 111
        yb 111 111 111
        yc 111 111 111
        za 111 111 111
        zb 111 111 111
        zc 111 111 111`)],
    ],
  },
  {
    name: "named port on egress never matches an ipBlock destination",
    policies: [policy("x", "web-block", { podSelector: allX, policyTypes: ["Egress"], egress: [{ to: [{ ipBlock: { cidr: "198.18.0.0/15" } }, { ipBlock: { cidr: "fd00::/8" } }], ports: [{ port: "web" }] }] })],
    probes: [[TCP80, truthTable(`
      xa 1.. ... ...
      xb .1. ... ...
      xc ..1 ... ...
      ya 111 111 111
      yb 111 111 111
      yc 111 111 111
      za 111 111 111
      zb 111 111 111
      zc 111 111 111`)]],
  },
  {
    name: "SCTP and UDP never widen TCP",
    policies: [policy("x", "udp-sctp-80", { podSelector: allX, ingress: [{ ports: [{ protocol: "UDP", port: 80 }, { protocol: "SCTP", port: 80 }] }] })],
    probes: [
      [TCP80, X_INGRESS_DENIED],
      [{ port: 80, protocol: "UDP" }, ALL],
      [{ port: 80, protocol: "SCTP" }, ALL],
      [{ port: 81, protocol: "UDP" }, X_INGRESS_DENIED],
    ],
  },
  {
    name: "stacked policies: allows are a union",
    policies: [
      policy("x", "a-from-y", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "y" } } }] }] }),
      policy("x", "a-from-z-80", { podSelector: { matchLabels: { pod: "a" } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: "z" } } }], ports: [{ port: 80 }] }] }),
    ],
    probes: [
      [TCP80, truthTable(`
        xa 111 111 111
        xb .11 111 111
        xc .11 111 111
        ya 111 111 111
        yb 111 111 111
        yc 111 111 111
        za 111 111 111
        zb 111 111 111
        zc 111 111 111`)],
      [{ port: 81 }, truthTable(`
        xa 111 111 111
        xb .11 111 111
        xc .11 111 111
        ya 111 111 111
        yb 111 111 111
        yc 111 111 111
        za .11 111 111
        zb .11 111 111
        zc .11 111 111`)],
    ],
  },
  {
    name: "a policy for another NAD leaves the interface untouched",
    policies: [policy("x", "deny-red", { podSelector: allX, policyTypes: ["Ingress", "Egress"] }, RED)],
    probes: [[TCP80, ALL], [{ port: 80, network: RED }, X_ALL_DENIED]],
  },
  {
    name: "a policy without policy-for, or for a NAD that does not exist, applies to nothing",
    policies: [
      policy("x", "no-for", { podSelector: allX, policyTypes: ["Ingress", "Egress"] }, null),
      policy("x", "missing", { podSelector: allX, policyTypes: ["Ingress", "Egress"] }, "nets/green, nope"),
    ],
    probes: [[TCP80, ALL], [{ port: 80, network: RED }, ALL]],
  },
  {
    name: "policy-for with a bare name resolves in the policy's namespace",
    policies: [policy("nets", "deny-all-blue", { podSelector: allX, policyTypes: ["Ingress"] }, " blue ")],
    // No grid pod lives in nets: nothing changes, and nothing is mistaken for x/blue.
    probes: [[TCP80, ALL]],
  },
];

