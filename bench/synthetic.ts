// Synthetic clusters for the benchmarks, deterministic (seeded), built in memory through the same
// path as a state directory (zod schemas, SnapshotBuilder). Addresses come from 198.18.0.0/15 and
// fd00::/8 only.
import type { Snapshot } from "../src/api/snapshot.js";
import { SnapshotBuilder } from "../src/cluster/snapshot-builder.js";
import { addStateObject } from "../src/cluster/state-dir.js";
import { prng } from "../test/support/prng.js";

type Obj = Record<string, unknown>;

function build(objects: Iterable<Obj>, version = 1): Snapshot {
  const builder = new SnapshotBuilder(version);
  let i = 0;
  for (const object of objects) addStateObject(builder, `synthetic#${i++}`, object);
  const snapshot = builder.build();
  const problems = snapshot.problems.filter((p) => p.code !== "state.kind-ignored");
  if (problems.length > 0) throw new Error(`synthetic cluster has problems: ${JSON.stringify(problems.slice(0, 3))}`);
  return snapshot;
}

/** 198.18.0.0/15 plus an offset, as text. */
export function v4(offset: number): string {
  const base = (198 << 24) + (18 << 16) + offset;
  if (offset < 0 || offset >= 1 << 17) throw new Error(`offset ${offset} is outside 198.18.0.0/15`);
  return [base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join(".");
}

function namespace(name: string, labels: Record<string, string>): Obj {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name, labels } };
}

function nad(namespaceName: string, name: string, type: string, range: string, annotations?: Record<string, string>): Obj {
  const config: Obj = { cniVersion: "1.0.0", name, type, ipam: { type: "whereabouts", range } };
  if (type === "macvlan" || type === "ipvlan") config.master = "eth1";
  if (type === "bridge") config.bridge = `br-${name}`.slice(0, 15);
  if (type === "vlan") Object.assign(config, { master: "eth1", vlanId: 100 });
  if (type === "sriov") config.vlan = 0;
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name, namespace: namespaceName, ...(annotations && { annotations }) },
    spec: { config: JSON.stringify(config) },
  };
}

// ---- admission: many NADs, RBAC, one realistic pod ----

const NAD_TYPES = ["macvlan", "ipvlan", "bridge", "sriov", "host-device", "macvlan", "ipvlan", "bridge", "sriov", "vlan"] as const;

export interface AdmissionClusterOptions {
  readonly namespaces: number;
  readonly nadsPerNamespace: number;
}

export function tenantName(i: number): string {
  return `tenant-${String(i).padStart(5, "0")}`;
}

export function* admissionObjects(options: AdmissionClusterOptions): Generator<Obj> {
  const n = options.namespaces;
  yield {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: "nad-user" },
    rules: [{ apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"], verbs: ["use"] }],
  };
  yield {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name: "developer" },
    rules: [
      { apiGroups: ["", "apps"], resources: ["pods", "deployments", "replicasets", "services", "configmaps"], verbs: ["get", "list", "watch", "create", "update", "patch", "delete"] },
      { apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"], verbs: ["get", "list", "watch"] },
    ],
  };
  // Cluster-wide bindings a real cluster has, none of which grants `use` on NADs.
  for (let i = 0; i < 40; i++) {
    yield {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: `system:controller:binding-${i}` },
      subjects: [{ kind: "ServiceAccount", name: `controller-${i}`, namespace: "kube-system" }, { kind: "Group", name: `system:group-${i}` }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "developer" },
    };
  }
  for (let i = 0; i < n; i++) {
    const ns = tenantName(i);
    yield namespace(ns, { team: `team-${i % 50}`, env: ["prod", "staging", "dev"][i % 3]! });
    yield { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "default", namespace: ns } };
    for (let j = 0; j < options.nadsPerNamespace; j++) {
      const type = NAD_TYPES[j % NAD_TYPES.length]!;
      const annotations = type === "sriov" ? { "k8s.v1.cni.cncf.io/resourceName": `intel.com/sriov_vf_${j}` } : undefined;
      yield nad(ns, `${type}-${j}`, type, `198.18.${(i * options.nadsPerNamespace + j) % 256}.0/24`, annotations);
    }
    // Tenant i's service accounts may use the NADs of tenant i+1 (the cross-namespace grant).
    yield {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: `nad-use-from-${tenantName((i + n - 1) % n)}`, namespace: ns },
      subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: `system:serviceaccounts:${tenantName((i + n - 1) % n)}` }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "nad-user" },
    };
    yield {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name: "developers", namespace: ns },
      subjects: [{ kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: `team-${i % 50}` }],
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "developer" },
    };
  }
}

