import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { AccessResult } from "./rbac.js";
import { type SarAttributes, type SarSender, type SarStatus, cacheKey, sarReviewer, subjectAccessReviewFor } from "./sar.js";

const ATTRS: SarAttributes = {
  user: "alice",
  groups: ["devs", "system:authenticated"],
  verb: "use",
  apiGroup: "k8s.cni.cncf.io",
  resource: "network-attachment-definitions",
  name: "sriov-a",
  namespace: "shared",
};

/** A sender that answers from `answer` and records what it was asked. */
function recordingSender(answer: (review: SarAttributes) => SarStatus | Promise<SarStatus> = () => ({ allowed: true })) {
  const asked: Record<string, unknown>[] = [];
  const send: SarSender = async (review) => {
    asked.push(review as unknown as Record<string, unknown>);
    const spec = review.spec;
    const attrs = spec.resourceAttributes!;
    return answer({
      user: spec.user ?? "",
      groups: spec.groups ?? [],
      verb: attrs.verb ?? "",
      apiGroup: attrs.group ?? "",
      resource: attrs.resource ?? "",
      ...(attrs.name !== undefined && { name: attrs.name }),
      ...(attrs.namespace !== undefined && { namespace: attrs.namespace }),
    });
  };
  return { send, asked };
}

describe("subjectAccessReviewFor", () => {
  it("sends user, groups, uid, extra and the resource attributes", () => {
    const review = subjectAccessReviewFor({ ...ATTRS, uid: "u-1", extra: { scopes: ["a", "b"] } });
    expect(review).toEqual({
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: "alice",
        groups: ["devs", "system:authenticated"],
        uid: "u-1",
        extra: { scopes: ["a", "b"] },
        resourceAttributes: { verb: "use", group: "k8s.cni.cncf.io", resource: "network-attachment-definitions", name: "sriov-a", namespace: "shared" },
      },
    });
  });

  it("leaves out what is not known", () => {
    const review = subjectAccessReviewFor({ user: "bob", groups: [], verb: "use", apiGroup: "", resource: "pods" });
    expect(review.spec).toEqual({ user: "bob", groups: [], resourceAttributes: { verb: "use", group: "", resource: "pods" } });
  });
});

describe("cacheKey", () => {
  it.each([
    ["user", { user: "mallory" }],
    ["groups", { groups: ["devs"] }],
    ["uid", { uid: "u-2" }],
    ["extra", { extra: { scopes: ["x"] } }],
    ["verb", { verb: "get" }],
    ["apiGroup", { apiGroup: "" }],
    ["resource", { resource: "pods" }],
    ["subresource", { subresource: "status" }],
    ["name", { name: "other" }],
    ["namespace", { namespace: "tenant-b" }],
  ])("changes with %s", (_, change) => {
    expect(cacheKey({ ...ATTRS, ...change })).not.toBe(cacheKey(ATTRS));
  });

  it("ignores the order of groups and of extra keys and values", () => {
    const a = cacheKey({ ...ATTRS, groups: ["x", "y"], extra: { k1: ["1", "2"], k2: ["3"] } });
    const b = cacheKey({ ...ATTRS, groups: ["y", "x"], extra: { k2: ["3"], k1: ["2", "1"] } });
    expect(a).toBe(b);
  });

  it("keeps values with separators apart", () => {
    expect(cacheKey({ ...ATTRS, user: "a", name: "b,c" })).not.toBe(cacheKey({ ...ATTRS, user: "a,b", name: "c" }));
  });
});

