// manifests/: every object of its kustomizations (the base, crds/, webhook-configurations/,
// uninstall/) valid against the Kubernetes OpenAPI schemas (test/manifests/openapi.ts) or, for
// custom resources, against the CRDs shipped here; then the properties an install relies on, each
// asserted on the objects themselves. What `kubectl kustomize` renders of each, and of the overlays
// in examples/overlays/, is tested in kustomize.test.ts.
import { Environment } from "@marcbachmann/cel-js";
import fc from "fast-check";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { WORKLOAD_KINDS } from "../../src/admission/workload.js";
import { decide } from "../../src/admission/review.js";
import { parseConfig } from "../../src/config/config.js";
import { createRequest, envOf, snapshotFrom, updateRequest } from "../support/cluster.js";
import { openApiProblems } from "./openapi.js";
import { type JsonSchema, schemaProblems, structuralProblems } from "./structural-schema.js";

/** A parsed manifest: its shape is exactly what the assertions below check. */
type Obj = Record<string, any>;

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MANIFESTS = join(ROOT, "manifests");

function documents(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, "utf8"))
    .filter((doc) => doc.contents !== null)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      return doc.toJS() as Obj;
    });
}

function yamlFilesBelow(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFilesBelow(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

/** The kustomizations of manifests/, each applied on its own (README "Install in a cluster"); "" is the base. */
const KUSTOMIZATIONS = ["", "crds", "webhook-configurations", "uninstall", "enforcer"] as const;
const kustomizationIn = (dir: string): Obj => parseYaml(readFileSync(join(MANIFESTS, dir, "kustomization.yaml"), "utf8")) as Obj;
const kustomization = kustomizationIn("");
/** Every file the kustomizations list, relative to manifests/. */
const resources: string[] = KUSTOMIZATIONS.flatMap((dir) => (kustomizationIn(dir).resources as string[]).map((file) => join(dir, file)));
const generator = (kustomization.configMapGenerator as Obj[])[0]!;
const [configKey, configPath] = String(generator.files[0]).split("=") as [string, string];
const configText = readFileSync(join(MANIFESTS, configPath), "utf8");
/** The ConfigMap kustomize generates (its name gets a content hash, see the kubectl test below). */
const configMap: Obj = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: generator.name, namespace: generator.namespace, labels: generator.options.labels },
  data: { [configKey]: configText },
};