/** Namespaces × NADs per namespace, with RBAC granting each tenant `use` on its neighbour's NADs. */
export function admissionSnapshot(options: AdmissionClusterOptions): Snapshot {
  if (options.nadsPerNamespace < 4) throw new Error("the realistic pod needs at least 4 NADs per namespace");
  return build(admissionObjects(options));
}

/**
 * The AdmissionReview kube-apiserver sends when the ReplicaSet controller creates a pod of a
 * Deployment: two containers, and — when `annotated` — three attachments: a macvlan NAD of its own
 * namespace, an SR-IOV NAD (resourceName, injected into the first container), and a bridge NAD of
 * the neighbouring namespace, allowed through the pod's service account (the controller's own
 * identity is checked first and has no grant).
 */
export function podReview(options: AdmissionClusterOptions, annotated: boolean): Obj {
  const tenant = Math.floor(options.namespaces / 2);
  const ns = tenantName(tenant);
  const neighbour = tenantName((tenant + 1) % options.namespaces);
  const annotations: Record<string, string> = { "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z", "prometheus.io/scrape": "true" };
  if (annotated) annotations["k8s.v1.cni.cncf.io/networks"] = `macvlan-0, sriov-3@fast0, ${neighbour}/bridge-2@shared0`;
  const container = (name: string, image: string, port: number): Obj => ({
    name,
    image,
    ports: [{ name: "http", containerPort: port, protocol: "TCP" }],
    env: [
      { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      { name: "LOG_LEVEL", value: "info" },
    ],
    resources: { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "1", memory: "512Mi" } },
    volumeMounts: [{ name: "kube-api-access", mountPath: "/var/run/secrets/kubernetes.io/serviceaccount", readOnly: true }],
    imagePullPolicy: "IfNotPresent",
    terminationMessagePath: "/dev/termination-log",
  });
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      generateName: "packet-core-7d9f8b6c5d-",
      namespace: ns,
      labels: { app: "packet-core", "pod-template-hash": "7d9f8b6c5d", tier: "data-plane" },
      annotations,
      ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "packet-core-7d9f8b6c5d", uid: "0f0c6a9e-1f7c-4d8e-9a43-6b1c2d3e4f50", controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      serviceAccountName: "default",
      containers: [container("upf", "registry.example/upf:2.4.1", 8805), container("metrics", "registry.example/exporter:1.7", 9100)],
      volumes: [{ name: "kube-api-access", projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: "token" } }] } }],
      restartPolicy: "Always",
      terminationGracePeriodSeconds: 30,
      dnsPolicy: "ClusterFirst",
      schedulerName: "default-scheduler",
      tolerations: [{ key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 }],
    },
  };
  const gvk = { group: "", version: "v1", kind: "Pod" };
  const gvr = { group: "", version: "v1", resource: "pods" };
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "6f1c2b9a-3d4e-4f50-8a1b-2c3d4e5f6a7b",
      kind: gvk,
      resource: gvr,
      requestKind: gvk,
      requestResource: gvr,
      namespace: ns,
      operation: "CREATE",
      userInfo: {
        username: "system:serviceaccount:kube-system:replicaset-controller",
        uid: "a1b2c3d4-0000-4000-8000-000000000001",
        groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
      },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "CreateOptions" },
    },
  };
}

// ---- policy: pods with two secondary networks, a realistic mix of MultiNetworkPolicies ----

export const DATA_NET = "net-system/data";
export const STORAGE_NET = "net-system/storage";

const APPS = ["web", "web", "api", "api", "api", "db", "cache", "worker", "worker", "batch"] as const;
const TIERS: Record<string, string> = { web: "frontend", api: "backend", db: "data", cache: "data", worker: "backend", batch: "backend" };
const PORTS: Record<string, Obj[]> = {
  web: [{ name: "http", containerPort: 8080 }, { name: "metrics", containerPort: 9090 }],
  api: [{ name: "http", containerPort: 8081 }, { name: "grpc", containerPort: 9000 }, { name: "metrics", containerPort: 9090 }],
  db: [{ name: "postgres", containerPort: 5432 }],
  cache: [{ name: "redis", containerPort: 6379 }],
  worker: [{ name: "metrics", containerPort: 9090 }],
  batch: [],
};

export interface PolicyClusterOptions {
  readonly pods: number;
  readonly policies: number;
  /** Pods are spread over this many nodes; default 1 + pods/100. */
  readonly nodes?: number;
  readonly seed?: number;
}

