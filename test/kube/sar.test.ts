// The `rbac` authorization mode through SubjectAccessReview, end to end: live NADs from the
// informers, the real pod admission (decide → admitPod), and an env whose access reviewer asks
// "the API server" (the fake's rule table, or KUBECONFIG's cluster RBAC: see README.md).
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AdmissionEnv } from "../../src/admission/decision.js";
import { decide, requestForManifest } from "../../src/admission/review.js";
import { type SarReviewerOptions, sarReviewer } from "../../src/authz/sar.js";
import { type KubeState, kubeState } from "../../src/cluster/kube-state.js";
import { type Config, parseConfig } from "../../src/config/config.js";
import { statusObject } from "./fake-apiserver.js";
import { type TestCluster, eventually, grantNadUse, nad, startTestCluster } from "./cluster.js";

const SAR_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
const CONTROLLER = {
  username: "system:serviceaccount:kube-system:replicaset-controller",
  groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
};

let cluster: TestCluster;
let state: KubeState;
let config: Config;
let podNs: string;
let nadNs: string;

function envWith(options: SarReviewerOptions = {}): { env: AdmissionEnv; registry: Registry } {
  const registry = new Registry();
  const access = sarReviewer(cluster.kubeConfig, { registry, ...options });
  return { env: { snapshot: state.current()!, config, access }, registry };
}

/** A pod in podNs asking for the NAD `shared` of nadNs, created by `user`. */
function podRequest(user: { username: string; groups: string[] }, serviceAccountName: string) {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "app", namespace: podNs, annotations: { "k8s.v1.cni.cncf.io/networks": `${nadNs}/shared` } },
    spec: { serviceAccountName, containers: [{ name: "app", image: "registry.invalid/app:1" }] },
  };
  return requestForManifest(pod, user);
}

const sarCount = (): number => cluster.proxy.count({ method: "POST", path: SAR_PATH });

async function counter(registry: Registry, name: string): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric(name)!.get();
  return Object.fromEntries(metric.values.map((v) => [Object.values(v.labels).join(","), v.value]));
}

beforeAll(async () => {
  cluster = await startTestCluster();
  podNs = await cluster.namespace("pods");
  nadNs = await cluster.namespace("nets");
  await cluster.api.create(nad(nadNs, "shared"));
  await grantNadUse(cluster.api, nadNs, "shared", {
    alice: { kind: "User", apiGroup: "rbac.authorization.k8s.io", name: "alice" },
    "nad-user-sa": { kind: "ServiceAccount", name: "nad-user", namespace: podNs },
  });
  config = parseConfig({}) as Config;
  state = kubeState({ kubeConfig: cluster.kubeConfig, debounceMs: 10 });
  await state.start();
  await eventually(() => expect(state.current()!.nads.has(`${nadNs}/shared`)).toBe(true));
  // A real cluster's RBAC authorizer sees new bindings a moment later.
  const direct = sarReviewer(cluster.kubeConfig, { allowedTtlMs: 0, deniedTtlMs: 0 });
  const ask = (user: string, groups: string[]) =>
    direct.review({ user, groups, verb: "use", apiGroup: "k8s.cni.cncf.io", resource: "network-attachment-definitions", name: "shared", namespace: nadNs });
  await eventually(async () => expect((await ask("alice", [])).allowed).toBe(true), 10_000, 100);
  await eventually(async () => expect((await ask(`system:serviceaccount:${podNs}:nad-user`, ["system:serviceaccounts"])).allowed).toBe(true), 10_000, 100);
});

afterAll(async () => {
  await state?.stop();
  await cluster?.cleanup();
});

describe("SubjectAccessReview for a pod created by a user", () => {
  it("allows the pod when the requesting user holds `use` on the NAD", async () => {
    const { env } = envWith();
    const before = sarCount();
    const decision = await decide(podRequest({ username: "alice", groups: [] }, "default"), env, "mutate");
    expect(decision.allowed).toBe(true);
    expect(decision.attachments.map((a) => a.network)).toEqual([`${nadNs}/shared`]);
    expect(sarCount() - before).toBe(1);
  });

  it("denies it when neither the user nor the pod's service account holds it, naming both", async () => {
    const { env } = envWith();
    const decision = await decide(podRequest({ username: "bob", groups: ["tenants"] }, "default"), env, "mutate");
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toBe("network-forbidden");
    expect(decision.message).toContain(`may not use NetworkAttachmentDefinition ${nadNs}/shared`);
    expect(decision.message).toContain("the requesting user bob");
    expect(decision.message).toContain(`system:serviceaccount:${podNs}:default`);
  });
});

