// client-node 2.0.0 aborted every watch 30 s after it started, whatever flowed
// (kubernetes-client/javascript#3020, fixed by #3022). This
// pins down what 2.0.1, the version installed, does, with its real 30 s constant and a fake
// clock: a watch that receives data survives well past 30 s on one connection, and only a watch
// silent for 30 s is cut, with a TimeoutError (which ListWatch answers by re-watching from its
// resourceVersion, and our informer counts as nothing worse). Only setTimeout/clearTimeout are
// faked; the HTTP traffic is real.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Watch } from "@kubernetes/client-node";
import { type TestCluster, nad, startTestCluster } from "./cluster.js";

let cluster: TestCluster;
let ns: string;

beforeAll(async () => {
  cluster = await startTestCluster();
  ns = await cluster.namespace("timeout");
  await cluster.api.create(nad(ns, "ticker"));
});

afterEach(() => {
  vi.useRealTimers();
});

afterAll(async () => {
  await cluster?.cleanup();
});

/** Waits on real I/O without touching the faked timers. */
async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("client-node 2.0.1 Watch timeout", () => {
  it("keeps a watch open past 30 s while data flows, and cuts it only after 30 s of silence", async () => {
    const path = `/apis/k8s.cni.cncf.io/v1/namespaces/${ns}/network-attachment-definitions`;
    const { metadata } = await cluster.api.get("NetworkAttachmentDefinition", ns, "ticker");
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const events: string[] = [];
    let ended: unknown = "open";
    const watches = (): number => cluster.proxy.count({ path, watch: true });
    const before = watches();
    const controller = await new Watch(cluster.kubeConfig).watch(
      path,
      { resourceVersion: metadata.resourceVersion },
      (type, object: { metadata: { annotations?: Record<string, string> } }) => events.push(`${type} ${object.metadata.annotations?.tick ?? ""}`),
      (error) => (ended = error ?? "closed"),
    );
    try {
      // 4 × 10 s = 40 s on one connection, an event every 10 s.
      for (let tick = 1; tick <= 4; tick++) {
        await vi.advanceTimersByTimeAsync(10_000);
        await cluster.api.update("NetworkAttachmentDefinition", ns, "ticker", (o) => (o.metadata.annotations = { tick: String(tick) }));
        await until(() => events.length >= tick);
      }
      expect(events).toEqual(["MODIFIED 1", "MODIFIED 2", "MODIFIED 3", "MODIFIED 4"]);
      expect(ended).toBe("open");
      expect(watches() - before).toBe(1);

      // Silence: 29 s is fine, 30 s is not.
      await vi.advanceTimersByTimeAsync(29_000);
      await new Promise((resolve) => setImmediate(resolve));
      expect(ended).toBe("open");
      await vi.advanceTimersByTimeAsync(1_100);
      await until(() => ended !== "open");
      expect((ended as Error).name).toBe("TimeoutError");
    } finally {
      controller.abort();
    }
  });
});