export interface PolicyCluster {
  readonly snapshot: Snapshot;
  readonly namespaces: readonly string[];
  readonly podKeys: readonly string[];
  readonly policyKeys: readonly string[];
}

function netStatus(i: number): string {
  return JSON.stringify([
    { name: "cluster", interface: "eth0", ips: [`10.244.${(i >> 8) & 255}.${i & 255}`], default: true },
    { name: DATA_NET, interface: "net1", ips: [v4(16 + i), `fd00:d::${(16 + i).toString(16)}`] },
    { name: STORAGE_NET, interface: "net2", ips: [v4(65536 + 16 + i)] },
  ]);
}

function podObject(ns: string, name: string, i: number, labels: Record<string, string>, node: string, app: string): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: ns,
      uid: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      labels,
      annotations: { "k8s.v1.cni.cncf.io/networks": `${DATA_NET}@net1,${STORAGE_NET}@net2`, "k8s.v1.cni.cncf.io/network-status": netStatus(i) },
    },
    spec: { nodeName: node, containers: [{ name: app, image: `registry.example/${app}:1`, ports: PORTS[app] ?? [] }] },
    status: { phase: "Running" },
  };
}

function policyObject(ns: string, index: number, random: () => number, nsCount: number): Obj {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const policyFor = [DATA_NET, STORAGE_NET, `${DATA_NET}, ${STORAGE_NET}`][index % 3]!;
  const app = pick(["web", "api", "db", "cache", "worker"]);
  const team = `team-${Math.floor(random() * Math.max(1, Math.min(8, nsCount)))}`;
  let spec: Obj;
  switch (index % 10) {
    case 0: // default deny ingress
      spec = { podSelector: {}, policyTypes: ["Ingress"] };
      break;
    case 1:
    case 2:
    case 3: // same namespace, app to app, one port
      spec = { podSelector: { matchLabels: { app } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: pick(["web", "api", "worker"]) } } }], ports: [{ protocol: "TCP", port: 8080 + (index % 3) }] }] };
      break;
    case 4:
    case 5: // from a team's namespaces, two ports
      spec = { podSelector: { matchLabels: { app } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team } } }], ports: [{ port: 8080 }, { port: 9090 }] }] };
      break;
    case 6: // AND peer with matchExpressions
      spec = {
        podSelector: { matchLabels: { app: "db" } },
        ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: "env", operator: "In", values: ["prod", "staging"] }] }, podSelector: { matchLabels: { app: "api" } } }], ports: [{ port: 5432 }] }],
      };
      break;
    case 7: // ipBlock with except
      spec = { podSelector: { matchLabels: { tier: "frontend" } }, ingress: [{ from: [{ ipBlock: { cidr: "198.18.0.0/16", except: ["198.18.1.0/24", "198.18.7.0/24"] } }], ports: [{ protocol: "TCP", port: 443 }] }] };
      break;
    case 8: // egress to named ports and DNS
      spec = {
        podSelector: { matchLabels: { app: "web" } },
        policyTypes: ["Egress"],
        egress: [
          { to: [{ podSelector: { matchLabels: { app: "api" } } }], ports: [{ port: "http" }, { port: "grpc" }] },
          { to: [{ ipBlock: { cidr: "198.19.255.0/24" } }], ports: [{ protocol: "UDP", port: 53 }] },
        ],
      };
      break;
    default: // matchExpressions on both sides, a port range
      spec = {
        podSelector: { matchExpressions: [{ key: "app", operator: "In", values: ["db", "cache"] }] },
        ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["frontend"] }] } }], ports: [{ protocol: "TCP", port: 6379, endPort: 6380 }] }],
      };
  }
  return {
    apiVersion: "k8s.cni.cncf.io/v1beta1",
    kind: "MultiNetworkPolicy",
    metadata: { name: `policy-${index}`, namespace: ns, annotations: { "k8s.v1.cni.cncf.io/policy-for": policyFor } },
    spec,
  };
}

export function policyNamespaceName(i: number): string {
  return `app-${String(i).padStart(4, "0")}`;
}

