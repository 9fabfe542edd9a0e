// What `nadguard node --kube` writes about a pod (src/cluster/kube-pod-status.ts), against the fake
// API server (or KUBECONFIG's cluster) through the fault proxy: network-status through pods/status
// kept when another writer changes the pod between the read and the write (409 Conflict, then a
// fresh read), the spec untouched, a pod created again under another UID left alone, and the
// AddedInterface Events as Multus words them.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addedInterfaceEvents, writeNetworkStatus } from "../../src/cluster/kube-pod-status.js";
import { type TestCluster, boundPod, startTestCluster } from "./cluster.js";

const STATUS = "k8s.v1.cni.cncf.io/network-status";
let cluster: TestCluster;
let ns: string;

beforeAll(async () => {
  cluster = await startTestCluster();
  ns = await cluster.namespace("pod-status");
}, 30_000);

afterAll(async () => {
  await cluster?.cleanup();
});

describe("network-status through pods/status", () => {
  it("survives a writer that changes the pod between the read and the write: 409, read again, both changes kept", async () => {
    const created = await cluster.api.create(boundPod(ns, "web", "node-1"));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    cluster.proxy.inject({ method: "PUT", path: `/api/v1/namespaces/${ns}/pods/web/status`, fault: { hold: held } });
    const statuses = [{ name: "cluster", interface: "eth0", ips: ["198.18.0.5"], default: true }];
    const writing = writeNetworkStatus(cluster.kubeConfig, { namespace: ns, name: "web", uid: String(created.metadata.uid) }, statuses);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await cluster.api.update("Pod", ns, "web", (pod) => (pod.metadata.labels = { ...pod.metadata.labels, touched: "yes" }));
    release();
    expect(await writing).toEqual({ ok: true, value: "written" });
    const stored = await cluster.api.get("Pod", ns, "web");
    expect(JSON.parse(stored.metadata.annotations![STATUS]!)).toEqual(statuses);
    expect(stored.metadata.labels).toEqual({ touched: "yes" });
    expect((stored as unknown as { spec: { nodeName: string } }).spec.nodeName).toBe("node-1");
    if (cluster.fake) expect(cluster.fake.requests.filter((r) => r.method === "PUT" && r.path.endsWith("/pods/web/status")).length).toBe(2);

    expect(await writeNetworkStatus(cluster.kubeConfig, { namespace: ns, name: "web" }, undefined)).toEqual({ ok: true, value: "removed" });
    expect((await cluster.api.get("Pod", ns, "web")).metadata.annotations?.[STATUS]).toBeUndefined();
  });

  it("leaves a pod alone that is gone, or that has another UID (deleted and created again)", async () => {
    await cluster.api.create(boundPod(ns, "again", "node-1"));
    expect(await writeNetworkStatus(cluster.kubeConfig, { namespace: ns, name: "again", uid: "an-older-uid" }, [])).toEqual({ ok: true, value: "pod gone" });
    expect((await cluster.api.get("Pod", ns, "again")).metadata.annotations?.[STATUS]).toBeUndefined();
    expect(await writeNetworkStatus(cluster.kubeConfig, { namespace: ns, name: "never-was" }, [])).toEqual({ ok: true, value: "pod gone" });
  });

  it("says which pod and why when the API server refuses the write", async () => {
    await cluster.api.create(boundPod(ns, "refused", "node-1"));
    cluster.proxy.inject({ method: "PUT", path: `/api/v1/namespaces/${ns}/pods/refused/status`, fault: { respond: { status: 403, body: { kind: "Status", apiVersion: "v1", status: "Failure", reason: "Forbidden", code: 403, message: 'pods "refused" is forbidden: cannot update resource "pods/status"' } } } });
    const written = await writeNetworkStatus(cluster.kubeConfig, { namespace: ns, name: "refused" }, []);
    expect(written).toEqual({ ok: false, error: `pod ${ns}/refused: cannot update pods/status: PUT /api/v1/namespaces/${ns}/pods/refused/status: HTTP 403: pods "refused" is forbidden: cannot update resource "pods/status"` });
  });

  it("creates one AddedInterface Event per interface, worded as Multus words it", async () => {
    const created = await cluster.api.create(boundPod(ns, "evented", "node-1"));
    const made = await addedInterfaceEvents(cluster.kubeConfig, { namespace: ns, name: "evented", uid: String(created.metadata.uid) }, "node-1", [
      { name: "cluster", interface: "eth0", ips: ["198.18.0.5"] },
      { name: `${ns}/blue`, interface: "net1", ips: ["198.18.1.5", "fd00::5"] },
    ]);
    expect(made).toEqual({ ok: true, value: 2 });
    const events = await Promise.all((await cluster.api.names("Event", ns)).map((name) => cluster.api.get("Event", ns, name)));
    const seen = events.map((e) => e as unknown as { reason: string; type: string; message: string; involvedObject: { kind: string; name: string; uid: string }; source: { component: string; host: string } });
    expect(seen.map((e) => [e.involvedObject.kind, e.involvedObject.name, e.involvedObject.uid, e.type, e.reason, e.message, e.source.component, e.source.host]).sort()).toEqual([
      ["Pod", "evented", created.metadata.uid, "Normal", "AddedInterface", "Add eth0 [198.18.0.5] from cluster", "nadguard", "node-1"],
      ["Pod", "evented", created.metadata.uid, "Normal", "AddedInterface", `Add net1 [198.18.1.5 fd00::5] from ${ns}/blue`, "nadguard", "node-1"],
    ]);
  });
});