describe("sarReviewer", () => {
  it("answers a repeated question from the cache, synchronously, with the server's reason", async () => {
    const { send, asked } = recordingSender(() => ({ allowed: true, reason: 'RBAC: allowed by RoleBinding "x/shared"' }));
    const reviewer = sarReviewer(send);
    const first = await reviewer.review(ATTRS);
    const second = reviewer.review(ATTRS);
    expect(second).not.toBeInstanceOf(Promise);
    expect(second).toEqual(first);
    expect(first).toEqual({ allowed: true, grantedBy: 'RBAC: allowed by RoleBinding "x/shared"' });
    expect(asked).toHaveLength(1);
  });

  it("reuses an allow for allowedTtlMs and a denial for deniedTtlMs", async () => {
    let now = 0;
    const { send, asked } = recordingSender((a) => ({ allowed: a.user === "alice" }));
    const reviewer = sarReviewer(send, { allowedTtlMs: 1_000, deniedTtlMs: 100, now: () => now });
    const bob = { ...ATTRS, user: "bob" };
    await reviewer.review(ATTRS);
    await reviewer.review(bob);
    now = 99;
    await reviewer.review(ATTRS);
    await reviewer.review(bob);
    expect(asked).toHaveLength(2);
    now = 100;
    await reviewer.review(bob);
    expect(asked).toHaveLength(3);
    now = 1_000;
    await reviewer.review(ATTRS);
    expect(asked).toHaveLength(4);
  });

  it("keeps at most maxEntries answers, evicting the least recently used", async () => {
    const { send, asked } = recordingSender();
    const reviewer = sarReviewer(send, { maxEntries: 2 });
    const user = (name: string): SarAttributes => ({ ...ATTRS, user: name });
    await reviewer.review(user("a"));
    await reviewer.review(user("b"));
    await reviewer.review(user("a")); // a is now the most recent
    await reviewer.review(user("c")); // evicts b
    expect(reviewer.size()).toBe(2);
    expect(asked).toHaveLength(3);
    await reviewer.review(user("a"));
    expect(asked).toHaveLength(3);
    await reviewer.review(user("b"));
    expect(asked).toHaveLength(4);
  });

  it("sends one request for concurrent identical questions", async () => {
    let resolve!: (status: SarStatus) => void;
    const { send, asked } = recordingSender(() => new Promise<SarStatus>((r) => (resolve = r)));
    const registry = new Registry();
    const reviewer = sarReviewer(send, { registry });
    const answers = Array.from({ length: 10 }, () => reviewer.review(ATTRS));
    await new Promise((r) => setImmediate(r));
    resolve({ allowed: false });
    expect(await Promise.all(answers)).toEqual(Array.from({ length: 10 }, () => ({ allowed: false })));
    expect(asked).toHaveLength(1);
    const lookups = await registry.getSingleMetric("nadguard_subjectaccessreview_cache_total")!.get();
    expect(Object.fromEntries(lookups.values.map((v) => [v.labels.result, v.value]))).toEqual({ miss: 1, shared: 9 });
  });

  it("fail-closed: a failure throws a message naming the failure and the policy, and is not cached", async () => {
    let fail = true;
    const logs: string[] = [];
    const send: SarSender = async () => {
      if (fail) throw Object.assign(new Error("HTTP-Code: 503"), { code: 503, body: { message: "service unavailable" } });
      return { allowed: true };
    };
    const registry = new Registry();
    const reviewer = sarReviewer(send, { registry, log: (line) => logs.push(line) });
    await expect(reviewer.review(ATTRS)).rejects.toThrow("SubjectAccessReview failed: HTTP 503: service unavailable (failure policy fail-closed)");
    expect(logs[0]).toContain("alice use network-attachment-definitions.k8s.cni.cncf.io shared/sriov-a");
    fail = false;
    expect(await reviewer.review(ATTRS)).toEqual({ allowed: true, grantedBy: "SubjectAccessReview" });
    const requests = await registry.getSingleMetric("nadguard_subjectaccessreview_requests_total")!.get();
    expect(Object.fromEntries(requests.values.map((v) => [v.labels.outcome, v.value]))).toEqual({ error: 1, allowed: 1 });
  });

  it("fail-open: a failure allows, saying so", async () => {
    const reviewer = sarReviewer(async () => Promise.reject(new Error("connect ECONNREFUSED")), { failurePolicy: "fail-open" });
    const result = (await reviewer.review(ATTRS)) as AccessResult;
    expect(result.allowed).toBe(true);
    expect(result.grantedBy).toBe("failure policy fail-open (SubjectAccessReview failed: connect ECONNREFUSED)");
    expect(reviewer.size()).toBe(0);
  });

  it("gives up after timeoutMs, aborting the request", async () => {
    let aborted = false;
    const send: SarSender = (_, signal) =>
      new Promise((_, reject) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          reject(signal.reason);
        });
      });
    const reviewer = sarReviewer(send, { timeoutMs: 50 });
    await expect(reviewer.review(ATTRS)).rejects.toThrow("SubjectAccessReview failed: no answer in time");
    expect(aborted).toBe(true);
  });
});