/** `pods` pods in pods/20 namespaces on two secondary networks (data: dual stack, storage: IPv4), `policies` policies round-robin over the namespaces. */
export function policyCluster(options: PolicyClusterOptions): PolicyCluster {
  const random = prng(options.seed ?? 7);
  const nsCount = Math.max(1, Math.round(options.pods / 20));
  const nodes = options.nodes ?? 1 + Math.floor(options.pods / 100);
  const namespaces = Array.from({ length: nsCount }, (_, i) => policyNamespaceName(i));
  const objects: Obj[] = [
    namespace("net-system", { team: "platform", env: "prod" }),
    nad("net-system", "data", "macvlan", "198.18.0.0/16"),
    nad("net-system", "storage", "ipvlan", "198.19.0.0/16"),
  ];
  namespaces.forEach((ns, i) => objects.push(namespace(ns, { team: `team-${i % 8}`, env: ["prod", "staging", "dev"][i % 3]! })));
  const podKeys: string[] = [];
  for (let i = 0; i < options.pods; i++) {
    const ns = namespaces[i % nsCount]!;
    const app = APPS[Math.floor(random() * APPS.length)]!;
    const name = `${app}-${i}`;
    const labels = { app, tier: TIERS[app]!, version: random() < 0.8 ? "v1" : "v2" };
    objects.push(podObject(ns, name, i, labels, `node-${i % nodes}`, app));
    podKeys.push(`${ns}/${name}`);
  }
  const policyKeys: string[] = [];
  for (let p = 0; p < options.policies; p++) {
    const ns = namespaces[p % nsCount]!;
    objects.push(policyObject(ns, p, random, nsCount));
    policyKeys.push(`${ns}/policy-${p}`);
  }
  return { snapshot: build(objects), namespaces, podKeys, policyKeys };
}

// ---- changes between snapshots: only the changed object is new, the rest is shared ----

export function withObject(snapshot: Snapshot, kind: "pods" | "policies" | "namespaces", key: string, object: unknown | undefined): Snapshot {
  const map = new Map(snapshot[kind] as ReadonlyMap<string, unknown>);
  if (object === undefined) map.delete(key);
  else map.set(key, object);
  return { ...snapshot, version: snapshot.version + 1, [kind]: map } as Snapshot;
}

/** The pod with its `app` label (and tier) changed. */
export function relabelPod(snapshot: Snapshot, key: string, app: string): Snapshot {
  const pod = snapshot.pods.get(key);
  if (!pod) throw new Error(`no pod ${key}`);
  const labels = { ...(pod.metadata.labels ?? {}), app, tier: TIERS[app] ?? "backend" };
  return withObject(snapshot, "pods", key, { ...pod, metadata: { ...pod.metadata, labels } });
}

export function relabelNamespace(snapshot: Snapshot, name: string, labels: Record<string, string>): Snapshot {
  const ns = snapshot.namespaces.get(name);
  if (!ns) throw new Error(`no namespace ${name}`);
  return withObject(snapshot, "namespaces", name, { ...ns, metadata: { ...ns.metadata, labels: { ...(ns.metadata.labels ?? {}), ...labels } } });
}

/** The policy with one more port on its first ingress (or egress) rule. */
export function editPolicy(snapshot: Snapshot, key: string, port: number): Snapshot {
  const policy = snapshot.policies.get(key);
  if (!policy) throw new Error(`no policy ${key}`);
  const spec = structuredClone(policy.spec);
  const rules = (spec.ingress?.length ? spec.ingress : spec.egress) ?? [];
  if (rules[0]) rules[0].ports = [...(rules[0].ports ?? []), { protocol: "TCP", port }];
  else spec.ingress = [{ ports: [{ protocol: "TCP", port }] }];
  return withObject(snapshot, "policies", key, { ...policy, spec });
}

// ---- one server pod and N allowed peers (apply, datapath) ----

export interface PeerClusterOptions {
  readonly peers: number;
  /** The probing client: allowed like the peers, address given. */
  readonly client?: { readonly address: string };
  readonly server: { readonly address: string; readonly interface: string };
  readonly ports: { readonly tcp: number; readonly udp: number };
}

export const PEER_NS = "bench";
export const SERVER_KEY = `${PEER_NS}/server`;

/** Peer i's address: every other address of 198.18.0.0/15, so that no two peers merge into one interval. */
export function peerAddress(i: number): string {
  return v4(2 * (i + 1));
}

/**
 * One server pod selected by a policy that allows ingress on one TCP and one UDP port from pods
 * labelled role=client — N peers plus, when given, the probing client — on the data network.
 */
