// Kubernetes mode for the commands: a KubeConfig from the flags (`--kubeconfig FILE`,
// `--in-cluster`, `--context NAME`), the informer-fed ClusterState, and the SubjectAccessReview
// reviewer. The commands decide which of them they use: the webhook takes NADs, Namespaces and
// policies with the SAR reviewer; the enforcer adds the pods of its node.
import type { Registry } from "prom-client";
import { FAILURE_POLICIES, type FailurePolicy, type SarReviewer, sarReviewer } from "../authz/sar.js";
import { KubeConfig } from "@kubernetes/client-node/dist/config.js";
import { type KubeState, type WatchSelection, kubeState } from "../cluster/kube-state.js";
import { UsageError } from "./io.js";

export interface KubeFlags {
  /** `--kubeconfig FILE`; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
  readonly kubeconfig?: string | undefined;
  /** `--in-cluster`: the pod's service account token and CA, and KUBERNETES_SERVICE_HOST/PORT. */
  readonly inCluster?: boolean | undefined;
  /** `--context NAME` of the kubeconfig. */
  readonly context?: string | undefined;
}

/** Loads the KubeConfig the flags name; a UsageError says what is wrong with them. */
export function loadKubeConfig(flags: KubeFlags): KubeConfig {
  if (flags.inCluster && flags.kubeconfig) throw new UsageError("--in-cluster and --kubeconfig exclude each other");
  if (flags.inCluster && flags.context) throw new UsageError("--context needs a kubeconfig, not --in-cluster");
  const kc = new KubeConfig();
  try {
    if (flags.inCluster) kc.loadFromCluster();
    else if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
  } catch (error) {
    const source = flags.inCluster ? "the in-cluster configuration" : (flags.kubeconfig ?? "the default kubeconfig");
    throw new UsageError(`cannot load ${source}: ${(error as Error).message}`);
  }
  if (flags.context) {
    if (!kc.getContextObject(flags.context)) {
      throw new UsageError(`--context ${flags.context}: no such context (have: ${kc.getContexts().map((c) => c.name).join(", ") || "none"})`);
    }
    kc.setCurrentContext(flags.context);
  }
  if (!kc.getCurrentCluster()) {
    throw new UsageError("no Kubernetes cluster configured: give --kubeconfig FILE, set KUBECONFIG, or run in a pod with --in-cluster");
  }
  return kc;
}

export interface KubeStateFlags {
  /** Watch only the pods of this node (the enforcer); absent: no pods. */
  readonly nodeName?: string | undefined;
  /** Also watch every pod (e.g. for the webhook's NAD-in-use checks). Ignored with nodeName. */
  readonly allPods?: boolean | undefined;
  /** Watch Roles, ClusterRoles and bindings for the offline RBAC evaluator (not needed with SAR). */
  readonly rbac?: boolean | undefined;
  /** start() rejects after this long without every first list; default: waits. */
  readonly syncTimeoutMs?: number | undefined;
  readonly registry?: Registry | undefined;
  readonly log: (line: string) => void;
}

/** The informer-fed ClusterState for a command; failures are logged as `state: …` and retried. */
export function kubeStateFor(kubeConfig: KubeConfig, flags: KubeStateFlags): KubeState {
  const pods: WatchSelection["pods"] = flags.nodeName ? { nodeName: flags.nodeName } : flags.allPods === true;
  return kubeState({
    kubeConfig,
    watch: { pods, rbac: flags.rbac === true },
    ...(flags.syncTimeoutMs !== undefined && { syncTimeoutMs: flags.syncTimeoutMs }),
    ...(flags.registry !== undefined && { registry: flags.registry }),
    onError: (error) => flags.log(`state: ${error.message}`),
  });
}

/** `--sar-failure-policy`: fail-closed (default) or fail-open. */
export function parseFailurePolicy(value: string | undefined): FailurePolicy {
  if (value === undefined) return "fail-closed";
  if ((FAILURE_POLICIES as readonly string[]).includes(value)) return value as FailurePolicy;
  throw new UsageError(`--sar-failure-policy ${value}: expected ${FAILURE_POLICIES.join(" or ")}`);
}

export interface SarFlags {
  readonly failurePolicy?: FailurePolicy | undefined;
  readonly registry?: Registry | undefined;
  readonly log: (line: string) => void;
}

/**
 * The reviewer for authorization mode `rbac` in a cluster. Make one per process and put it in
 * every AdmissionEnv: its cache must outlive snapshots.
 */
export function sarReviewerFor(kubeConfig: KubeConfig, flags: SarFlags): SarReviewer {
  return sarReviewer(kubeConfig, {
    ...(flags.failurePolicy !== undefined && { failurePolicy: flags.failurePolicy }),
    ...(flags.registry !== undefined && { registry: flags.registry }),
    log: (line) => flags.log(`authz: ${line}`),
  });
}
