// The "API server" of the Kubernetes-mode suites: the fake of fake-apiserver.ts when KUBECONFIG is
// unset, the cluster KUBECONFIG names when it is set. Either way the system under test talks to it
// through the fault proxy (fault-proxy.ts), and the suite sets up its objects through `api`,
// which bypasses the proxy. Everything a suite creates lives in namespaces named
// `nadguard-test-<run>-<suffix>`, deleted by cleanup(). See README.md beside this file.
import { randomBytes } from "node:crypto";
import { KubeConfig } from "@kubernetes/client-node";
import { KubeApiError, kubeRequest } from "../../src/authz/kube-http.js";
import { type FakeApiServer, type FakeApiServerOptions, startFakeApiServer } from "./fake-apiserver.js";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.js";

export type Obj = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
};

/** Where each kind the suites write lives: collection path base, plural, namespaced. */
const KINDS: Record<string, { base: string; plural: string; namespaced: boolean }> = {
  Namespace: { base: "/api/v1", plural: "namespaces", namespaced: false },
  Pod: { base: "/api/v1", plural: "pods", namespaced: true },
  ServiceAccount: { base: "/api/v1", plural: "serviceaccounts", namespaced: true },
  Event: { base: "/api/v1", plural: "events", namespaced: true },
  NetworkAttachmentDefinition: { base: "/apis/k8s.cni.cncf.io/v1", plural: "network-attachment-definitions", namespaced: true },
  MultiNetworkPolicy: { base: "/apis/k8s.cni.cncf.io/v1beta1", plural: "multi-networkpolicies", namespaced: true },
  Role: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "roles", namespaced: true },
  RoleBinding: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "rolebindings", namespaced: true },
  ClusterRole: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "clusterroles", namespaced: false },
  ClusterRoleBinding: { base: "/apis/rbac.authorization.k8s.io/v1", plural: "clusterrolebindings", namespaced: false },
};

export function pathOf(kind: string, namespace?: string, name?: string): string {
  const k = KINDS[kind];
  if (!k) throw new Error(`test cluster: unknown kind ${kind}`);
  const ns = k.namespaced ? `/namespaces/${namespace ?? "default"}` : "";
  return `${k.base}${ns}/${k.plural}${name ? `/${name}` : ""}`;
}

export interface TestApi {
  create(object: Obj): Promise<Obj>;
  get(kind: string, namespace: string | undefined, name: string): Promise<Obj>;
  /** GET, change, PUT with the read resourceVersion; retried on conflict. */
  update(kind: string, namespace: string | undefined, name: string, change: (object: Obj) => void): Promise<Obj>;
  delete(kind: string, namespace: string | undefined, name: string): Promise<void>;
  /** Names of the objects of a kind in a namespace. */
  names(kind: string, namespace: string): Promise<string[]>;
}

export interface TestCluster {
  /** True against a real cluster (KUBECONFIG set). */
  readonly real: boolean;
  /** For the system under test: through the fault proxy. */
  readonly kubeConfig: KubeConfig;
  readonly proxy: FaultProxy;
  /** The fake, when there is one (fake-only assertions must be skipped on a real cluster). */
  readonly fake: FakeApiServer | undefined;
  /** Setup and inspection, straight to the server (no proxy, no faults). */
  readonly api: TestApi;
  /** Creates `nadguard-test-<run>-<suffix>` (deleted by cleanup) and returns its name. */
  namespace(suffix: string, labels?: Record<string, string>): Promise<string>;
  cleanup(): Promise<void>;
}

export const usesRealCluster = (): boolean => Boolean(process.env.KUBECONFIG);

function apiOf(kc: KubeConfig): TestApi {
  const api: TestApi = {
    async create(object) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await kubeRequest<Obj>(kc, { method: "POST", path: pathOf(object.kind, object.metadata.namespace), body: object, timeoutMs: 10_000 });
        } catch (error) {
          // A real cluster refuses pods until the namespace's `default` ServiceAccount exists (a second or so).
          const waitForAccount = error instanceof KubeApiError && error.statusCode === 403 && /service ?account/i.test(error.message);
          if (!waitForAccount || attempt >= 40) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    },
    get: (kind, namespace, name) => kubeRequest<Obj>(kc, { path: pathOf(kind, namespace, name), timeoutMs: 10_000 }),
    async update(kind, namespace, name, change) {
      for (let attempt = 0; ; attempt++) {
        const current = await api.get(kind, namespace, name);
        change(current);
        try {
          return await kubeRequest<Obj>(kc, { method: "PUT", path: pathOf(kind, namespace, name), body: current, timeoutMs: 10_000 });
        } catch (error) {
          if (!(error instanceof KubeApiError && error.statusCode === 409) || attempt >= 5) throw error;
        }
      }
    },
    async delete(kind, namespace, name) {
      try {
        await kubeRequest(kc, { method: "DELETE", path: pathOf(kind, namespace, name), query: { gracePeriodSeconds: 0 }, timeoutMs: 10_000 });
      } catch (error) {
        if (!(error instanceof KubeApiError && error.statusCode === 404)) throw error;
      }
    },
    async names(kind, namespace) {
      const list = await kubeRequest<{ items: Obj[] }>(kc, { path: pathOf(kind, namespace), timeoutMs: 10_000 });
      return list.items.map((item) => item.metadata.name).sort();
    },
  };
  return api;
}