describe("SubjectAccessReview for a pod created by a controller", () => {
  it("allows the pod when its service account holds `use` (the controller does not)", async () => {
    const { env } = envWith();
    const before = sarCount();
    const decision = await decide(podRequest(CONTROLLER, "nad-user"), env, "mutate");
    expect(decision.allowed).toBe(true);
    // The controller first, then the pod's service account.
    expect(sarCount() - before).toBe(2);
  });

  it("denies the pod of a service account without the grant", async () => {
    const { env } = envWith();
    const decision = await decide(podRequest(CONTROLLER, "default"), env, "mutate");
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toBe("network-forbidden");
  });
});

describe("the cache", () => {
  it("answers a repeated question without a second request, for allows and denials", async () => {
    const { env, registry } = envWith();
    const before = sarCount();
    await decide(podRequest({ username: "alice", groups: [] }, "default"), env, "mutate");
    await decide(podRequest({ username: "alice", groups: [] }, "default"), env, "validate");
    expect(sarCount() - before).toBe(1);
    await decide(podRequest({ username: "bob", groups: [] }, "default"), env, "mutate");
    await decide(podRequest({ username: "bob", groups: [] }, "default"), env, "mutate");
    expect(sarCount() - before).toBe(3);
    expect(await counter(registry, "nadguard_subjectaccessreview_cache_total")).toEqual({ miss: 3, hit: 3 });
  });

  it("keys on every attribute: another group is another question", async () => {
    const { env } = envWith();
    const before = sarCount();
    await decide(podRequest({ username: "alice", groups: [] }, "default"), env, "mutate");
    await decide(podRequest({ username: "alice", groups: ["team-x"] }, "default"), env, "mutate");
    expect(sarCount() - before).toBe(2);
  });
});

describe("when the SubjectAccessReview endpoint fails", () => {
  const failing = { respond: { status: 500, body: statusObject(500, "InternalError", "Internal error occurred: etcd unavailable") } };

  it("fail-closed (the default) denies, says why, counts the error, and caches nothing", async () => {
    const logs: string[] = [];
    const { env, registry } = envWith({ log: (line) => logs.push(line) });
    const remove = cluster.proxy.inject({ method: "POST", path: SAR_PATH, times: Infinity, fault: failing });
    let decision;
    try {
      decision = await decide(podRequest({ username: "alice", groups: [] }, "default"), env, "mutate");
    } finally {
      remove();
    }
    expect(decision.allowed).toBe(false);
    expect(decision.reason).toBe("network-forbidden");
    expect(decision.message).toContain("SubjectAccessReview failed: HTTP 500: Internal error occurred: etcd unavailable (failure policy fail-closed)");
    expect(await counter(registry, "nadguard_subjectaccessreview_requests_total")).toEqual({ error: 2 });
    expect(logs).toHaveLength(2);
    expect(logs[0]).toContain("fail-closed");

    // The endpoint is back: the next review asks again and gets the real answer.
    const again = await decide(podRequest({ username: "alice", groups: [] }, "default"), env, "mutate");
    expect(again.allowed).toBe(true);
  });

  it("fail-open allows, and a reset connection counts as a failure too", async () => {
    const { env, registry } = envWith({ failurePolicy: "fail-open" });
    const remove = cluster.proxy.inject({ method: "POST", path: SAR_PATH, times: Infinity, fault: { reset: true } });
    let decision;
    try {
      decision = await decide(podRequest({ username: "mallory", groups: [] }, "default"), env, "mutate");
    } finally {
      remove();
    }
    expect(decision.allowed).toBe(true);
    expect(await counter(registry, "nadguard_subjectaccessreview_requests_total")).toEqual({ error: 1 });
  });

  it("a slow endpoint is a failure after timeoutMs", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { env } = envWith({ timeoutMs: 200 });
    const remove = cluster.proxy.inject({ method: "POST", path: SAR_PATH, times: Infinity, fault: { hold: held } });
    const started = Date.now();
    try {
      const decision = await decide(podRequest({ username: "alice", groups: [] }, "default"), env, "mutate");
      expect(decision.allowed).toBe(false);
      expect(decision.message).toContain("SubjectAccessReview failed: no answer in time");
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      remove();
      release();
    }
  });
});
