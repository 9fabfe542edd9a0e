// Properties of the selection parsers: whatever a user (or an attacker) writes in the annotations,
// parsing returns a value or problems with `selection.*` codes, and never throws; valid
// annotations give back exactly the networks and interfaces that were written.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Result } from "../api/errors.js";
import { DEFAULT_NETWORK_ANNOTATION_PATH, parseDefaultNetwork } from "./default-network.js";
import { NETWORKS_ANNOTATION_PATH, parseNetworkSelections } from "./selection.js";

const RUNS = 2000;

function expectWellFormed(result: Result<unknown>, path: string): void {
  if (result.ok) return;
  expect(result.error.length).toBeGreaterThan(0);
  for (const problem of result.error) {
    expect(problem.code).toMatch(/^selection\.[a-z-]+$/);
    expect(problem.path.startsWith(path)).toBe(true);
    expect(problem.message.length).toBeGreaterThan(0);
  }
}

/** Both parsers, on one input: neither throws, both answer well-formed. */
function checkBoth(annotation: string): void {
  expectWellFormed(parseNetworkSelections(annotation, "pod-ns"), NETWORKS_ANNOTATION_PATH);
  expectWellFormed(parseDefaultNetwork(annotation, "kube-system"), DEFAULT_NETWORK_ANNOTATION_PATH);
}

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
// Short labels collide with automatic names (net1, net2 …) often enough to exercise duplicates.
const ifname = fc.oneof(fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,4}[a-z0-9])?$/), fc.constantFrom("net1", "net2", "net3"));

interface Element {
  namespace?: string;
  name: string;
  ifname?: string;
}

const element: fc.Arbitrary<Element> = fc.record({ namespace: label, name: label, ifname }, { requiredKeys: ["name"] });
const elements = fc.array(element, { minLength: 1, maxLength: 6 });
const space = fc.constantFrom("", " ", "  ", "\t", "\n");

function commaElement(e: Element): string {
  return `${e.namespace === undefined ? "" : `${e.namespace}/`}${e.name}${e.ifname === undefined ? "" : `@${e.ifname}`}`;
}

const commaAnnotation = fc
  .tuple(elements, fc.array(fc.tuple(space, space), { minLength: 6, maxLength: 6 }))
  .map(([list, spaces]) => list.map((e, i) => `${spaces[i]![0]}${commaElement(e)}${spaces[i]![1]}`).join(","));

const SPEC_KEYS = [
  "name",
  "namespace",
  "interface",
  "ips",
  "mac",
  "default-route",
  "infiniband-guid",
  "cni-args",
  "portMappings",
  "bandwidth",
  "ipam-claim-reference",
];
const keyValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  label,
  fc.constantFrom("198.18.0.1", "198.18.0.0/15", "fd00::1", "02:00:5e:10:00:01", "c2:11:22:33:44:55:66:77", "tcp", "SCTP"),
  fc.array(fc.constantFrom("198.18.0.1", "fd00::/8", "x", ""), { maxLength: 3 }),
  fc.array(fc.dictionary(fc.constantFrom("hostPort", "containerPort", "protocol", "hostIP", "extra"), fc.jsonValue({ maxDepth: 1 })), { maxLength: 2 }),
  fc.dictionary(fc.constantFrom("ingressRate", "ingressBurst", "egressRate", "egressBurst", "rate"), fc.oneof(fc.integer(), fc.double(), fc.string())),
);
const jsonElement = fc.dictionary(fc.oneof(fc.constantFrom(...SPEC_KEYS, "x.y/z", "Name", "interfaceRequest"), fc.string()), keyValue, { maxKeys: 6 });
const jsonAnnotation = fc.oneof(
  fc.array(fc.oneof(jsonElement, fc.jsonValue({ maxDepth: 2 })), { maxLength: 5 }).map((list) => JSON.stringify(list)),
  fc.jsonValue().map((value) => JSON.stringify(value)),
);

type Mutation = { kind: "insert"; at: number; char: string } | { kind: "delete"; at: number } | { kind: "swap"; at: number; char: string };
const SEPARATORS = [",", "/", "@", " ", "[", "]", "{", "}", '"', ":", "."];
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), char: fc.oneof(fc.constantFrom(...SEPARATORS), fc.string({ minLength: 1, maxLength: 1, unit: "binary" })) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("swap" as const), at: fc.nat(), char: fc.constantFrom(...SEPARATORS) }),
);

