// Quiet resources: what happens to a watch that sees no change for a long time. Real waits of
// several seconds, kept apart from informers.test.ts so that both files run side by side.
import { describe, expect, it } from "vitest";
import { eventually, nad, usesRealCluster } from "./cluster.js";
import { NAD_PATH, NADS, TEST_TUNING, nadNames, statusOf, useStateFixture } from "./state-fixture.js";

const fx = useStateFixture();

describe("quiet resources", () => {
  it("renews a watch the server ends without events or bookmarks within a second, not after ListWatch's growing pause", async () => {
    const ns = await fx.cluster.namespace("quiet");
    // Watches of 1 s: the server ends each one without a bookmark (none is due 2 s before a 1 s deadline).
    const state = fx.startState({ tuning: { ...TEST_TUNING, watchTimeoutSeconds: [1, 1] } });
    await state.start();
    // ListWatch alone pauses 0, 1, 2, then 4 s between them: watches from 0, 1, 3 and 6 s, then
    // none from 7 to 11 s. With the pause capped at 1 s: from 0, 1, 3, 5, 7, 9 s.
    await new Promise((resolve) => setTimeout(resolve, 7_500));
    const created = Date.now();
    await fx.cluster.api.create(nad(ns, "late"));
    await eventually(() => expect(nadNames(state.current(), ns)).toEqual(["late"]), 5_000);
    expect(Date.now() - created).toBeLessThan(1_800);
  }, 15_000);
});

describe("bookmarks", () => {
  // A real cluster's watch cache moves a quiet resource's resourceVersion on its own schedule.
  it.skipIf(usesRealCluster())("re-watches a quiet resource from the resourceVersion of the bookmark sent before the deadline", async () => {
    const ns = await fx.cluster.namespace("bookmark");
    const state = fx.startState({ tuning: { ...TEST_TUNING, watchTimeoutSeconds: [3, 3] } });
    await state.start();
    await fx.watching(NAD_PATH);
    const watchRvs = (): number[] =>
      fx.cluster.proxy.requests.filter((r) => r.path === NAD_PATH && r.watch).map((r) => Number(r.query.get("resourceVersion")));
    const first = watchRvs().at(-1)!;
    // Writes elsewhere move the server's resourceVersion; the NAD watch sees no event.
    await fx.cluster.api.create({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "elsewhere", namespace: ns } });
    await eventually(() => expect(watchRvs().at(-1)).toBeGreaterThan(first), 5_000, 50);
    expect(statusOf(state, NADS).lists).toBe(1);
  }, 10_000);
});

