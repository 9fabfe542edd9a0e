// The PodSandboxConfig kubelet sends to the runtime for a pod (kubelet's
// kuberuntime_sandbox.go generatePodSandboxConfig, cgroupfs driver): metadata, hostname, log
// directory, DNS for the pod's dnsPolicy, one port mapping per container port, labels (the pod's
// plus kubelet's three), annotations exactly as stored, and the Linux part (cgroup parent of the
// pod's QoS class, namespace modes, sysctls). So a pod created through the CRI by the tests reaches
// containerd and the CNI plugins as it would from a real node.
import { z } from "zod";
import type { Pod } from "../api/objects.js";
import type { CriProtocol, NamespaceMode, PodSandboxConfig } from "./runtime-client.js";

/** The node's kubelet settings that shape a sandbox. */
export interface KubeletSettings {
  /** kubelet `--cgroup-root`; pods go under `<root>/kubepods[/<qos>]/pod<uid>`. */
  readonly cgroupRoot: string;
  /** kubelet `clusterDNS`. */
  readonly clusterDns: readonly string[];
  /** kubelet `clusterDomain`. */
  readonly clusterDomain: string;
  /** Search domains of the node's resolv.conf (appended for ClusterFirst, used alone for Default). */
  readonly hostSearches?: readonly string[];
  readonly hostServers?: readonly string[];
}

/** The fields of a pod that kubelet reads and `Pod` (src/api/objects.ts) leaves loose. */
const SandboxFields = z.looseObject({
  spec: z.looseObject({
    hostname: z.string().optional(),
    subdomain: z.string().optional(),
    hostNetwork: z.boolean().optional(),
    hostPID: z.boolean().optional(),
    hostIPC: z.boolean().optional(),
    shareProcessNamespace: z.boolean().optional(),
    dnsPolicy: z.enum(["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"]).optional(),
    dnsConfig: z
      .looseObject({
        nameservers: z.array(z.string()).nullish(),
        searches: z.array(z.string()).nullish(),
        options: z.array(z.looseObject({ name: z.string(), value: z.string().optional() })).nullish(),
      })
      .nullish(),
    securityContext: z.looseObject({ sysctls: z.array(z.object({ name: z.string(), value: z.string() })).nullish() }).nullish(),
    containers: z.array(
      z.looseObject({
        ports: z
          .array(
            z.looseObject({
              containerPort: z.number().int(),
              hostPort: z.number().int().optional(),
              hostIP: z.string().optional(),
              protocol: z.enum(["TCP", "UDP", "SCTP"]).optional(),
            }),
          )
          .nullish(),
        resources: z.looseObject({ requests: z.record(z.string(), z.union([z.string(), z.number()])).nullish(), limits: z.record(z.string(), z.union([z.string(), z.number()])).nullish() }).nullish(),
      }),
    ),
  }),
});

