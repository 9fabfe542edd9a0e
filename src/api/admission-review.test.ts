// parseAdmissionReview, the webhook's fast read of a review's envelope, against the schema it
// stands in for: on any body, valid or not, near a limit or past it, it answers exactly what
// AdmissionReviewRequest.safeParse answers (the same data, keys stripped alike; the same problems).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AdmissionReviewRequest, ENVELOPE_LIMITS, parseAdmissionReview } from "./admission-review.js";

const RUNS = 5000;

/** Either of the two results, in a form that compares by value (ZodError instances do not). */
function outcome(result: ReturnType<typeof parseAdmissionReview>): unknown {
  return result.success ? { data: result.data } : { issues: result.error.issues };
}

function expectSame(body: unknown): void {
  expect(outcome(parseAdmissionReview(body))).toStrictEqual(outcome(AdmissionReviewRequest.safeParse(body)));
}

/** A string at, just under or just over `max` characters, or a short one. */
const sized = (max: number): fc.Arbitrary<string> =>
  fc.oneof({ weight: 20, arbitrary: fc.string({ maxLength: 8 }) }, { weight: 3, arbitrary: fc.constantFrom(max - 1, max, max, max + 1).map((n) => "x".repeat(n)) });
/**
 * A valid value most of the time, anything JSON can hold otherwise, or the key left out: most
 * envelopes are then valid or wrong in one place, where a fast path that is too lax shows.
 */
const mostly = <T,>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 30, arbitrary: valid }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 1 }) }, { weight: 1, arbitrary: fc.constant(undefined) });
const name = mostly(sized(ENVELOPE_LIMITS.name));
const userString = mostly(sized(ENVELOPE_LIMITS.userString));
const stringList = (max: number) => mostly(fc.oneof(fc.array(sized(ENVELOPE_LIMITS.userString), { maxLength: 3 }), fc.constantFrom(max, max + 1).map((n) => Array.from({ length: n }, () => "g"))));
const withJunk = (record: fc.Arbitrary<Record<string, unknown>>) =>
  fc.tuple(record, fc.boolean()).map(([value, junk]) => {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = item;
    if (junk) out.unknownKey = { anything: [1] };
    return out;
  });
const gvk = mostly(withJunk(fc.record({ group: name, version: name, kind: name })));
const gvr = mostly(withJunk(fc.record({ group: name, version: name, resource: name })));
const extra = mostly(
  fc.oneof(
    fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), sized(ENVELOPE_LIMITS.userString)), stringList(ENVELOPE_LIMITS.extra), { maxKeys: 3 }),
    fc.constantFrom(ENVELOPE_LIMITS.extra, ENVELOPE_LIMITS.extra + 1).map((n) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, ["v"]]))),
  ),
);
const userInfo = mostly(withJunk(fc.record({ username: userString, uid: userString, groups: fc.oneof(stringList(ENVELOPE_LIMITS.groups), fc.constant(null)), extra: fc.oneof(extra, fc.constant(null)) })));
const request = mostly(
  withJunk(
    fc.record({
      uid: mostly(fc.oneof(fc.constant(""), fc.uuid(), sized(ENVELOPE_LIMITS.uid))),
      kind: gvk,
      resource: gvr,
      subResource: name,
      requestKind: gvk,
      requestResource: gvr,
      requestSubResource: name,
      name,
      namespace: name,
      operation: mostly(fc.constantFrom("CREATE", "UPDATE", "DELETE", "CONNECT", "create", "PATCH")),
      userInfo,
      object: fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 })),
      oldObject: fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 })),
      dryRun: mostly(fc.boolean()),
      options: fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 1 })),
    }),
  ),
);
const review = withJunk(
  fc.record({
    apiVersion: mostly(fc.constantFrom("admission.k8s.io/v1", "admission.k8s.io/v1beta1")),
    kind: mostly(fc.constantFrom("AdmissionReview", "AdmissionReviewList")),
    request,
  }),
);

describe("parseAdmissionReview", () => {
  it("answers what the AdmissionReviewRequest schema answers, on any envelope", () => {
    fc.assert(fc.property(review, (body) => expectSame(body)), { numRuns: RUNS });
  });

  it("answers what the schema answers for JSON that is no review at all", () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (body) => expectSame(body)), { numRuns: 500 });
  });

  it("reads a kube-apiserver review to the schema's data, unknown keys stripped", () => {
    const body = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: {
        uid: "705ab4f5-6393-11e8-b7cc-42010a800002",
        kind: { group: "", version: "v1", kind: "Pod" },
        resource: { group: "", version: "v1", resource: "pods" },
        requestKind: { group: "", version: "v1", kind: "Pod" },
        requestResource: { group: "", version: "v1", resource: "pods" },
        namespace: "tenant-a",
        operation: "CREATE",
        userInfo: { username: "system:serviceaccount:kube-system:replicaset-controller", uid: "u", groups: ["system:serviceaccounts"], extra: { "authentication.kubernetes.io/pod-name": ["p"] } },
        object: { metadata: { name: "web" } },
        oldObject: null,
        dryRun: false,
        options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
        addedByANewerApiServer: true,
      },
    };
    const parsed = parseAdmissionReview(body);
    const { addedByANewerApiServer, ...known } = body.request;
    expect(addedByANewerApiServer).toBe(true);
    expect(parsed.success && parsed.data.request).toStrictEqual(known);
    expectSame(body);
  });
});
