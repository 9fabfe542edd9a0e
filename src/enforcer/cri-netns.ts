// Strategy (c) of netns resolution: ask the container runtime. On a node whose runtime speaks CRI
// (containerd, CRI-O), the pod's ready sandbox is found by the labels kubelet puts on it
// (`io.kubernetes.pod.uid`, else namespace and name) with ListPodSandbox, and its netns path is read
// from PodSandboxStatus(verbose) — the path the CNI plugins were given. Unlike the /proc scan it
// needs no host PID namespace, only the runtime's socket.
import { CriClient, type PodSandbox } from "../cri/runtime-client.js";
import { lookupResolver, type NetnsResolver, type PodRef, type SandboxNetnsLookup } from "./netns.js";

/** The newest of a pod's ready sandboxes (kubelet keeps one; a restarting pod may briefly have two). */
function newest(sandboxes: readonly PodSandbox[]): PodSandbox | undefined {
  return [...sandboxes].sort((a, b) => (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : BigInt(b.createdAt) < BigInt(a.createdAt) ? -1 : 0))[0];
}

/** A per-pod lookup over a CRI client; rejects on transport errors and for a pod in the node's netns. */
export function criNetnsLookup(client: CriClient): SandboxNetnsLookup {
  return {
    async netnsPathOf(pod: PodRef): Promise<string | undefined> {
      const labelSelector: Record<string, string> = pod.uid ? { "io.kubernetes.pod.uid": pod.uid } : { "io.kubernetes.pod.namespace": pod.namespace, "io.kubernetes.pod.name": pod.name };
      const sandbox = newest(await client.listPodSandbox({ state: "SANDBOX_READY", labelSelector }));
      if (!sandbox) return undefined;
      const { netnsPath } = await client.sandboxDetails(sandbox.id);
      if (netnsPath === "") throw new Error(`sandbox ${sandbox.id} shares the node's network namespace`);
      return netnsPath;
    },
  };
}

/** Strategy (c) on the runtime's CRI socket (containerd: `/run/containerd/containerd.sock`). */
export function criResolver(socket: string, options: { timeoutMs?: number } = {}): NetnsResolver {
  return lookupResolver(`cri ${socket}`, criNetnsLookup(new CriClient(socket, { timeoutMs: options.timeoutMs ?? 10_000 })));
}