describe("sarReviewer and the deadline of the review that asks", () => {
  /** A sender that never answers: it settles only when its signal aborts, recording that. */
  function hangingSender() {
    const aborted: unknown[] = [];
    const send: SarSender = (_, signal) =>
      new Promise((_, reject) =>
        signal.addEventListener("abort", () => {
          aborted.push(signal.reason);
          reject(signal.reason);
        }),
      );
    return { send, aborted };
  }
  const deadline = (): { controller: AbortController; reason: DOMException } => ({
    controller: new AbortController(),
    reason: new DOMException("the review's 900 ms budget ran out", "TimeoutError"),
  });

  it("aborts the request when the caller's signal aborts, rejects with its reason, and counts it as abandoned", async () => {
    const { send, aborted } = hangingSender();
    const registry = new Registry();
    const logs: string[] = [];
    const reviewer = sarReviewer(send, { timeoutMs: 60_000, registry, log: (line) => logs.push(line) });
    const { controller, reason } = deadline();
    const answer = reviewer.review(ATTRS, controller.signal);
    controller.abort(reason);
    await expect(answer).rejects.toBe(reason);
    expect(aborted).toEqual([reason]);
    const requests = await registry.getSingleMetric("nadguard_subjectaccessreview_requests_total")!.get();
    expect(Object.fromEntries(requests.values.map((v) => [v.labels.outcome, v.value]))).toEqual({ abandoned: 1 });
    expect(logs[0]).toMatch(/^SubjectAccessReview abandoned after \d+ ms: the reviews that asked ran out of time \(for alice use /);
  });

  it("a shared request goes on while another caller still waits, and is aborted when the last one gives up", async () => {
    const { send, aborted } = hangingSender();
    const reviewer = sarReviewer(send, { timeoutMs: 60_000 });
    const first = deadline();
    const second = deadline();
    const one = reviewer.review(ATTRS, first.controller.signal);
    const two = reviewer.review(ATTRS, second.controller.signal);
    first.controller.abort(first.reason);
    await expect(one).rejects.toBe(first.reason);
    expect(aborted).toEqual([]);
    second.controller.abort(second.reason);
    await expect(two).rejects.toBe(second.reason);
    expect(aborted).toEqual([second.reason]);
  });

  it("a caller without a signal keeps the request going; one whose signal already aborted is refused at once", async () => {
    let answer!: (status: SarStatus) => void;
    let sent = 0;
    const reviewer = sarReviewer(() => new Promise((resolve) => ((answer = resolve), (sent += 1))), { timeoutMs: 60_000 });
    const patient = reviewer.review(ATTRS);
    const { controller, reason } = deadline();
    const impatient = reviewer.review(ATTRS, controller.signal);
    controller.abort(reason);
    await expect(impatient).rejects.toBe(reason);
    answer({ allowed: true });
    expect(await patient).toEqual({ allowed: true, grantedBy: "SubjectAccessReview" });
    await expect(reviewer.review({ ...ATTRS, user: "bob" }, controller.signal)).rejects.toBe(reason);
    expect(sent).toBe(1);
  });
});
