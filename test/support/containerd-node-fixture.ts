// The node harness as a vitest fixture (kept apart from containerd-node.ts, which the benchmarks
// import outside vitest): one node per suite, started under the e2e lock and stopped after it.
import { afterAll, beforeAll, expect } from "vitest";
import { acquireE2eLock } from "../e2e/sys.js";
import { ContainerdNode, type ContainerdNodeOptions } from "./containerd-node.js";

/**
 * A suite's node: registers hooks that take the e2e lock and start the node (then `setup`, e.g.
 * waiting for NetworkReady or creating pods) before the suite's tests, and stop it after, failing
 * the suite when anything of it is left. Returns the accessor of the running node.
 */
export function useContainerdNode(options: ContainerdNodeOptions, setup?: (node: ContainerdNode) => Promise<void>): () => ContainerdNode {
  let release: (() => Promise<void>) | undefined;
  let node: ContainerdNode | undefined;
  beforeAll(async () => {
    release = await acquireE2eLock();
    node = await ContainerdNode.start(options);
    await setup?.(node);
  }, 660_000);
  afterAll(async () => {
    try {
      expect(await node?.stop()).toEqual([]);
    } finally {
      await release?.();
    }
  }, 120_000);
  return () => {
    if (!node) throw new Error("the node is not started (its beforeAll failed or has not run)");
    return node;
  };
}