async function requireCrds(kc: KubeConfig): Promise<void> {
  for (const kind of ["NetworkAttachmentDefinition", "MultiNetworkPolicy"]) {
    try {
      await kubeRequest(kc, { path: `${KINDS[kind]!.base}/${KINDS[kind]!.plural}`, query: { limit: 1 }, timeoutMs: 10_000 });
    } catch (error) {
      if (error instanceof KubeApiError && error.statusCode === 404) {
        throw new Error(`the cluster of KUBECONFIG has no ${kind} CRD: install nadguard's CRDs first (see test/kube/README.md)`);
      }
      throw error;
    }
  }
}

/** Starts the fake (or connects to KUBECONFIG's cluster) and the fault proxy in front of it. */
export async function startTestCluster(fakeOptions: FakeApiServerOptions = {}): Promise<TestCluster> {
  const real = usesRealCluster();
  let fake: FakeApiServer | undefined;
  let admin: KubeConfig;
  if (real) {
    admin = new KubeConfig();
    admin.loadFromDefault();
    await requireCrds(admin);
  } else {
    fake = await startFakeApiServer(fakeOptions);
    admin = fake.kubeConfig();
  }
  const proxy = await startFaultProxy(admin);
  const api = apiOf(admin);
  const run = randomBytes(3).toString("hex");
  const created: string[] = [];
  return {
    real,
    kubeConfig: proxy.kubeConfig(),
    proxy,
    fake,
    api,
    async namespace(suffix, labels = {}) {
      const name = `nadguard-test-${run}-${suffix}`;
      await api.create({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { "nadguard.io/test-run": run, ...labels } } });
      created.push(name);
      return name;
    },
    async cleanup() {
      if (real) {
        // Pods bound to a node without a kubelet never finish a graceful deletion: force them.
        await Promise.allSettled(
          created.map(async (ns) => Promise.all((await api.names("Pod", ns)).map((pod) => api.delete("Pod", ns, pod)))),
        );
      }
      await Promise.allSettled(created.map((name) => api.delete("Namespace", undefined, name)));
      await proxy.close();
      await fake?.close();
    },
  };
}

/** Retries `check` until it stops throwing, or throws its last error after `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 5_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}

export function nad(namespace: string, name: string, extra: { annotations?: Record<string, string>; config?: string } = {}): Obj {
  return {
    apiVersion: "k8s.cni.cncf.io/v1",
    kind: "NetworkAttachmentDefinition",
    metadata: { name, namespace, ...(extra.annotations && { annotations: extra.annotations }) },
    spec: { config: extra.config ?? JSON.stringify({ cniVersion: "1.0.0", name, type: "macvlan", master: "eth0", mode: "bridge", ipam: { type: "static" } }) },
  };
}

/** A pod bound to `nodeName` (a node that need not exist: the pod stays Pending). */
export function boundPod(namespace: string, name: string, nodeName: string, labels: Record<string, string> = {}): Obj {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace, labels },
    spec: { nodeName, automountServiceAccountToken: false, containers: [{ name: "app", image: "registry.invalid/nadguard-test:none" }] },
  };
}

/** A Role `use-<nad>` granting verb `use` on one NAD, bound to each subject (binding named by key) in the NAD's namespace. */
export async function grantNadUse(api: TestApi, namespace: string, nadName: string, subjects: Record<string, Record<string, string>>): Promise<void> {
  const role = `use-${nadName}`;
  await api.create({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: role, namespace },
    rules: [{ apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"], resourceNames: [nadName], verbs: ["use"] }],
  });
  for (const [name, subject] of Object.entries(subjects)) {
    await api.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: { name, namespace },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role },
      subjects: [subject],
    });
  }
}
