// What `kubectl kustomize` (the kubectl on the machine: 1.32, kustomize 5) renders of every
// kustomization an admin applies: manifests/ (the base), manifests/crds/, manifests/webhook-
// configurations/, manifests/uninstall/, and every overlay under examples/overlays/ (found on disk,
// so a new one is covered). Each object must be valid against the same schemas as manifests.test.ts
// (openapi.ts), and each kustomization must do what README "Install in a cluster" and "Uninstall"
// rely on: the base holds neither a CRD (deleting it would delete every NAD and policy) nor a
// webhook configuration (it must come after the Deployment is available); the overlays set the
// image and namespace everywhere, or hand the serving certificate and the caBundle to cert-manager.
// Last, README's install and uninstall steps name these kustomizations in that order.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { NADGUARD_BIN, run } from "../e2e/sys.js";
import { openApiProblems } from "./openapi.js";

type Obj = Record<string, any>;

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const OVERLAYS = join(ROOT, "examples", "overlays");

/** Every directory with a kustomization.yaml below `dir`, itself included. */
function kustomizationsBelow(dir: string): string[] {
  const here = existsSync(join(dir, "kustomization.yaml")) ? [dir] : [];
  const below = readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((entry) => kustomizationsBelow(join(dir, entry.name)));
  return [...here, ...below];
}

/** The objects `kubectl kustomize DIR` prints. kubectl is on every machine of this project (never skipped). */
function kustomize(dir: string): Obj[] {
  const built = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return parseAllDocuments(built).map((doc) => doc.toJS() as Obj);
}

const BASE = join(ROOT, "manifests");
const SHIPPED = ["", "crds", "webhook-configurations", "uninstall", "enforcer"].map((dir) => join(BASE, dir));
const OVERLAY_DIRS = kustomizationsBelow(OVERLAYS);
const rendered = new Map([...SHIPPED, ...OVERLAY_DIRS].map((dir) => [relative(ROOT, dir) || ".", kustomize(dir)]));
const render = (dir: string): Obj[] => rendered.get(dir)!;

