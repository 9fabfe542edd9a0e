// Live cluster state against "the API server" (the fake, or KUBECONFIG's cluster: see README.md):
// readiness, reconnection after a dropped watch, relist after 410 Gone, restarts with backoff,
// the watchdog, debounced snapshots, the pods of one node, stripping, RBAC on request.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import type { Snapshot } from "../../src/api/snapshot.js";
import { statusObject } from "./fake-apiserver.js";
import { boundPod, eventually, nad, usesRealCluster } from "./cluster.js";
import { MNP_PATH, NADS, NAD_PATH, TEST_TUNING, gate, nadNames, statusOf, useStateFixture } from "./state-fixture.js";

const fx = useStateFixture();

describe("readiness", () => {
  it("is ready, and start() resolves, only after the initial lists of all informers", async () => {
    const ns = await fx.cluster.namespace("ready");
    await fx.cluster.api.create(nad(ns, "before-start"));
    const held = gate();
    fx.cluster.proxy.inject({ method: "GET", path: MNP_PATH, watch: false, fault: { hold: held.promise } });
    const state = fx.startState();
    let started = false;
    const start = state.start().then(() => (started = true));

    // The NAD and Namespace lists are in; the policy list is held.
    await eventually(() => expect(statusOf(state, NADS).synced).toBe(true));
    await eventually(() => expect(statusOf(state, "namespaces").synced).toBe(true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(state.ready()).toBe(false);
    expect(state.current()).toBeUndefined();
    expect(started).toBe(false);

    held.release();
    await start;
    expect(state.ready()).toBe(true);
    expect(nadNames(state.current(), ns)).toEqual(["before-start"]);
    expect(state.current()!.namespaces.has(ns)).toBe(true);
  });

  it("retries failing initial lists with backoff and becomes ready when they succeed", async () => {
    const ns = await fx.cluster.namespace("list-fails");
    await fx.cluster.api.create(nad(ns, "a"));
    const failure = { respond: { status: 500, body: statusObject(500, "InternalError", "etcdserver: request timed out") } };
    fx.cluster.proxy.inject({ method: "GET", path: NAD_PATH, watch: false, times: 2, fault: failure });
    const before = fx.cluster.proxy.count({ method: "GET", path: NAD_PATH, watch: false });
    const state = fx.startState();
    await state.start();
    expect(nadNames(state.current(), ns)).toEqual(["a"]);
    expect(fx.cluster.proxy.count({ method: "GET", path: NAD_PATH, watch: false }) - before).toBe(3);
    expect(statusOf(state, NADS).restarts.error).toBe(2);
    expect(fx.errors.filter((e) => e.includes("etcdserver: request timed out"))).toHaveLength(2);
  });

  it("start() rejects after syncTimeoutMs, naming the resource still listing and its last error", async () => {
    const failure = { respond: { status: 403, body: statusObject(403, "Forbidden", "multi-networkpolicies is forbidden") } };
    const remove = fx.cluster.proxy.inject({ method: "GET", path: MNP_PATH, watch: false, times: Infinity, fault: failure });
    try {
      const state = fx.startState({ syncTimeoutMs: 300 });
      await expect(state.start()).rejects.toThrow(/still listing multi-networkpolicies\.k8s\.cni\.cncf\.io \(last error: .*forbidden/);
      expect(state.ready()).toBe(false);
    } finally {
      remove();
    }
  });
});

describe("reconnection", () => {
  it("after a dropped watch, resumes from its resourceVersion (no relist) and converges", async () => {
    const ns = await fx.cluster.namespace("drop");
    for (const name of ["a", "c"]) await fx.cluster.api.create(nad(ns, name));
    const state = fx.startState();
    await state.start();
    await fx.watching(NAD_PATH);
    const lists = fx.cluster.proxy.count({ path: NAD_PATH, watch: false });

    // The next watch waits until the changes below are made while no watch is open.
    const held = gate();
    fx.cluster.proxy.inject({ path: NAD_PATH, watch: true, fault: { hold: held.promise } });
    expect(fx.cluster.proxy.dropWatches(NAD_PATH)).toBeGreaterThan(0);
    await eventually(() => expect(statusOf(state, NADS).restarts.error).toBeGreaterThan(0));
    await fx.cluster.api.create(nad(ns, "b"));
    await fx.cluster.api.update("NetworkAttachmentDefinition", ns, "a", (o) => (o.metadata.annotations = { "k8s.v1.cni.cncf.io/resourceName": "example.com/vf" }));
    await fx.cluster.api.delete("NetworkAttachmentDefinition", ns, "c");
    held.release();

    expect(await fx.converged(state, ns)).toEqual(["a", "b"]);
    await eventually(() =>
      expect(state.current()!.nads.get(`${ns}/a`)?.metadata.annotations).toEqual({ "k8s.v1.cni.cncf.io/resourceName": "example.com/vf" }),
    );
    expect(fx.cluster.proxy.count({ path: NAD_PATH, watch: false })).toBe(lists);
    expect(fx.errors.some((e) => e.startsWith(`${NADS}: `))).toBe(true);
  });

  it("after 410 Gone as an ERROR event on the watch, relists and converges (deletions included)", async () => {
    const ns = await fx.cluster.namespace("gone-event");
    for (const name of ["a", "c"]) await fx.cluster.api.create(nad(ns, name));
    const state = fx.startState();
    await state.start();
    await fx.watching(NAD_PATH);
    const lists = fx.cluster.proxy.count({ path: NAD_PATH, watch: false });

    // resourceVersion=1 is long compacted: the server itself answers 410.
    const held = gate();
    fx.cluster.proxy.inject({ path: NAD_PATH, watch: true, fault: { hold: held.promise } });
    fx.cluster.proxy.inject({ path: NAD_PATH, watch: true, fault: { rewriteQuery: { resourceVersion: "1" } } });
    fx.cluster.proxy.dropWatches(NAD_PATH);
    await fx.cluster.api.create(nad(ns, "b"));
    await fx.cluster.api.delete("NetworkAttachmentDefinition", ns, "c");
    held.release();

    expect(await fx.converged(state, ns)).toEqual(["a", "b"]);
    const status = statusOf(state, NADS);
    expect(status.restarts.expired).toBeGreaterThanOrEqual(1);
    expect(fx.cluster.proxy.count({ path: NAD_PATH, watch: false })).toBe(lists + 1);
  });

  it("after HTTP 410 on the watch request, relists and converges", async () => {
    const ns = await fx.cluster.namespace("gone-http");
    await fx.cluster.api.create(nad(ns, "a"));
    const registry = new Registry();
    const state = fx.startState({ registry });
    await state.start();
    await fx.watching(NAD_PATH);
    const lists = fx.cluster.proxy.count({ path: NAD_PATH, watch: false });
    const gone = { respond: { status: 410, body: statusObject(410, "Gone", "too old resource version: 5 (1000)") } };
    fx.cluster.proxy.inject({ path: NAD_PATH, watch: true, fault: gone });
    await fx.cluster.api.delete("NetworkAttachmentDefinition", ns, "a");
    fx.cluster.proxy.dropWatches(NAD_PATH);
    await fx.cluster.api.create(nad(ns, "b"));

    expect(await fx.converged(state, ns)).toEqual(["b"]);
    expect(statusOf(state, NADS).restarts.expired).toBe(1);
    expect(fx.cluster.proxy.count({ path: NAD_PATH, watch: false })).toBe(lists + 1);
    const restarts = await registry.getSingleMetric("nadguard_kube_watch_restarts_total")!.get();
    expect(restarts.values).toContainEqual({ labels: { resource: NADS, reason: "expired" }, value: 1 });
  });

  it("keeps retrying with backoff while the watch fails (HTTP 500, connection reset) and never stops", async () => {
    const ns = await fx.cluster.namespace("flaky");
    const state = fx.startState();
    await state.start();
    await fx.watching(NAD_PATH);
    const watches = fx.cluster.proxy.count({ path: NAD_PATH, watch: true });
    const internal = { respond: { status: 500, body: statusObject(500, "InternalError", "injected") } };
    fx.cluster.proxy.inject({ path: NAD_PATH, watch: true, times: 3, fault: internal });
    fx.cluster.proxy.inject({ path: NAD_PATH, watch: true, times: 2, fault: { reset: true } });
    fx.cluster.proxy.dropWatches(NAD_PATH);
    await fx.cluster.api.create(nad(ns, "late"));

    expect(await fx.converged(state, ns)).toEqual(["late"]);
    // Five failed watch requests, then one that works. undici may retry a reset request on its
    // own once (an idempotent GET on a reused connection), so resets count as one failure or two.
    expect(fx.cluster.proxy.count({ path: NAD_PATH, watch: true }) - watches).toBeGreaterThanOrEqual(6);
    expect(statusOf(state, NADS).restarts.error).toBeGreaterThanOrEqual(5);
    expect(state.ready()).toBe(true);
  });
});

describe("watchdog", () => {
  it("restarts a watch that went silent (half-open connection) and catches up from its resourceVersion", async () => {
    const ns = await fx.cluster.namespace("silent");
    const state = fx.startState({ tuning: { ...TEST_TUNING, watchdogMs: 400 } });
    await state.start();
    await fx.watching(NAD_PATH);
    expect(fx.cluster.proxy.stallWatches(NAD_PATH)).toBeGreaterThan(0);
    const watches = fx.cluster.proxy.count({ path: NAD_PATH, watch: true });
    await fx.cluster.api.create(nad(ns, "while-silent"));

    // Well before client-node's own 30 s inactivity timer could have done it.
    await eventually(() => expect(nadNames(state.current(), ns)).toEqual(["while-silent"]), 5_000);
    expect(fx.cluster.proxy.count({ path: NAD_PATH, watch: true })).toBeGreaterThan(watches);
    expect(statusOf(state, NADS).restarts.watchdog).toBeGreaterThanOrEqual(1);
  });

  it("without the watchdog, a silent watch loses the event (the control)", async () => {
    const ns = await fx.cluster.namespace("silent-control");
    const state = fx.startState({ tuning: { ...TEST_TUNING, watchdogMs: 60_000 } });
    await state.start();
    await fx.watching(NAD_PATH);
    fx.cluster.proxy.stallWatches(NAD_PATH);
    await fx.cluster.api.create(nad(ns, "lost"));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(nadNames(state.current(), ns)).toEqual([]);
  });
});

describe("snapshots", () => {
  it("debounces a burst of events into few snapshots with everything in the last", async () => {
    const ns = await fx.cluster.namespace("burst");
    const state = fx.startState({ debounceMs: 300 });
    await state.start();
    const published: Snapshot[] = [];
    state.subscribe((snapshot) => published.push(snapshot));
    const names = Array.from({ length: 20 }, (_, i) => `n${String(i).padStart(2, "0")}`);
    await Promise.all(names.map((name) => fx.cluster.api.create(nad(ns, name))));
    await eventually(() => expect(nadNames(state.current(), ns)).toEqual(names));
    // A real cluster spreads 20 creations over more time, and other namespaces change meanwhile.
    expect(published.length).toBeLessThanOrEqual(fx.cluster.real ? 10 : 3);
    const versions = published.map((s) => s.version);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
  });

  it("watches only the pods of its node (field selector spec.nodeName) and strips them", async () => {
    const ns = await fx.cluster.namespace("pods");
    const node = `${ns}-node-a`;
    const mine = boundPod(ns, "mine", node, { app: "x" });
    mine.metadata.annotations = {
      "k8s.v1.cni.cncf.io/networks": "macvlan-a",
      "nadguard.io/injected-resources": "example.com/vf",
      "kubectl.kubernetes.io/last-applied-configuration": "{\"a\":1}",
    };
    await fx.cluster.api.create(mine);
    await fx.cluster.api.create(boundPod(ns, "other", `${ns}-node-b`));
    const state = fx.startState({ watch: { pods: { nodeName: node } } });
    await state.start();
    await fx.cluster.api.create(boundPod(ns, "mine-later", node));
    await fx.cluster.api.create(boundPod(ns, "other-later", `${ns}-node-b`));

    const podsOf = (): string[] => [...state.current()!.pods.keys()].filter((k) => k.startsWith(`${ns}/`)).sort();
    await eventually(() => expect(podsOf()).toEqual([`${ns}/mine`, `${ns}/mine-later`]));
    const pod = state.current()!.pods.get(`${ns}/mine`)!;
    expect(pod.metadata.annotations).toEqual({ "k8s.v1.cni.cncf.io/networks": "macvlan-a", "nadguard.io/injected-resources": "example.com/vf" });
    expect(pod.metadata.labels).toEqual({ app: "x" });
    expect(pod.spec.containers).toEqual([{ name: "app" }]);
    expect(pod.spec.nodeName).toBe(node);
    expect(Object.keys(pod.metadata).sort()).toEqual(["annotations", "labels", "name", "namespace", "resourceVersion", "uid"]);
    expect(fx.cluster.proxy.requests.some((r) => r.path === "/api/v1/pods" && r.watch && r.query.get("fieldSelector") === `spec.nodeName=${node}`)).toBe(true);
  });

  // A real cluster's CRD schema may refuse such an object before nadguard sees it.
  it.skipIf(usesRealCluster())("reports an object that fails its schema as a problem and leaves it out", async () => {
    const ns = await fx.cluster.namespace("invalid");
    await fx.cluster.api.create({
      apiVersion: "k8s.cni.cncf.io/v1beta1",
      kind: "MultiNetworkPolicy",
      metadata: { name: "sideways", namespace: ns },
      spec: { podSelector: {}, policyTypes: ["Sideways"] },
    });
    const state = fx.startState();
    await state.start();
    expect(state.current()!.policies.has(`${ns}/sideways`)).toBe(false);
    expect(state.current()!.problems.map((p) => p.path)).toContain(`cluster: MultiNetworkPolicy ${ns}/sideways: spec.policyTypes[0]`);
  });

  it("watches RBAC objects only when asked", async () => {
    const ns = await fx.cluster.namespace("rbac");
    const role = {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: { name: "nad-user", namespace: ns },
      rules: [{ apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"], verbs: ["use"] }],
    };
    await fx.cluster.api.create(role);
    const rbacRequests = (): number => fx.cluster.proxy.count({ path: "/apis/rbac.authorization.k8s.io/" });
    const before = rbacRequests();
    const plain = fx.startState();
    await plain.start();
    expect(rbacRequests()).toBe(before);
    expect(plain.current()!.rbac.roles.size).toBe(0);

    const withRbac = fx.startState({ watch: { rbac: true } });
    await withRbac.start();
    expect(withRbac.current()!.rbac.roles.get(`${ns}/nad-user`)?.rules).toEqual(role.rules);
    expect(rbacRequests()).toBeGreaterThan(before);
  });
});