export function peerSnapshot(options: PeerClusterOptions): Snapshot {
  const objects: Obj[] = [namespace("net-system", {}), nad("net-system", "data", "bridge", "198.18.0.0/15"), namespace(PEER_NS, {})];
  const pod = (name: string, labels: Record<string, string>, ifname: string, address: string, node: string): Obj => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: PEER_NS,
      labels,
      annotations: {
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
          { name: "cluster", interface: "eth0", ips: ["10.244.0.1"], default: true },
          { name: DATA_NET, interface: ifname, ips: [address] },
        ]),
      },
    },
    spec: { nodeName: node, containers: [{ name: "app", image: "registry.example/app:1" }] },
    status: { phase: "Running" },
  });
  objects.push(pod("server", { app: "server" }, options.server.interface, options.server.address, "node-0"));
  if (options.client) objects.push(pod("client", { role: "client" }, "net1", options.client.address, "node-1"));
  for (let i = 0; i < options.peers; i++) objects.push(pod(`peer-${i}`, { role: "client" }, "net1", peerAddress(i), `node-${2 + (i % 50)}`));
  objects.push({
    apiVersion: "k8s.cni.cncf.io/v1beta1",
    kind: "MultiNetworkPolicy",
    metadata: { name: "server-ingress", namespace: PEER_NS, annotations: { "k8s.v1.cni.cncf.io/policy-for": DATA_NET } },
    spec: {
      podSelector: { matchLabels: { app: "server" } },
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ podSelector: { matchLabels: { role: "client" } } }], ports: [{ protocol: "TCP", port: options.ports.tcp }, { protocol: "UDP", port: options.ports.udp }] }],
    },
  });
  return build(objects);
}

// ---- a node's pods for the enforcer (convergence) ----

export const CV_NS = "cv";

export interface ConvergenceCluster {
  readonly snapshot: Snapshot;
  /** Local pods' names (their netns are `<prefix>-cv-<name>`). */
  readonly local: readonly string[];
}

/**
 * `local` pods on node-0 (one of them app=db) and `remote` client pods on node-1. Policy
 * `isolate-all` selects every pod and allows TCP 8080 from app=client; policy `db` allows TCP 5432
 * to the db pod from role=admin.
 */
export function convergenceCluster(local: number, remote: number): ConvergenceCluster {
  const objects: Obj[] = [namespace("net-system", {}), nad("net-system", "data", "macvlan", "198.18.0.0/16"), namespace(CV_NS, { team: "cv" })];
  const names: string[] = [];
  const add = (name: string, i: number, labels: Record<string, string>, node: string): void => {
    objects.push({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: CV_NS,
        uid: `00000000-0000-4000-9000-${String(i).padStart(12, "0")}`,
        labels,
        annotations: {
          "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
            { name: "cluster", interface: "eth0", ips: [`10.244.1.${i % 250}`], default: true },
            { name: DATA_NET, interface: "net1", ips: [v4(2 * (i + 1))] },
          ]),
        },
      },
      spec: { nodeName: node, containers: [{ name: "app", image: "registry.example/app:1" }] },
      status: { phase: "Running" },
    });
  };
  for (let i = 0; i < local; i++) {
    const name = `p${String(i).padStart(3, "0")}`;
    names.push(name);
    add(name, i, { app: i === 0 ? "db" : i % 2 === 0 ? "client" : "server" }, "node-0");
  }
  for (let i = 0; i < remote; i++) add(`r${String(i).padStart(3, "0")}`, local + i, { app: "client" }, "node-1");
  objects.push({
    apiVersion: "k8s.cni.cncf.io/v1beta1",
    kind: "MultiNetworkPolicy",
    metadata: { name: "isolate-all", namespace: CV_NS, annotations: { "k8s.v1.cni.cncf.io/policy-for": DATA_NET } },
    spec: { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }], ports: [{ protocol: "TCP", port: 8080 }] }] },
  });
  objects.push({
    apiVersion: "k8s.cni.cncf.io/v1beta1",
    kind: "MultiNetworkPolicy",
    metadata: { name: "db", namespace: CV_NS, annotations: { "k8s.v1.cni.cncf.io/policy-for": DATA_NET } },
    spec: { podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: "admin" } } }], ports: [{ protocol: "TCP", port: 5432 }] }] },
  });
  return { snapshot: build(objects), local: names };
}

/** A new remote pod with `labels` on node-1 (address from the index). */
export function withRemotePod(snapshot: Snapshot, name: string, index: number, labels: Record<string, string>): Snapshot {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: CV_NS,
      uid: `00000000-0000-4000-a000-${String(index).padStart(12, "0")}`,
      labels,
      annotations: {
        "k8s.v1.cni.cncf.io/network-status": JSON.stringify([
          { name: "cluster", interface: "eth0", ips: ["10.244.2.1"], default: true },
          { name: DATA_NET, interface: "net1", ips: [v4(2 * index + 1)] },
        ]),
      },
    },
    spec: { nodeName: "node-1", containers: [{ name: "app", image: "registry.example/app:1" }] },
    status: { phase: "Running" },
  };
  return withObject(snapshot, "pods", `${CV_NS}/${name}`, pod);
}