const WEBHOOK_CONFIGURATIONS = new Set(["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]);
const CLUSTER_SCOPED = new Set(["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass", ...WEBHOOK_CONFIGURATIONS]);
const isWebhookConfiguration = (o: Obj): boolean => WEBHOOK_CONFIGURATIONS.has(o.kind);
const one = (objects: Obj[], kind: string, name?: string): Obj => {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found.map((o) => `${o.kind} ${o.metadata.name}`), `exactly one ${kind} ${name ?? ""}`).toHaveLength(1);
  return found[0]!;
};
/** Every container (init containers too) of every workload. */
const containers = (objects: Obj[]): Obj[] =>
  objects.filter((o) => o.spec?.template?.spec).flatMap((o) => [...(o.spec.template.spec.initContainers ?? []), ...o.spec.template.spec.containers]);
const webhooksOf = (objects: Obj[]): Obj[] => objects.filter(isWebhookConfiguration).flatMap((c) => c.webhooks as Obj[]);
/** The namespaces a webhook's namespaceSelector keeps away from nadguard. */
const skipped = (webhook: Obj): string[] =>
  (webhook.namespaceSelector.matchExpressions as Obj[]).find((e) => e.key === "kubernetes.io/metadata.name" && e.operator === "NotIn")!.values;

describe("kubectl kustomize of every kustomization", () => {
  it("finds the overlays under examples/overlays/ (each with its webhook configurations)", () => {
    expect(OVERLAY_DIRS.map((dir) => relative(OVERLAYS, dir)).sort()).toEqual(
      ["cert-manager", "cert-manager/webhook-configurations", "custom-image-namespace", "custom-image-namespace/uninstall", "custom-image-namespace/webhook-configurations"].sort(),
    );
  });

  it.each([...rendered.keys()])("%s renders objects valid against the OpenAPI schemas", (dir) => {
    const objects = render(dir);
    expect(objects.length).toBeGreaterThan(0);
    for (const object of objects) expect(openApiProblems(object), `${dir}: ${object.kind} ${object.metadata?.name}`).toEqual([]);
  });

  it("the validation of cert-manager's kinds is not a no-op", () => {
    const certificate = one(render("examples/overlays/cert-manager"), "Certificate", "nadguard-webhook-tls");
    const wrongType = structuredClone(certificate);
    wrongType.spec.secretName = 42;
    expect(openApiProblems(wrongType)).toContain("/spec/secretName: must be string");
    const missing = structuredClone(certificate);
    delete missing.spec.issuerRef;
    expect(openApiProblems(missing)).toEqual(["/spec: must have required property issuerRef"]);
  });
});

describe("manifests/ and its kustomizations", () => {
  const base = render("manifests");

  it("the base installs the workloads and holds no CRD and no webhook configuration", () => {
    expect(base.filter((o) => o.kind === "CustomResourceDefinition")).toEqual([]);
    expect(base.filter(isWebhookConfiguration)).toEqual([]);
    expect(base.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(expect.arrayContaining(["Namespace nadguard", "Deployment nadguard-webhook", "DaemonSet nadguard-node", "Service nadguard-webhook"]));
    expect(base.filter((o) => o.metadata.name === "nadguard-enforcer" && o.kind === "DaemonSet")).toEqual([]);
    for (const container of containers(base)) expect(container.image).toBe("nadguard:0.1.0");
  });

  it("crds/ holds the two CRDs and nothing else", () => {
    expect(render("manifests/crds").map((o) => `${o.kind} ${o.metadata.name}`).sort()).toEqual([
      "CustomResourceDefinition multi-networkpolicies.k8s.cni.cncf.io",
      "CustomResourceDefinition network-attachment-definitions.k8s.cni.cncf.io",
    ]);
  });

  it("webhook-configurations/ holds the two webhook configurations, with the caBundle left for `nadguard certs` to fill", () => {
    const configurations = render("manifests/webhook-configurations");
    expect(configurations.map((o) => `${o.kind} ${o.metadata.name}`)).toEqual(["MutatingWebhookConfiguration nadguard", "ValidatingWebhookConfiguration nadguard"]);
    expect(webhooksOf(configurations).map((w) => w.clientConfig.caBundle)).toEqual(["", "", "", ""]);
  });

  it("uninstall/ is one DaemonSet that runs `node --uninstall` then `enforce --cleanup` on every node, as the enforcer's service account with its privileges, then idles", () => {
    const objects = render("manifests/uninstall");
    expect(objects.map((o) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`)).toEqual(["DaemonSet nadguard/nadguard-cleanup"]);
    const cleanup = objects[0]!;
    const enforcer = one(render("manifests/enforcer"), "DaemonSet", "nadguard-enforcer");
    const pod: Obj = cleanup.spec.template.spec;
    const enforcerPod: Obj = enforcer.spec.template.spec;
    expect(pod.serviceAccountName).toBe(enforcerPod.serviceAccountName);
    expect([pod.hostPID, pod.tolerations]).toEqual([true, [{ operator: "Exists" }]]);
    const [uninstallCni, init] = pod.initContainers as Obj[];
    // The conf file and the shim off the node first, from the directories the node DaemonSet mounts.
    expect(uninstallCni!.args).toEqual(["node", "--uninstall"]);
    const nodePod: Obj = one(render("manifests"), "DaemonSet", "nadguard-node").spec.template.spec;
    const hostPathOf = (p: Obj, c: Obj, mountPath: string): string | undefined => p.volumes.find((v: Obj) => v.name === c.volumeMounts.find((m: Obj) => m.mountPath === mountPath)?.name)?.hostPath?.path;
    for (const path of ["/etc/cni/net.d", "/opt/cni/bin"]) expect(hostPathOf(pod, uninstallCni!, path), path).toBe(hostPathOf(nodePod, nodePod.containers[0], path));
    expect(uninstallCni!.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["DAC_OVERRIDE"] });
    expect(init!.args).toEqual(["enforce", "--cleanup", "--kube", "--node", "$(NODE_NAME)"]);
    expect(init!.env).toEqual(enforcerPod.containers[0].env.filter((e: Obj) => e.name === "NODE_NAME"));
    expect(init!.securityContext).toEqual(enforcerPod.containers[0].securityContext);
    // The pods' named netns, as the enforcer sees them.
    const mount = (c: Obj): Obj => c.volumeMounts.find((m: Obj) => m.mountPath === "/run/netns");
    expect(mount(init!)).toEqual(mount(enforcerPod.containers[0]));
    expect(pod.volumes.find((v: Obj) => v.name === mount(init!).name).hostPath).toEqual(enforcerPod.volumes.find((v: Obj) => v.name === mount(enforcerPod.containers[0]).name).hostPath);
    expect(cleanup.metadata.annotations ?? {}).toEqual({});
    expect(cleanup.spec.template.metadata.annotations).toEqual({ "container.apparmor.security.beta.kubernetes.io/cleanup": "unconfined" });
    // Ready (for `kubectl rollout status`) only once the cleanup exited 0.
    expect(pod.containers.map((c: Obj) => [c.command, c.securityContext.runAsNonRoot, c.securityContext.capabilities])).toEqual([[["sleep", "infinity"], true, { drop: ["ALL"] }]]);
  });
});

describe("examples/overlays/custom-image-namespace", () => {
  const dir = "examples/overlays/custom-image-namespace";
  const IMAGE = "registry.example.com/platform/nadguard:0.1.0";
  const NAMESPACE = "net-guard";
  const objects = [...render(dir), ...render(`${dir}/uninstall`)];
  const configurations = render(`${dir}/webhook-configurations`);

  it("runs every container of the webhook, the enforcer and the cleanup from the overlay's image", () => {
    const workloads = objects.filter((o) => o.spec?.template?.spec).map((o) => `${o.kind} ${o.metadata.name}`);
    expect(workloads.sort()).toEqual(["DaemonSet nadguard-cleanup", "DaemonSet nadguard-node", "Deployment nadguard-webhook"]);
    expect(containers(objects).map((c) => c.image)).toEqual(containers(objects).map(() => IMAGE));
  });

  it("puts every namespaced object in net-guard, renames the Namespace, and binds the service accounts there", () => {
    for (const object of objects.filter((o) => !CLUSTER_SCOPED.has(o.kind))) expect(object.metadata.namespace, `${object.kind} ${object.metadata.name}`).toBe(NAMESPACE);
    expect(objects.filter((o) => o.kind === "Namespace").map((o) => [o.metadata.name, o.metadata.labels["pod-security.kubernetes.io/enforce"]])).toEqual([[NAMESPACE, "privileged"]]);
    const subjects = objects.filter((o) => o.kind === "ClusterRoleBinding").flatMap((o) => o.subjects as Obj[]);
    expect(subjects.map((s) => s.namespace)).toEqual(subjects.map(() => NAMESPACE));
    // No `namespace:` anywhere (metadata, subjects, …) is left at nadguard.
    const namespaces = (value: unknown): unknown[] =>
      Array.isArray(value) ? value.flatMap(namespaces) : typeof value === "object" && value !== null ? Object.entries(value).flatMap(([key, child]) => (key === "namespace" ? [child] : namespaces(child))) : [];
    expect(new Set(namespaces(objects))).toEqual(new Set([NAMESPACE]));
  });

  it("webhook-configurations/ calls the Service in net-guard and skips net-guard and kube-system", () => {
    const service = one(objects, "Service", "nadguard-webhook");
    const webhooks = webhooksOf(configurations);
    expect(webhooks).toHaveLength(4);
    for (const webhook of webhooks) {
      expect(webhook.clientConfig.service).toMatchObject({ name: service.metadata.name, namespace: NAMESPACE, port: service.spec.ports[0].port });
      expect(skipped(webhook)).toEqual([NAMESPACE, "kube-system"]);
    }
  });

  it("`nadguard certs --namespace net-guard --patch-webhooks -` fills the caBundle of what the overlay renders (a process)", async () => {
    const certsDir = mkdtempSync(join(tmpdir(), "nadguard-overlay-certs-"));
    try {
      const text = execFileSync("kubectl", ["kustomize", join(ROOT, dir, "webhook-configurations")], { encoding: "utf8" });
      const r = await run(process.execPath, [NADGUARD_BIN, "certs", "--out-dir", certsDir, "--namespace", NAMESPACE, "--patch-webhooks", "-"], { input: text, timeoutMs: 60_000 });
      expect({ code: r.code, stderrFirst: r.stderr.split("\n")[0] }).toEqual({ code: 0, stderrFirst: "issued a new CA and serving certificate: no certificate yet" });
      expect(r.stderr).toContain(`  tls.crt: nadguard-webhook.${NAMESPACE}.svc, nadguard-webhook.${NAMESPACE}.svc.cluster.local;`);
      const patched = parseAllDocuments(r.stdout).map((doc) => doc.toJS() as Obj);
      for (const object of patched) expect(openApiProblems(object)).toEqual([]);
      const bundles = webhooksOf(patched).map((w) => w.clientConfig.caBundle);
      expect(bundles).toHaveLength(4);
      expect(new Set(bundles).size).toBe(1);
      expect(Buffer.from(bundles[0]!, "base64").toString()).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    } finally {
      rmSync(certsDir, { recursive: true, force: true });
    }
  });
});

describe("examples/overlays/cert-manager", () => {
  const dir = "examples/overlays/cert-manager";
  const objects = render(dir);
  const configurations = render(`${dir}/webhook-configurations`);
  const deployment = one(objects, "Deployment", "nadguard-webhook");
  const service = one(objects, "Service", "nadguard-webhook");
  const tlsSecret: string = deployment.spec.template.spec.volumes.find((v: Obj) => v.name === "tls").secret.secretName;
  const certificates = objects.filter((o) => o.kind === "Certificate");
  const serving = certificates.find((c) => c.spec.secretName === tlsSecret);

  it("issues the Secret the Deployment mounts, for the Service's DNS names", () => {
    expect(serving, `a Certificate for Secret ${tlsSecret}`).toBeDefined();
    expect(serving!.metadata.namespace).toBe(deployment.metadata.namespace);
    const name = `${service.metadata.name}.${service.metadata.namespace}.svc`;
    expect(serving!.spec.dnsNames).toEqual([name, `${name}.cluster.local`]);
    expect(serving!.spec.usages).toContain("server auth");
    expect(serving!.spec.isCA ?? false).toBe(false);
  });

  it("signs it with a CA of its own (an Issuer over the CA Certificate's Secret, itself self-signed), so renewals keep the caBundle", () => {
    const issuer = one(objects, "Issuer", serving!.spec.issuerRef.name);
    expect(serving!.spec.issuerRef.kind).toBe("Issuer");
    const ca = certificates.find((c) => c.spec.secretName === issuer.spec.ca?.secretName);
    expect(ca?.spec.isCA).toBe(true);
    expect(one(objects, "Issuer", ca!.spec.issuerRef.name).spec).toEqual({ selfSigned: {} });
    for (const object of [...certificates, ...objects.filter((o) => o.kind === "Issuer")]) expect(object.metadata.namespace).toBe(deployment.metadata.namespace);
  });

  it("webhook-configurations/: every configuration asks cert-manager to inject the serving Certificate's CA, and no caBundle placeholder is left", () => {
    const injectFrom = `${serving!.metadata.namespace}/${serving!.metadata.name}`;
    expect(configurations.map((o) => [o.kind, o.metadata.name, o.metadata.annotations?.["cert-manager.io/inject-ca-from"]])).toEqual([
      ["MutatingWebhookConfiguration", "nadguard", injectFrom],
      ["ValidatingWebhookConfiguration", "nadguard", injectFrom],
    ]);
    const webhooks = webhooksOf(configurations);
    expect(webhooks).toHaveLength(4);
    for (const webhook of webhooks) {
      expect(webhook.clientConfig).not.toHaveProperty("caBundle");
      expect(webhook.clientConfig.service).toMatchObject({ name: service.metadata.name, namespace: service.metadata.namespace });
    }
    // Everything else as in the base's configurations.
    const strip = (o: Obj): Obj => ({ ...o, metadata: { ...o.metadata, annotations: undefined }, webhooks: o.webhooks.map((w: Obj) => ({ ...w, clientConfig: { ...w.clientConfig, caBundle: undefined } })) });
    expect(configurations.map(strip)).toEqual(render("manifests/webhook-configurations").map(strip));
  });

  it("installs neither CRDs nor webhook configurations with the workloads", () => {
    expect(objects.filter((o) => o.kind === "CustomResourceDefinition" || isWebhookConfiguration(o))).toEqual([]);
  });
});

describe("README: the order of the kustomizations", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = (title: string): string => {
    const start = readme.indexOf(`\n## ${title}\n`);
    expect(start, `README has a section "${title}"`).toBeGreaterThan(0);
    const end = readme.indexOf("\n## ", start + 1);
    return readme.slice(start, end < 0 ? undefined : end);
  };
  /** Positions of commands in a section, in the order given; fails on a command the section lacks. */
  const order = (text: string, commands: readonly string[]): number[] =>
    commands.map((command) => {
      const at = text.indexOf(command);
      expect(at, command).toBeGreaterThanOrEqual(0);
      return at;
    });
  const increasing = (positions: number[]): boolean => positions.every((p, i) => i === 0 || p > positions[i - 1]!);

  it("names only kustomizations that exist", () => {
    const named = [...readme.matchAll(/kubectl (?:apply|delete) -k (\S+?)\/?(?=[\s`]|$)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(5);
    for (const dir of new Set(named)) expect(existsSync(join(ROOT, dir, "kustomization.yaml")), dir).toBe(true);
  });

  it("install: the CRDs, the base, the wait for the webhook Deployment, then the webhook configurations", () => {
    const install = section("Install in a cluster");
    expect(increasing(order(install, ["kubectl apply -k manifests/crds/", "kubectl apply -k manifests/\n", "kubectl -n nadguard rollout status deployment/nadguard-webhook", "kubectl kustomize manifests/webhook-configurations"]))).toBe(true);
  });

  it("uninstall: the webhook configurations first, the CNI conf off every node, the node DaemonSet, the cleanup, the base; the CRDs only on purpose", () => {
    const uninstall = section("Uninstall");
    expect(
      increasing(
        order(uninstall, [
          "kubectl delete -k manifests/webhook-configurations/",
          "node --uninstall",
          "delete daemonset nadguard-node",
          "kubectl apply -k manifests/uninstall/",
          "rollout status daemonset/nadguard-cleanup",
          "kubectl delete -k manifests/\n",
          "kubectl delete -k manifests/crds/",
        ]),
      ),
    ).toBe(true);
    expect(uninstall).toMatch(/Delete them only if you mean to delete all of those objects\s+cluster-wide: `kubectl delete -k manifests\/crds\/`/);
  });
});