const objects: Array<{ file: string; object: Obj }> = [
  ...resources.flatMap((file) => documents(join(MANIFESTS, file)).map((object) => ({ file, object }))),
  { file: `configMapGenerator ${generator.name}`, object: configMap },
];
const all = objects.map((entry) => entry.object);
const find = (kind: string, name: string): Obj => {
  const found = all.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in manifests/`);
  return found;
};
const crds = all.filter((o) => o.kind === "CustomResourceDefinition");
const crdSchema = (plural: string, version: string): JsonSchema =>
  crds.find((c) => c.spec.names.plural === plural)!.spec.versions.find((v: Obj) => v.name === version).schema.openAPIV3Schema;

const webhookConfigurations = all.filter((o) => /WebhookConfiguration$/.test(o.kind));
const webhooks: Obj[] = webhookConfigurations.flatMap((c) => c.webhooks.map((w: Obj) => ({ ...w, configurationKind: c.kind })));
const podWebhooks = webhooks.filter((w) => w.rules.some((r: Obj) => r.resources.includes("pods")));
const deployment = find("Deployment", "nadguard-webhook");
const daemonSet = find("DaemonSet", "nadguard-enforcer");
const nodeSet = find("DaemonSet", "nadguard-node");
const webhookContainer: Obj = deployment.spec.template.spec.containers[0];
const enforcerContainer: Obj = daemonSet.spec.template.spec.containers[0];

/** Manifests an admin applies on purpose, outside `kubectl apply -k manifests/`. */
const OPT_IN = ["webhook-configurations/workload-warnings.yaml"];

describe("manifests/ against the Kubernetes OpenAPI schemas", () => {
  it("the kustomizations list every manifest file but the opt-in ones (and nothing that does not exist)", () => {
    const onDisk = yamlFilesBelow(MANIFESTS)
      .map((file) => relative(MANIFESTS, file))
      .filter((file) => !file.endsWith("kustomization.yaml") && file !== configPath && !OPT_IN.includes(file))
      .sort();
    expect([...resources].sort()).toEqual(onDisk);
  });

  it.each(objects.map(({ file, object }) => [`${file}: ${object.kind} ${object.metadata?.name}`, object]))("%s is valid", (_name, object) => {
    expect(openApiProblems(object as Obj)).toEqual([]);
  });

  it("catches what the schemas forbid (the validation is not a no-op)", () => {
    const broken = structuredClone(deployment);
    broken.spec.replicas = "three";
    broken.spec.template.spec.containers[0].imagePullPolicy = 3;
    broken.spec.template.spec.containers[0].livenessProbe.httpGett = {};
    const problems = openApiProblems(broken);
    expect(problems.join("\n")).toMatch(/replicas: must be integer/);
    expect(problems.join("\n")).toMatch(/imagePullPolicy: must be string/);
    expect(problems.join("\n")).toMatch(/livenessProbe\.httpGett: unknown field/);
    const webhook = structuredClone(find("ValidatingWebhookConfiguration", "nadguard"));
    webhook.webhooks[0].clientConfig.caBundle = "not base64!";
    expect(openApiProblems(webhook).join("\n")).toMatch(/caBundle: must match format "byte"/);
  });

  it("`kubectl kustomize manifests/` builds, and what it builds is valid too", (context) => {
    let built: string;
    try {
      built = execFileSync("kubectl", ["kustomize", MANIFESTS], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return context.skip("kubectl is not installed");
      throw error;
    }
    const output = parseAllDocuments(built).map((doc) => doc.toJS() as Obj);
    const base = (kustomization.resources as string[]).flatMap((file) => documents(join(MANIFESTS, file)));
    expect(output.length).toBe(base.length + 1);
    for (const object of output) expect(openApiProblems(object), `${object.kind} ${object.metadata.name}`).toEqual([]);
    const generated = output.find((o) => o.kind === "ConfigMap")!;
    expect(generated.metadata.name).toMatch(/^nadguard-config-[a-z0-9]+$/);
    expect(generated.data).toEqual(configMap.data);
    // The hashed name reaches both workloads.
    for (const kind of ["Deployment", "DaemonSet"]) {
      const volumes: Obj[] = output.find((o) => o.kind === kind)!.spec.template.spec.volumes;
      expect(volumes.find((v) => v.name === "config")!.configMap.name).toBe(generated.metadata.name);
    }
  });
});

describe("the CRDs", () => {
  it.each(crds.map((crd) => [crd.metadata.name, crd]))("%s has a structural schema", (_name, crd) => {
    for (const version of (crd as Obj).spec.versions) expect(structuralProblems(version.schema.openAPIV3Schema)).toEqual([]);
  });

  it("define NetworkAttachmentDefinition v1 and MultiNetworkPolicy v1beta1 (plural multi-networkpolicies, short name multi-policy)", () => {
    const nad = find("CustomResourceDefinition", "network-attachment-definitions.k8s.cni.cncf.io");
    expect(nad.spec).toMatchObject({ group: "k8s.cni.cncf.io", scope: "Namespaced", names: { kind: "NetworkAttachmentDefinition", plural: "network-attachment-definitions" } });
    expect(nad.spec.versions.map((v: Obj) => [v.name, v.served, v.storage])).toEqual([["v1", true, true]]);
    expect(crdSchema("network-attachment-definitions", "v1").properties!.spec!.properties!.config).toMatchObject({ type: "string" });
    const mnp = find("CustomResourceDefinition", "multi-networkpolicies.k8s.cni.cncf.io");
    expect(mnp.spec).toMatchObject({ group: "k8s.cni.cncf.io", scope: "Namespaced", names: { kind: "MultiNetworkPolicy", plural: "multi-networkpolicies", shortNames: ["multi-policy"] } });
    expect(mnp.spec.versions.map((v: Obj) => [v.name, v.served, v.storage])).toEqual([["v1beta1", true, true]]);
  });

  const nadFiles = [
    ...yamlFilesBelow(join(ROOT, "examples", "cluster")),
    ...yamlFilesBelow(join(ROOT, "test", "fixtures", "nads")),
  ];
  const nads = nadFiles.flatMap((file) =>
    documents(file)
      .filter((o) => o.kind === "NetworkAttachmentDefinition")
      .map((o) => [`${relative(ROOT, file)}: ${o.metadata.namespace ?? "default"}/${o.metadata.name}`, o] as const),
  );
  it.each(nads)("accepts the NAD %s", (_name, nad) => {
    expect(schemaProblems(nad, crdSchema("network-attachment-definitions", "v1"))).toEqual([]);
  });
  it("has NADs to check", () => expect(nads.length).toBeGreaterThanOrEqual(6));

  // examples/overlays/ holds kustomizations, rendered and validated in kustomize.test.ts.
  it.each(
    yamlFilesBelow(join(ROOT, "examples"))
      .filter((file) => !relative(ROOT, file).startsWith(join("examples", "overlays")))
      .flatMap((file) =>
        documents(file)
          .filter((o) => o.kind !== "NetworkAttachmentDefinition" && o.kind !== "MultiNetworkPolicy")
          .map((o) => [`${relative(ROOT, file)}: ${o.kind} ${o.metadata.name}`, o] as const),
      ),
  )("the example %s is valid against the OpenAPI schemas", (_name, object) => {
    expect(openApiProblems(object)).toEqual([]);
  });

  const policy = (spec: string): Obj =>
    parseYaml(`apiVersion: k8s.cni.cncf.io/v1beta1
kind: MultiNetworkPolicy
metadata:
  name: p
  namespace: tenant-a
  annotations: { k8s.v1.cni.cncf.io/policy-for: macvlan-data }
spec:
${spec.replace(/^/gm, "  ")}`);
  const accepted: Array<[string, string]> = [
    ["podSelector: {}", "podSelector: {}\npolicyTypes: [Ingress]"],
    ["podSelector written as null", "podSelector:\npolicyTypes: [Ingress, Egress]"],
    [
      "a port range (endPort) and named ports",
      "podSelector: { matchLabels: { app: db } }\ningress:\n  - ports:\n      - { protocol: TCP, port: 5000, endPort: 5100 }\n      - { protocol: UDP, port: dns }",
    ],
    [
      "peers with null selectors, ipBlock with except, matchExpressions",
      [
        "podSelector: { matchExpressions: [{ key: tier, operator: In, values: [web] }] }",
        "ingress:",
        "  - from:",
        "      - namespaceSelector:",
        "      - podSelector:",
        "        namespaceSelector: { matchLabels: { team: alpha } }",
        "egress:",
        "  - to:",
        "      - ipBlock: { cidr: 198.18.0.0/15, except: [198.18.1.0/24] }",
        "  - to:",
        "      - ipBlock: { cidr: 'fd00::/8' }",
        "    ports: [{ port: 53, protocol: UDP }]",
        "policyTypes: [Egress, Ingress]",
      ].join("\n"),
    ],
    ["a rule written as null lists", "podSelector: {}\ningress:\n  - from:\n    ports:"],
  ];
  it.each(accepted)("accepts a MultiNetworkPolicy with %s", (_name, spec) => {
    expect(schemaProblems(policy(spec), crdSchema("multi-networkpolicies", "v1beta1"))).toEqual([]);
  });

  const rejected: Array<[string, string, RegExp]> = [
    ["no podSelector", "policyTypes: [Ingress]", /spec\.podSelector: required/],
    ["a policy type in lower case", "podSelector: {}\npolicyTypes: [ingress]", /policyTypes\[0\]: must be one of Ingress, Egress/],
    ["endPort as a string", "podSelector: {}\ningress: [{ ports: [{ port: 80, endPort: '90' }] }]", /endPort: must be of type integer/],
    ["a misspelt field", "podSelector: {}\ningres: []", /spec\.ingres: unknown field/],
    ["ipBlock without cidr", "podSelector: {}\negress: [{ to: [{ ipBlock: { except: [] } }] }]", /ipBlock\.cidr: required/],
  ];
  it.each(rejected)("rejects a MultiNetworkPolicy with %s", (_name, spec, message) => {
    expect(schemaProblems(policy(spec), crdSchema("multi-networkpolicies", "v1beta1")).join("\n")).toMatch(message);
  });

  it("needs nullable selectors: without them the server drops `podSelector:` (null) and then requires it", () => {
    const schema = structuredClone(crdSchema("multi-networkpolicies", "v1beta1"));
    delete schema.properties!.spec!.properties!.podSelector!.nullable;
    expect(schemaProblems(policy("podSelector:"), schema)).toEqual(["spec.podSelector: required"]);
  });
});

describe("the webhook configurations", () => {
  it("send pods (CREATE, UPDATE, and UPDATE of pods/status) to /mutate and /validate, NADs (CREATE/UPDATE/DELETE) and policies (CREATE/UPDATE) to /validate", () => {
    const routes = webhooks.map((w) => [w.configurationKind, w.clientConfig.service.path, w.rules.map((r: Obj) => `${r.apiGroups}/${r.apiVersions}/${r.resources}:${r.operations}`)]);
    const pods = ["/v1/pods:CREATE,UPDATE", "/v1/pods/status:UPDATE"];
    expect(routes).toEqual([
      ["MutatingWebhookConfiguration", "/mutate", pods],
      ["ValidatingWebhookConfiguration", "/validate", pods],
      ["ValidatingWebhookConfiguration", "/validate", ["k8s.cni.cncf.io/v1/network-attachment-definitions:CREATE,UPDATE,DELETE"]],
      ["ValidatingWebhookConfiguration", "/validate", ["k8s.cni.cncf.io/v1beta1/multi-networkpolicies:CREATE,UPDATE"]],
    ]);
  });

  it.each(webhooks.map((w) => [w.name, w]))("%s: no side effects, v1 reviews, a short timeout, an explicit failurePolicy, the Service", (_name, webhook) => {
    const w = webhook as Obj;
    expect(w.sideEffects).toBe("None");
    expect(w.admissionReviewVersions).toEqual(["v1"]);
    expect(w.timeoutSeconds).toBeGreaterThanOrEqual(1);
    expect(w.timeoutSeconds).toBeLessThanOrEqual(10);
    expect(w.failurePolicy).toBe("Fail");
    const service = find("Service", w.clientConfig.service.name);
    expect(service.metadata.namespace).toBe(w.clientConfig.service.namespace);
    expect(service.spec.ports.map((p: Obj) => p.port)).toContain(w.clientConfig.service.port);
  });

  it.each(webhooks.map((w) => [w.name, w]))("%s skips the nadguard and kube-system namespaces", (_name, webhook) => {
    const expressions: Obj[] = (webhook as Obj).namespaceSelector.matchExpressions;
    expect(expressions).toContainEqual({ key: "kubernetes.io/metadata.name", operator: "NotIn", values: expect.arrayContaining(["nadguard", "kube-system"]) });
  });

  it("reinvoke the pod mutation when a later webhook changed the pod, and keep the mutating timeouts' sum short", () => {
    const mutating = webhooks.filter((w) => w.configurationKind === "MutatingWebhookConfiguration");
    expect(mutating.map((w) => w.reinvocationPolicy)).toEqual(["IfNeeded"]);
    // Mutating webhooks run in sequence; with one reinvocation nadguard's share is twice its timeout.
    expect(2 * mutating.reduce((sum, w) => sum + w.timeoutSeconds, 0) + podWebhooks.filter((w) => w.configurationKind !== "MutatingWebhookConfiguration")[0]!.timeoutSeconds).toBeLessThanOrEqual(15);
  });

  it("document the failurePolicy of each webhook next to it", () => {
    const text = readFileSync(join(MANIFESTS, "webhook-configurations", "webhook-configurations.yaml"), "utf8");
    for (const heading of ["pods (mutate): Fail", "pods (validate): Fail", "NADs and MultiNetworkPolicies (validate): Fail"]) expect(text).toContain(heading);
  });
});

describe("the opt-in workload warnings (webhook-configurations/workload-warnings.yaml)", () => {
  const file = join(MANIFESTS, "webhook-configurations", "workload-warnings.yaml");
  const [configuration, ...rest] = documents(file);
  const warningWebhooks: Obj[] = configuration!.webhooks;
  const PLURALS: Record<string, string> = {
    Deployment: "deployments",
    ReplicaSet: "replicasets",
    StatefulSet: "statefulsets",
    DaemonSet: "daemonsets",
    Job: "jobs",
    CronJob: "cronjobs",
    ReplicationController: "replicationcontrollers",
  };
  // No controller creates pods from a PodTemplate: `nadguard admit` checks one, the webhook need not.
  const sent = WORKLOAD_KINDS.filter((w) => w.kind !== "PodTemplate");

  it("is one ValidatingWebhookConfiguration of its own, valid against the OpenAPI schemas, and not installed by default", () => {
    expect(rest).toEqual([]);
    expect(configuration!.kind).toBe("ValidatingWebhookConfiguration");
    expect(configuration!.metadata.name).not.toBe("nadguard");
    expect(openApiProblems(configuration!)).toEqual([]);
    expect(resources).not.toContain("webhook-configurations/workload-warnings.yaml");
  });

  it("sends CREATE and UPDATE of every workload kind nadguard judges to /validate of the nadguard Service, and nothing else", () => {
    const routed = warningWebhooks.flatMap((w) =>
      w.rules.flatMap((r: Obj) => r.resources.map((resource: string) => `${r.apiGroups}/${r.apiVersions}/${resource}:${r.operations}:${w.clientConfig.service.path}`)),
    );
    expect(routed.sort()).toEqual(sent.map((w) => `${w.group}/v1/${PLURALS[w.kind]}:CREATE,UPDATE:/validate`).sort());
    for (const webhook of warningWebhooks) {
      const service = find("Service", webhook.clientConfig.service.name);
      expect([service.metadata.namespace, webhook.clientConfig.service.port]).toEqual([webhook.clientConfig.service.namespace, 443]);
    }
  });

  it("never holds up a workload: failurePolicy Ignore, a short timeout, no side effects, and the namespaces the other webhooks skip", () => {
    for (const webhook of warningWebhooks) {
      expect([webhook.failurePolicy, webhook.sideEffects, webhook.admissionReviewVersions]).toEqual(["Ignore", "None", ["v1"]]);
      expect(webhook.timeoutSeconds).toBeLessThanOrEqual(5);
      expect(webhook.namespaceSelector).toEqual(webhooks[0]!.namespaceSelector);
    }
  });

  it("reads each kind's template where nadguard reads it, and only when it has a networks or default-network annotation", () => {
    for (const webhook of warningWebhooks) {
      const kinds = sent.filter((w) => webhook.rules.some((r: Obj) => r.resources.includes(PLURALS[w.kind])));
      const paths = new Set(kinds.map((w) => `object.${w.template.join(".")}`));
      expect(paths.size).toBe(1);
      const template = [...paths][0]!;
      const condition = webhook.matchConditions.find((c: Obj) => c.name === "template-has-networks-annotation").expression.replace(/\s+/g, " ");
      expect(condition).toContain(`has(${template}.metadata) && has(${template}.metadata.annotations) && `);
      expect(condition).toMatch(
        new RegExp(`\\('k8s\\.v1\\.cni\\.cncf\\.io/networks' in ${template.replace(/\./g, "\\.")}\\.metadata\\.annotations \\|\\| 'v1\\.multus-cni\\.io/default-network' in ${template.replace(/\./g, "\\.")}\\.metadata\\.annotations\\)$`),
      );
      const controllers = webhook.matchConditions.find((c: Obj) => c.name === "not-a-controller").expression.replace(/\s+/g, " ");
      expect(controllers).toBe("!request.userInfo.username.startsWith('system:serviceaccount:kube-system:') && request.userInfo.username != 'system:kube-controller-manager'");
    }
  });

  it("says how to install it and what failurePolicy means for it", () => {
    const text = readFileSync(file, "utf8");
    expect(text).toContain("kubectl apply -f -");
    expect(text).toMatch(/failurePolicy Ignore: /);
  });
});

describe("the pod webhooks' matchConditions, evaluated as CEL", () => {
  const NETWORKS = "k8s.v1.cni.cncf.io/networks";
  const DEFAULT = "v1.multus-cni.io/default-network";
  const cel = new Environment({ unlistedVariablesAreDyn: true });
  const conditions = (webhook: Obj) => (webhook.matchConditions as Obj[]).map((c) => ({ name: c.name as string, run: cel.parse(c.expression) }));
  const perWebhook = podWebhooks.map((w) => ({ name: w.name as string, conditions: conditions(w) }));

  type Annotations = Record<string, string> | undefined;
  const podWith = (annotations: Annotations): Obj => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "db", namespace: "tenant-b", ...(annotations && { annotations }) },
    spec: { containers: [{ name: "db", image: "registry.example/db:1.0" }] },
  });
  /** Whether kube-apiserver calls the webhook: every condition true (an error would fail the request: none may throw). */
  const calls = (operation: "CREATE" | "UPDATE", object: Obj, oldObject: Obj | null): boolean[] =>
    perWebhook.map(({ conditions }) => conditions.every(({ run }) => run({ request: { operation }, object, oldObject }) === true));

  it("are the same on /mutate and /validate", () => {
    expect(podWebhooks.map((w) => w.matchConditions)).toEqual([podWebhooks[0]!.matchConditions, podWebhooks[0]!.matchConditions]);
    expect(perWebhook[0]!.conditions.map((c) => c.name)).toEqual(["create-with-networks", "update-changes-networks"]);
  });

  it.each<[string, "CREATE" | "UPDATE", Annotations, Annotations | null, boolean]>([
    ["CREATE without annotations", "CREATE", undefined, null, false],
    ["CREATE with other annotations only", "CREATE", { "example.com/x": "1" }, null, false],
    ["CREATE with a networks annotation", "CREATE", { [NETWORKS]: "a" }, null, true],
    ["CREATE with an empty networks annotation", "CREATE", { [NETWORKS]: "" }, null, true],
    ["CREATE with a default-network annotation", "CREATE", { [DEFAULT]: "a" }, null, true],
    ["UPDATE of labels only", "UPDATE", { [NETWORKS]: "a", [DEFAULT]: "d" }, { [NETWORKS]: "a", [DEFAULT]: "d" }, false],
    ["UPDATE of another annotation", "UPDATE", { [NETWORKS]: "a", "example.com/x": "2" }, { [NETWORKS]: "a", "example.com/x": "1" }, false],
    ["UPDATE of a pod without annotations", "UPDATE", undefined, undefined, false],
    ["UPDATE adding annotations that are not networks", "UPDATE", { "example.com/x": "1" }, undefined, false],
    ["UPDATE adding a network to a pod without annotations", "UPDATE", { [NETWORKS]: "a" }, undefined, true],
    ["UPDATE adding a network", "UPDATE", { [NETWORKS]: "a,b" }, { [NETWORKS]: "a" }, true],
    ["UPDATE changing a network", "UPDATE", { [NETWORKS]: "b" }, { [NETWORKS]: "a" }, true],
    ["UPDATE adding a default network", "UPDATE", { [NETWORKS]: "a", [DEFAULT]: "d" }, { [NETWORKS]: "a" }, true],
    ["UPDATE changing the default network", "UPDATE", { [DEFAULT]: "e" }, { [DEFAULT]: "d" }, true],
    ["UPDATE removing the networks", "UPDATE", {}, { [NETWORKS]: "a" }, true],
    ["UPDATE removing the annotations", "UPDATE", undefined, { [DEFAULT]: "d" }, true],
    ["UPDATE without an old object", "UPDATE", { "example.com/x": "1" }, null, true],
  ])("%s: called %s", (_title, operation, annotations, oldAnnotations, called) => {
    const oldObject = oldAnnotations === null ? null : podWith(oldAnnotations);
    expect(calls(operation, podWith(annotations), oldObject)).toEqual([called, called]);
  });

  const exampleEnv = () => envOf(snapshotFrom(...yamlFilesBelow(join(ROOT, "examples", "cluster")).map((file) => readFileSync(file, "utf8"))));

  it("only save calls: whatever they keep away, nadguard itself allows untouched (property, seeded)", async () => {
    const env = exampleEnv();
    const value = fc.constantFrom("ipvlan-storage", "shared-networks/bridge-shared", "", "nope/x", "a,,b");
    const annotations: fc.Arbitrary<Annotations> = fc.option(
      fc.record({ [NETWORKS]: value, [DEFAULT]: value, "example.com/x": fc.constantFrom("1", "2") }, { requiredKeys: [] }),
      { nil: undefined },
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("CREATE" as const, "UPDATE" as const), annotations, annotations, async (operation, now, before) => {
        const object = podWith(now);
        const oldObject = operation === "CREATE" ? null : podWith(before);
        const [mutate, validate] = calls(operation, object, oldObject);
        expect(mutate).toBe(validate);
        const changed = [NETWORKS, DEFAULT].some((key) => now?.[key] !== (operation === "CREATE" ? undefined : before?.[key]));
        expect(mutate).toBe(changed);
        if (mutate) return;
        const request = operation === "CREATE" ? createRequest(object, "bob") : updateRequest(oldObject!, object, "bob");
        for (const endpoint of ["mutate", "validate"] as const) {
          expect(await decide(request, env, endpoint)).toEqual({ allowed: true, patch: [], warnings: [], attachments: [] });
        }
      }),
      { seed: 1515, numRuns: 500 },
    );
  });

  it("would be caught leaving a hole: a condition that forgot the default-network annotation keeps out an update nadguard denies", async () => {
    const expression: string = podWebhooks[0]!.matchConditions[1].expression;
    const forgetful = cel.parse(expression.slice(0, expression.lastIndexOf("||", expression.indexOf(`(has(object.metadata.annotations) && '${DEFAULT}'`))));
    const before = podWith({ [NETWORKS]: "ipvlan-storage" });
    const after = podWith({ [NETWORKS]: "ipvlan-storage", [DEFAULT]: "shared-networks/bridge-shared" });
    expect(forgetful({ request: { operation: "UPDATE" }, object: after, oldObject: before })).toBe(false);
    expect(calls("UPDATE", after, before)).toEqual([true, true]);
    expect((await decide(updateRequest(before, after, "bob"), exampleEnv(), "validate")).reason).toBe("network-forbidden");
  });
});

describe("RBAC", () => {
  const roles = all.filter((o) => o.kind === "ClusterRole" || o.kind === "Role");

  // The node daemon alone writes to the API, what Multus writes: pods/status (network-status) and Events.
  const isNode = (role: Obj): boolean => role.metadata.name === "nadguard:node";
  it.each(roles.map((r) => [r.metadata.name, r]))("%s grants no wildcard and no write except creating SubjectAccessReviews (and the node daemon's pods/status and Events)", (_name, role) => {
    for (const rule of (role as Obj).rules as Obj[]) {
      for (const field of ["apiGroups", "resources", "verbs", "resourceNames"]) expect(rule[field] ?? []).not.toContain("*");
      expect(rule.nonResourceURLs).toBeUndefined();
      for (const verb of rule.verbs as string[]) {
        if (["get", "list", "watch"].includes(verb)) continue;
        if (verb === "update" && isNode(role as Obj)) expect(rule).toMatchObject({ apiGroups: [""], resources: ["pods/status"] });
        else if (verb === "create" && isNode(role as Obj) && rule.resources[0] === "events") expect(rule).toMatchObject({ apiGroups: [""], resources: ["events"] });
        else if (verb === "create") expect(rule).toMatchObject({ apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"] });
        else if (verb === "use") expect(rule).toMatchObject({ apiGroups: ["k8s.cni.cncf.io"], resources: ["network-attachment-definitions"] });
        else throw new Error(`${(role as Obj).metadata.name}: verb ${verb} is not allowed`);
      }
    }
  });

  const grants = (roleName: string): string[] =>
    (find("ClusterRole", roleName).rules as Obj[]).flatMap((rule) =>
      (rule.apiGroups as string[]).flatMap((group) => (rule.resources as string[]).flatMap((resource) => (rule.verbs as string[]).map((verb) => `${verb} ${group || "core"}/${resource}`))),
    ).sort();
  const read = (resources: string[]): string[] => resources.flatMap((r) => ["get", "list", "watch"].map((verb) => `${verb} ${r}`));

  it("the webhook reads NADs, namespaces and policies and creates SubjectAccessReviews; nothing more", () => {
    expect(grants("nadguard:webhook")).toEqual(
      [...read(["k8s.cni.cncf.io/network-attachment-definitions", "k8s.cni.cncf.io/multi-networkpolicies", "core/namespaces"]), "create authorization.k8s.io/subjectaccessreviews"].sort(),
    );
  });

  it("the enforcer reads pods, NADs, namespaces and policies; nothing more", () => {
    expect(grants("nadguard:enforcer")).toEqual(read(["core/pods", "core/namespaces", "k8s.cni.cncf.io/network-attachment-definitions", "k8s.cni.cncf.io/multi-networkpolicies"]).sort());
  });

  it("the node daemon reads what the enforcer reads, creates SubjectAccessReviews and Events, and writes pods/status only", () => {
    expect(grants("nadguard:node")).toEqual(
      [
        ...read(["core/pods", "core/namespaces", "k8s.cni.cncf.io/network-attachment-definitions", "k8s.cni.cncf.io/multi-networkpolicies"]),
        "get core/pods/status",
        "update core/pods/status",
        "create core/events",
        "create authorization.k8s.io/subjectaccessreviews",
      ].sort(),
    );
  });

  it("nadguard:nad-user grants verb use on NADs, what nadguard's SubjectAccessReviews ask", () => {
    expect(grants("nadguard:nad-user")).toEqual(["use k8s.cni.cncf.io/network-attachment-definitions"]);
  });

  it.each([
    [deployment, "nadguard:webhook"],
    [daemonSet, "nadguard:enforcer"],
    [nodeSet, "nadguard:node"],
  ])("the service account of %# is bound to its role", (workload, roleName) => {
    const accountName = (workload as Obj).spec.template.spec.serviceAccountName;
    expect(find("ServiceAccount", accountName).metadata.namespace).toBe("nadguard");
    const binding = all.find((o) => o.kind === "ClusterRoleBinding" && o.roleRef.name === roleName)!;
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: accountName, namespace: "nadguard" }]);
  });
});

describe("the webhook Deployment", () => {
  const pod: Obj = deployment.spec.template.spec;
  const portNumber = (name: string): number => webhookContainer.ports.find((p: Obj) => p.name === name).containerPort;

  it("runs three replicas spread across nodes, never fewer than three during a rollout, at most one down in a drain", () => {
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
    const antiAffinity = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    expect(antiAffinity.topologyKey).toBe("kubernetes.io/hostname");
    expect(antiAffinity.labelSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    const pdb = find("PodDisruptionBudget", "nadguard-webhook");
    expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable === 2).toBe(true);
    expect(find("PriorityClass", pod.priorityClassName).value).toBeGreaterThan(0);
  });

  it("is reached through the Service on 443 → the container's 8443", () => {
    const service = find("Service", "nadguard-webhook");
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels);
    const port = service.spec.ports[0];
    expect(port.port).toBe(443);
    expect(portNumber(port.targetPort)).toBe(8443);
    expect(webhookContainer.args.join(" ")).toContain("--listen 0.0.0.0:8443");
  });

  it("probes /healthz and /readyz over HTTPS on 8443 and drains behind a preStop sleep", () => {
    expect([webhookContainer.livenessProbe, webhookContainer.readinessProbe, webhookContainer.startupProbe].map((p: Obj) => [p.httpGet.path, p.httpGet.scheme, portNumber(p.httpGet.port)])).toEqual([
      ["/healthz", "HTTPS", 8443],
      ["/readyz", "HTTPS", 8443],
      ["/healthz", "HTTPS", 8443],
    ]);
    const [command, seconds] = webhookContainer.lifecycle.preStop.exec.command;
    expect(command).toBe("sleep");
    // The server's own drain grace is 25 s (webhook/start.ts); the kubelet waits for both.
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(Number(seconds) + 25);
  });

  it("runs as non-root with a read-only root filesystem, no capabilities, RuntimeDefault seccomp, requests and limits", () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(webhookContainer.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } });
    expect(Object.keys(webhookContainer.resources.requests).sort()).toEqual(["cpu", "memory"]);
    expect(webhookContainer.resources.limits.memory).toBeDefined();
    expect(pod.hostNetwork ?? false).toBe(false);
  });

  it("serves in cluster mode from the mounted Secret and ConfigMap: `webhook --kube --tls-cert --tls-key --config`", () => {
    const args: string[] = webhookContainer.args;
    expect(args.slice(0, 2)).toEqual(["webhook", "--kube"]);
    const flag = (name: string): string => args[args.indexOf(name) + 1]!;
    const mountOf = (file: string): Obj => {
      const mount = webhookContainer.volumeMounts.find((m: Obj) => file.startsWith(`${m.mountPath}/`));
      expect(mount, file).toBeDefined();
      expect(mount.subPath, "a subPath mount never sees Secret updates").toBeUndefined();
      return pod.volumes.find((v: Obj) => v.name === mount.name);
    };
    expect(mountOf(flag("--tls-cert")).secret.secretName).toBe("nadguard-webhook-tls");
    expect(mountOf(flag("--tls-key")).secret.secretName).toBe("nadguard-webhook-tls");
    expect(flag("--tls-cert").endsWith("/tls.crt") && flag("--tls-key").endsWith("/tls.key")).toBe(true);
    const config = mountOf(flag("--config")).configMap;
    expect(config.name).toBe(generator.name);
    expect(config.items).toEqual([{ key: configKey, path: flag("--config").split("/").pop() }]);
  });

  it("ships a configuration file nadguard accepts", () => {
    expect(() => parseConfig(parseYaml(configText), configPath)).not.toThrow();
  });
});

describe("the enforcer DaemonSet", () => {
  const pod: Obj = daemonSet.spec.template.spec;

  it("shares the host PID namespace but not its network, runs everywhere, and has NET_ADMIN and SYS_ADMIN only beside SYS_PTRACE", () => {
    expect(pod.hostPID).toBe(true);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
    expect(enforcerContainer.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"] });
    expect(enforcerContainer.securityContext.privileged ?? false).toBe(false);
    expect(enforcerContainer.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(pod.securityContext.seccompProfile).toEqual({ type: "RuntimeDefault" });
  });

  it("does not pair allowPrivilegeEscalation: false with SYS_ADMIN or privileged (the API's own rule, and no boundary)", () => {
    for (const container of [...pod.containers, ...(pod.initContainers ?? [])] as Obj[]) {
      const context: Obj = container.securityContext ?? {};
      if (context.allowPrivilegeEscalation !== false) continue;
      expect(context.privileged ?? false).toBe(false);
      expect((context.capabilities?.add ?? []).map((cap: string) => cap.replace(/^CAP_/, ""))).not.toContain("SYS_ADMIN");
    }
  });

  it("runs `enforce --kube --node $(NODE_NAME)` with the node name from the downward API and serves metrics", () => {
    const args: string[] = enforcerContainer.args;
    expect(args.slice(0, 4)).toEqual(["enforce", "--kube", "--node", "$(NODE_NAME)"]);
    expect(enforcerContainer.env.find((e: Obj) => e.name === "NODE_NAME").valueFrom).toEqual({ fieldRef: { fieldPath: "spec.nodeName" } });
    const listen = args[args.indexOf("--metrics-listen") + 1]!;
    const metrics = enforcerContainer.ports.find((p: Obj) => p.name === "metrics");
    expect(listen).toBe(`0.0.0.0:${metrics.containerPort}`);
    expect(enforcerContainer.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
  });

  it("mounts /run/netns from the host (following new mounts) and the config", () => {
    const mount = enforcerContainer.volumeMounts.find((m: Obj) => m.mountPath === "/run/netns");
    expect(mount).toMatchObject({ readOnly: true, mountPropagation: "HostToContainer" });
    expect(pod.volumes.find((v: Obj) => v.name === mount.name).hostPath.path).toBe("/run/netns");
    const config = enforcerContainer.args[enforcerContainer.args.indexOf("--config") + 1];
    expect(config).toBe(webhookContainer.args[webhookContainer.args.indexOf("--config") + 1]);
  });
});

describe("the node DaemonSet", () => {
  const pod: Obj = nodeSet.spec.template.spec;
  const [container] = pod.containers as Obj[];
  const hostPathOf = (c: Obj, mountPath: string): string | undefined => {
    const mount = (c.volumeMounts as Obj[]).find((m) => m.mountPath === mountPath);
    return mount && pod.volumes.find((v: Obj) => v.name === mount.name)?.hostPath?.path;
  };

  it("runs `node --kube --in-cluster --node $(NODE_NAME)` on every node, in the host's network and PID namespaces", () => {
    expect(container!.args.slice(0, 5)).toEqual(["node", "--kube", "--in-cluster", "--node", "$(NODE_NAME)"]);
    expect(container!.env.find((e: Obj) => e.name === "NODE_NAME").valueFrom).toEqual({ fieldRef: { fieldPath: "spec.nodeName" } });
    expect([pod.hostNetwork, pod.hostPID, pod.tolerations]).toEqual([true, true, [{ operator: "Exists" }]]);
    const listen = container!.args[container!.args.indexOf("--metrics-listen") + 1];
    expect(listen).toBe(`0.0.0.0:${container!.ports.find((p: Obj) => p.name === "metrics").containerPort}`);
    expect(container!.args[container!.args.indexOf("--config") + 1]).toBe(webhookContainer.args[webhookContainer.args.indexOf("--config") + 1]);
  });

  it("probes /healthz (liveness) and /readyz (readiness) on the --metrics-listen port: a kubelet cannot probe the unix socket", () => {
    expect([container!.livenessProbe.httpGet, container!.readinessProbe.httpGet]).toEqual([
      { path: "/healthz", port: "metrics" },
      { path: "/readyz", port: "metrics" },
    ]);
  });

  it("mounts the daemon config's default directories from the host at the same paths", () => {
    // socketDir, cniConfigDir, binDir, cniDir (under /var/lib/cni), deviceCheckpoint's directory, the sandboxes' netns.
    for (const path of ["/run/nadguard", "/etc/cni/net.d", "/opt/cni/bin", "/var/lib/cni", "/var/lib/kubelet/device-plugins", "/run/netns"]) expect(hostPathOf(container!, path), path).toBe(path);
  });

  it("installs the shim with an init container: bin/nadguard-cni copied into the host's /opt/cni/bin under a temporary name and renamed", () => {
    const [init] = pod.initContainers as Obj[];
    expect(hostPathOf(init!, "/host/opt/cni/bin")).toBe("/opt/cni/bin");
    const script = init!.command.join(" ");
    expect(script).toContain("cp /app/bin/nadguard-cni /host/opt/cni/bin/.nadguard-cni.new");
    expect(script).toContain("mv -f /host/opt/cni/bin/.nadguard-cni.new /host/opt/cni/bin/nadguard-cni");
  });
});

describe("namespaces", () => {
  it("puts every namespaced object in nadguard, and nadguard's namespace admits the enforcer (Pod Security privileged)", () => {
    const clusterScoped = new Set(["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]);
    for (const object of all.filter((o) => !clusterScoped.has(o.kind))) expect(object.metadata.namespace, `${object.kind} ${object.metadata.name}`).toBe("nadguard");
    expect(find("Namespace", "nadguard").metadata.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
  });
});