function mutate(text: string, mutations: readonly Mutation[]): string {
  let out = text;
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    if (m.kind === "insert") out = out.slice(0, at) + m.char + out.slice(at);
    else if (m.kind === "delete") out = out.slice(0, at) + out.slice(at + 1);
    else {
      // Replace the nearest separator at or after `at` with another one.
      const index = out.slice(at).search(/[,/@ [\]{}":.]/);
      if (index >= 0) out = out.slice(0, at + index) + m.char + out.slice(at + index + 1);
    }
  }
  return out;
}

/** Interface names as Multus gives them: explicit, else net<position>. */
function expectedInterfaces(list: readonly Element[]): string[] {
  return list.map((e, i) => e.ifname ?? `net${i + 1}`);
}

describe("selection parsers never throw", () => {
  it("on random strings", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: "binary", maxLength: 80 }),
          fc.string({ unit: fc.constantFrom("a", "-", "0", "A", "_", ...SEPARATORS, "\t", "\u00a0", "\ud800"), maxLength: 40 }),
        ),
        checkBoth,
      ),
      { numRuns: RUNS },
    );
  });

  it("on mutations of valid comma annotations", () => {
    fc.assert(
      fc.property(commaAnnotation, fc.array(mutation, { minLength: 1, maxLength: 4 }), (annotation, mutations) => {
        checkBoth(mutate(annotation, mutations));
      }),
      { numRuns: RUNS },
    );
  });

  it("on random JSON values and lists of objects with spec keys", () => {
    fc.assert(fc.property(jsonAnnotation, checkBoth), { numRuns: RUNS });
  });

  it("on mutations of JSON annotations", () => {
    fc.assert(
      fc.property(jsonAnnotation, fc.array(mutation, { minLength: 1, maxLength: 3 }), (annotation, mutations) => {
        checkBoth(mutate(annotation, mutations));
      }),
      { numRuns: RUNS },
    );
  });
});

describe("valid annotations round-trip", () => {
  /** Checks the parse of `annotation`, written from `list`, against what the list says. */
  function checkRoundTrip(annotation: string, list: readonly Element[]): void {
    const interfaces = expectedInterfaces(list);
    const duplicated = new Set(interfaces).size < interfaces.length;
    const result = parseNetworkSelections(annotation, "pod-ns");
    if (duplicated) {
      expect(result.ok).toBe(false);
      if (!result.ok) expect(new Set(result.error.map((p) => p.code))).toEqual(new Set(["selection.duplicate-interface"]));
      return;
    }
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.map((a) => [a.selection.namespace, a.selection.name, a.interfaceName, a.key])).toEqual(
      list.map((e, i) => [e.namespace ?? "pod-ns", e.name, interfaces[i], `${e.namespace ?? "pod-ns"}/${e.name}`]),
    );
    expect(result.value.map((a) => a.selection.namespaceExplicit)).toEqual(list.map((e) => e.namespace !== undefined));
  }

  it("in the comma form", () => {
    fc.assert(
      fc.property(elements, fc.constantFrom(",", ", ", " ,\t"), (list, separator) => {
        checkRoundTrip(list.map(commaElement).join(separator), list);
      }),
      { numRuns: RUNS },
    );
  });

  it("in the comma form with random whitespace", () => {
    fc.assert(
      fc.property(elements, (list) => {
        const annotation = list.map((e) => ` ${commaElement(e)}\n`).join(",");
        checkRoundTrip(annotation, list);
      }),
      { numRuns: RUNS / 4 },
    );
  });

  it("in the JSON form", () => {
    fc.assert(
      fc.property(elements, (list) => {
        const json = list.map((e) => ({ name: e.name, ...(e.namespace !== undefined && { namespace: e.namespace }), ...(e.ifname !== undefined && { interface: e.ifname }) }));
        checkRoundTrip(JSON.stringify(json), list);
      }),
      { numRuns: RUNS },
    );
  });

  it("as a default network when there is exactly one element", () => {
    fc.assert(
      fc.property(element, (e) => {
        const result = parseDefaultNetwork(commaElement(e), "kube-system");
        expect(result.ok && [result.value.namespace, result.value.name, result.value.interfaceRequest]).toEqual([
          e.namespace ?? "kube-system",
          e.name,
          e.ifname,
        ]);
      }),
      { numRuns: RUNS / 4 },
    );
  });
});