/** The fields kubelet reads, or an error naming the pod and the offending path. */
function sandboxFields(pod: Pod): z.infer<typeof SandboxFields> {
  const parsed = SandboxFields.safeParse(pod);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new Error(`pod ${pod.metadata.namespace ?? "?"}/${pod.metadata.name ?? "?"}: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
}

export type QosClass = "Guaranteed" | "Burstable" | "BestEffort";

/** The pod's QoS class as kubelet computes it (cpu and memory only). */
export function qosClass(pod: Pod): QosClass {
  const { containers } = sandboxFields(pod).spec;
  const resources = ["cpu", "memory"];
  const anySet = containers.some((c) => resources.some((r) => c.resources?.requests?.[r] !== undefined || c.resources?.limits?.[r] !== undefined));
  if (!anySet) return "BestEffort";
  const guaranteed = containers.every((c) =>
    resources.every((r) => {
      const limit = c.resources?.limits?.[r];
      const request = c.resources?.requests?.[r] ?? limit;
      return limit !== undefined && String(limit) === String(request);
    }),
  );
  return guaranteed ? "Guaranteed" : "Burstable";
}

/** The cgroup parent kubelet (cgroupfs driver) gives a pod: `<root>/kubepods[/burstable|/besteffort]/pod<uid>`. */
export function podCgroupParent(pod: Pod, cgroupRoot: string): string {
  const qos = qosClass(pod);
  const tier = qos === "Guaranteed" ? "" : `/${qos.toLowerCase()}`;
  return `${cgroupRoot.replace(/\/+$/, "")}/kubepods${tier}/pod${pod.metadata.uid ?? ""}`;
}

function dnsConfig(pod: Pod, kubelet: KubeletSettings): PodSandboxConfig["dnsConfig"] {
  const { spec } = sandboxFields(pod);
  if (spec.hostNetwork && spec.dnsPolicy !== "ClusterFirstWithHostNet" && spec.dnsPolicy !== "None") return undefined;
  const namespace = pod.metadata.namespace ?? "default";
  const domain = kubelet.clusterDomain;
  const hostSearches = kubelet.hostSearches ?? [];
  const base =
    spec.dnsPolicy === "Default"
      ? { servers: [...(kubelet.hostServers ?? [])], searches: [...hostSearches], options: [] as string[] }
      : spec.dnsPolicy === "None"
        ? { servers: [] as string[], searches: [] as string[], options: [] as string[] }
        : { servers: [...kubelet.clusterDns], searches: [`${namespace}.svc.${domain}`, `svc.${domain}`, domain, ...hostSearches], options: ["ndots:5"] };
  const extra = spec.dnsConfig;
  return {
    servers: [...base.servers, ...(extra?.nameservers ?? [])],
    searches: [...base.searches, ...(extra?.searches ?? [])],
    options: [...base.options, ...(extra?.options ?? []).map((o) => (o.value === undefined ? o.name : `${o.name}:${o.value}`))],
  };
}

/** The pod's name, namespace and uid; throws naming the first one missing. */
function podIdentity(pod: Pod): { name: string; namespace: string; uid: string } {
  const { name, namespace, uid } = pod.metadata;
  if (!name || !namespace || !uid) throw new Error(`pod ${namespace ?? "?"}/${name ?? "?"} has no ${!name ? "metadata.name" : !namespace ? "metadata.namespace" : "metadata.uid"}`);
  return { name, namespace, uid };
}

/** One port mapping per declared container port, as kubelet lists them. */
function portMappings(spec: ReturnType<typeof sandboxFields>["spec"]): PodSandboxConfig["portMappings"] {
  return spec.containers.flatMap((c) =>
    (c.ports ?? []).map((p) => ({
      protocol: (p.protocol ?? "TCP") as CriProtocol,
      containerPort: p.containerPort,
      hostPort: p.hostPort ?? 0,
      hostIp: p.hostIP ?? "",
    })),
  );
}

/**
 * The sandbox config kubelet would send for `pod` (its metadata must carry name, namespace and
 * uid: a stored pod always does). `attempt` counts the sandboxes kubelet made for the pod before.
 * Throws naming the missing field.
 */
export function podSandboxConfig(pod: Pod, kubelet: KubeletSettings, attempt = 0): PodSandboxConfig {
  const { name, namespace, uid } = podIdentity(pod);
  const { spec } = sandboxFields(pod);
  const hostNetwork = spec.hostNetwork === true;
  const podMode = (node: boolean | undefined): NamespaceMode => (node ? "NODE" : "POD");
  const dns = dnsConfig(pod, kubelet);
  return {
    metadata: { name, namespace, uid, attempt },
    hostname: hostNetwork ? "" : (spec.hostname ?? name).slice(0, 63),
    logDirectory: `/var/log/pods/${namespace}_${name}_${uid}`,
    ...(dns ? { dnsConfig: dns } : {}),
    portMappings: portMappings(spec),
    labels: {
      ...(pod.metadata.labels ?? {}),
      "io.kubernetes.pod.name": name,
      "io.kubernetes.pod.namespace": namespace,
      "io.kubernetes.pod.uid": uid,
    },
    annotations: { ...(pod.metadata.annotations ?? {}) },
    linux: {
      cgroupParent: podCgroupParent(pod, kubelet.cgroupRoot),
      securityContext: {
        namespaceOptions: {
          network: podMode(hostNetwork),
          pid: spec.hostPID ? "NODE" : spec.shareProcessNamespace ? "POD" : "CONTAINER",
          ipc: podMode(spec.hostIPC),
        },
        privileged: false,
      },
      sysctls: Object.fromEntries((spec.securityContext?.sysctls ?? []).map((s) => [s.name, s.value])),
    },
  };
}
