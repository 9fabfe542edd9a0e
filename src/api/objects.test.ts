// readPod, the admission's fast read of a pod, against the Pod schema it stands in for: on any
// value, valid or wrong in one place, it answers what Pod.safeParse answers (data equal to the
// schema's, the same problems).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Pod, readPod } from "./objects.js";

function outcome(result: ReturnType<typeof readPod>): unknown {
  return result.success ? { data: result.data } : { issues: result.error.issues };
}

function expectSame(value: unknown): void {
  expect(outcome(readPod(value))).toStrictEqual(outcome(Pod.safeParse(value)));
}

/** A valid value most of the time; otherwise any JSON value, null, or the key left out. */
const mostly = <T,>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 40, arbitrary: valid }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }, { weight: 1, arbitrary: fc.constantFrom(undefined, null) });
/** Drops undefined keys and sometimes adds one the schema does not know (kept by a loose schema). */
const object = (shape: Record<string, fc.Arbitrary<unknown>>) =>
  fc.tuple(fc.record(shape), fc.boolean()).map(([value, junk]) => {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = item;
    if (junk) out.unknownField = { kept: [1, "a"] };
    return out;
  });
const str = mostly(fc.string({ maxLength: 6 }));
const stringMap = mostly(fc.dictionary(fc.string({ maxLength: 4 }), mostly(fc.string({ maxLength: 4 })), { maxKeys: 3, noNullPrototype: true }));
const quantities = mostly(fc.dictionary(fc.string({ maxLength: 4 }), mostly(fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.double())), { maxKeys: 3, noNullPrototype: true }));
const list = <T,>(item: fc.Arbitrary<T>) => mostly(fc.array(item, { maxLength: 3 }));
const port = mostly(object({ name: str, containerPort: mostly(fc.oneof(fc.integer({ min: 1, max: 65535 }), fc.double())), protocol: mostly(fc.constantFrom("TCP", "UDP", "SCTP", "tcp")) }));
const container = mostly(
  object({
    name: mostly(fc.string({ maxLength: 6 })),
    ports: list(port),
    resources: mostly(object({ requests: quantities, limits: quantities })),
    volumeMounts: list(mostly(object({ name: str, mountPath: str, readOnly: mostly(fc.boolean()) }))),
    image: fc.string({ maxLength: 4 }),
  }),
);
const pod = object({
  apiVersion: str,
  kind: str,
  metadata: mostly(object({ name: str, generateName: str, namespace: str, uid: str, resourceVersion: str, labels: stringMap, annotations: stringMap })),
  spec: mostly(
    object({
      containers: mostly(fc.array(container, { maxLength: 3 })),
      initContainers: list(container),
      serviceAccountName: str,
      serviceAccount: str,
      nodeName: str,
      nodeSelector: stringMap,
      hostNetwork: mostly(fc.boolean()),
      volumes: list(mostly(object({ name: str }))),
    }),
  ),
  status: mostly(object({ phase: str, podIP: str, podIPs: list(mostly(object({ ip: str }))) })),
});

describe("readPod", () => {
  it("answers what the Pod schema answers, on pods valid or wrong in any place", () => {
    fc.assert(fc.property(pod, (value) => expectSame(value)), { numRuns: 5000 });
  });

  it("answers what the schema answers for values that are no pod at all", () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => expectSame(value)), { numRuns: 500 });
  });
});
