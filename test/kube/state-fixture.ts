// What the informer suites share: an "API server" per file (see cluster.ts), states started with
// test tuning and stopped after each test, and the waits the suites make.
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import type { Snapshot } from "../../src/api/snapshot.js";
import type { InformerStatus } from "../../src/cluster/kube-informer.js";
import { type KubeState, type KubeStateOptions, kubeState } from "../../src/cluster/kube-state.js";
import { type TestCluster, eventually, startTestCluster } from "./cluster.js";

export const NAD_PATH = "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions";
export const MNP_PATH = "/apis/k8s.cni.cncf.io/v1beta1/multi-networkpolicies";
export const NADS = "network-attachment-definitions.k8s.cni.cncf.io";
/** Fast retries: the production default starts at 1 s. */
export const TEST_TUNING = { backoff: { initialMs: 20, maxMs: 200 } };

export interface StateFixture {
  /** Set once the file's beforeAll has run. */
  readonly cluster: TestCluster;
  /** What the states reported through onError during the current test. */
  readonly errors: string[];
  /** A state on the proxied API server, stopped after the test. */
  startState(options?: Partial<KubeStateOptions>): KubeState;
  /** start() resolves after the lists; the watches open right after. */
  watching(path: string): Promise<void>;
  /** Resolves when the snapshot's NADs of `namespace` are exactly the server's. */
  converged(state: KubeState, namespace: string): Promise<string[]>;
}

/** Registers the file's hooks and returns the fixture. */
export function useStateFixture(): StateFixture {
  let cluster: TestCluster | undefined;
  const states: KubeState[] = [];
  const errors: string[] = [];
  beforeAll(async () => {
    cluster = await startTestCluster();
  });
  afterEach(async () => {
    await Promise.all(states.splice(0).map((state) => state.stop()));
    errors.length = 0;
  });
  afterAll(async () => {
    await cluster?.cleanup();
  });
  const fixture: StateFixture = {
    get cluster(): TestCluster {
      if (!cluster) throw new Error("the test cluster is not started yet");
      return cluster;
    },
    errors,
    startState(options = {}) {
      const state = kubeState({
        kubeConfig: fixture.cluster.kubeConfig,
        debounceMs: 10,
        tuning: TEST_TUNING,
        onError: (error) => errors.push(error.message),
        ...options,
      });
      states.push(state);
      return state;
    },
    async watching(path) {
      await eventually(() => expect(fixture.cluster.proxy.openWatches(path)).toBeGreaterThan(0));
    },
    converged(state, namespace) {
      return eventually(async () => {
        const server = await fixture.cluster.api.names("NetworkAttachmentDefinition", namespace);
        expect(nadNames(state.current(), namespace)).toEqual(server);
        return server;
      });
    },
  };
  return fixture;
}

export function nadNames(snapshot: Snapshot | undefined, namespace: string): string[] {
  return [...(snapshot?.nads.values() ?? [])].filter((n) => n.metadata.namespace === namespace).map((n) => n.metadata.name!).sort();
}

export function statusOf(state: KubeState, resource: string): InformerStatus {
  const status = state.status().find((s) => s.resource === resource);
  if (!status) throw new Error(`no informer for ${resource}`);
  return status;
}

/** A promise the test resolves when it wants: for holding requests at the proxy. */
export function gate(): { promise: Promise<void>; release: () => void } {
  let release!: () => void;
  const promise = new Promise<void>((resolve) => (release = resolve));
  return { promise, release };
}
