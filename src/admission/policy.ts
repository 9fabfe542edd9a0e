// The MultiNetworkPolicy decision: a policy the API server would accept but
// that cannot mean what its author thinks is denied at `kubectl apply`; a valid policy whose meaning
// is surprising is allowed with warnings that say what it does. A pure function of
// (request, snapshot, config).
//
// - Denials are the NetworkPolicy validation of kube-apiserver (pkg/apis/networking/validation),
//   which the CRD schema cannot express, plus the policy-for annotation.
// - Warnings read the policy with the policy engine's own model (src/policy): the pods it selects,
//   the NADs it applies to, how named ports resolve.
// - UPDATE judges only what changes, like NADs: an old policy that predates a rule can still get
//   its labels edited.
//
// Both endpoints give the same answer; there is nothing to mutate.
import { z } from "zod";
import type { AdmissionRequest } from "../api/admission-review.js";
import { type Problem, joinPath } from "../api/errors.js";
import {
  ANNOTATION_POLICY_FOR,
  IPBlock,
  LabelSelector,
  LabelSelectorRequirement,
  MultiNetworkPolicy,
  ObjectMeta,
  type PolicyPeer,
  PolicyPort,
  PolicyType,
  annotationsOf,
  objectKey,
} from "../api/objects.js";
import { cidrContains, parseCidr } from "../networks/addresses.js";
import { nadCniInfo } from "../networks/nad-config.js";
import { isDns1123Label, isLabelValue, isQualifiedName } from "../networks/names.js";
import { type PolicyModel, buildModel } from "../policy/model.js";
import { type Direction, type Policy, type Rule, parsePolicyFor } from "../policy/policy.js";
import { type PodInfo, namedPortKey } from "../policy/pods.js";
import { ALLOW, type AdmissionEnv, type Decision, type Endpoint, clampWarning, deny } from "./decision.js";
import { canonicalJson } from "./canonical-json.js";
import { explainObjectProblems } from "./denial.js";

/** How many named-port warnings one policy gets before the rest are counted. */
const MAX_NAMED_PORT_WARNINGS = 5;

export const POLICY_FOR_PATH = `metadata.annotations["${ANNOTATION_POLICY_FOR}"]`;

const LABEL_KEY_RULE = "optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.'";
const LABEL_VALUE_RULE = "at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends";
const PORT_NAME_RULE = "at most 15 lower-case letters, digits and '-', with a letter, no '-' at either end or twice in a row";

export function admitPolicy(request: AdmissionRequest, env: AdmissionEnv, _endpoint: Endpoint): Decision {
  return request.operation === "CREATE" || request.operation === "UPDATE" ? admitWrite(request, env) : ALLOW;
}

function admitWrite(request: AdmissionRequest, env: AdmissionEnv): Decision {
  const object = request.object;
  const metadata = (object as { metadata?: { name?: unknown; namespace?: unknown; generateName?: unknown; annotations?: unknown } } | null)?.metadata;
  const namespace = request.namespace || (typeof metadata?.namespace === "string" ? metadata.namespace : "") || "default";
  const rawName = request.name || (typeof metadata?.name === "string" ? metadata.name : "");
  const generated = `${typeof metadata?.generateName === "string" ? metadata.generateName : ""}<generated>`;
  const who = `MultiNetworkPolicy ${objectKey(namespace, rawName || generated)}`;

  // The stored object is compared as it is, unread: it may predate a rule the schema now enforces.
  const old = request.operation === "UPDATE" && isRecord(request.oldObject) ? request.oldObject : undefined;
  if (old && (metadata as { deletionTimestamp?: unknown } | undefined)?.deletionTimestamp) return ALLOW; // finalizers being removed
  const policyFor = policyForOf(object);
  const spec = isRecord(object) ? object.spec : undefined;
  const policyForChanged = !old || policyForOf(old) !== policyFor;
  const specChanged = !old || canonicalJson(old.spec) !== canonicalJson(spec);
  if (!policyForChanged && !specChanged) return ALLOW;

  // Every problem in one pass: each part is read on its own, so that a wrong type or enum value in
  // one place does not hide the problems of the others (as the NAD validation does).
  const problems = [
    ...parsePart(PolicyShell, object, [], []).problems,
    ...(policyForChanged && (policyFor === undefined || typeof policyFor === "string") ? checkPolicyFor(policyFor) : []),
    ...(specChanged ? checkSpec(spec) : []),
  ];
  if (problems.length > 0) return deny("invalid-policy", explainObjectProblems(who, problems));
  const parsed = MultiNetworkPolicy.safeParse(object);
  if (!parsed.success) {
    // Only a part left unjudged (unchanged on UPDATE) can fail here; when everything was judged, the
    // whole schema has the last word.
    return policyForChanged && specChanged ? deny("invalid-policy", explainObjectProblems(who, schemaProblems(parsed.error, object, []))) : ALLOW;
  }
  // The engine reads namespace and name from the object; the API server's say wins.
  const policy: MultiNetworkPolicy = { ...parsed.data, metadata: { ...parsed.data.metadata, namespace, name: rawName } };
  return { ...ALLOW, warnings: policyWarnings(policy, env).map(clampWarning) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function policyForOf(object: unknown): unknown {
  const annotations = isRecord(object) && isRecord(object.metadata) ? object.metadata.annotations : undefined;
  return isRecord(annotations) ? annotations[ANNOTATION_POLICY_FOR] : undefined;
}

/** How a value reads in a message: strings quoted, containers by their kind. */
function describe(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object" && value !== null) return "an object";
  return JSON.stringify(value);
}

// ---- the schema: fields whose type or enum is wrong -------------------------------------------

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/** What an enum field must be: its noun and its values. */
const ENUM_FIELDS: Record<string, readonly [string, string]> = {
  operator: ["an operator", "In, NotIn, Exists or DoesNotExist"],
  protocol: ["a protocol", "TCP, UDP or SCTP"],
  policyTypes: ["a policy type", "Ingress or Egress"],
};

/** Zod's issues, reworded for the enum and port fields people get wrong; the rest as zod says. */
function schemaProblems(error: z.ZodError, value: unknown, prefix: readonly PropertyKey[]): Problem[] {
  return error.issues.map((issue) => {
    const path = [...prefix, ...issue.path];
    const found = valueAt(value, issue.path);
    const last = path[path.length - 1];
    const parent = path[path.length - 2];
    // policyTypes is a list: its items are the enum, not the field itself.
    const field = typeof last === "number" && parent === "policyTypes" ? parent : last !== "policyTypes" ? last : undefined;
    const known = typeof field === "string" ? ENUM_FIELDS[field] : undefined;
    let message = issue.message;
    if (known) message = found === undefined ? `is missing; use ${known[1]}` : `${describe(found)} is not ${known[0]}; use ${known[1]}`;
    else if (last === "port") message = `must be a port number (1-65535) or a port name, not ${describe(found)}`;
    else if (last === "endPort") message = `must be a port number (1-65535), not ${describe(found)}`;
    else if (found === undefined) message = "is missing";
    return { code: "policy.schema", path: joinPath("", path), message };
  });
}

/** One part of the policy read with its own schema: its value, or the problems that name where it is wrong. */
function parsePart<T>(schema: z.ZodType<T>, value: unknown, path: readonly PropertyKey[], problems: Problem[]): { value?: T; problems: Problem[] } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { value: parsed.data, problems };
  problems.push(...schemaProblems(parsed.error, value, path));
  return { problems };
}

/** The policy without its spec, which checkSpec reads part by part (objects and lists first, then each element). */
const PolicyShell = z.looseObject({ apiVersion: z.string().optional(), kind: z.literal("MultiNetworkPolicy").optional(), metadata: ObjectMeta });
const AnObject = z.record(z.string(), z.unknown());
const AList = z.array(z.unknown()).nullish();

/** A list field of an object read on its own: its elements, or none when it is absent or not a list (a problem then). */
function listAt(object: Record<string, unknown>, key: string, at: readonly PropertyKey[], problems: Problem[]): readonly unknown[] {
  return parsePart(AList, object[key], [...at, key], problems).value ?? [];
}

// ---- policy-for -------------------------------------------------------------------------------

/** A comma list of `name` or `namespace/name`, each a DNS-1123 label; blanks around items tolerated. */
function checkPolicyFor(value: string | undefined): Problem[] {
  const problem = (message: string): Problem => ({ code: "policy.policy-for", path: POLICY_FOR_PATH, message });
  const hint = `name the NADs the policy guards, e.g. "lan" or "tenant-a/lan", or it applies to nothing`;
  if (value === undefined) return [problem(`is missing; ${hint}`)];
  if (value.trim() === "") return [problem(`is empty; ${hint}`)];
  const problems: Problem[] = [];
  value.split(",").forEach((raw, i) => {
    const item = raw.trim();
    const parts = item.split("/").map((part) => part.trim());
    if (item === "") problems.push(problem(`element ${i + 1} is empty; remove the extra ','`));
    else if (parts.length > 2 || !parts.every(isDns1123Label)) {
      problems.push(problem(`"${item}" is not a NAD reference (name or namespace/name, each a DNS-1123 label)`));
    }
  });
  return problems;
}

// ---- the spec ---------------------------------------------------------------------------------

function checkSpec(raw: unknown): Problem[] {
  const problems: Problem[] = [];
  const spec = parsePart(AnObject, raw, ["spec"], problems).value;
  if (!spec) return problems;
  problems.push(...checkSelector(spec.podSelector, ["spec", "podSelector"]));
  const types = listAt(spec, "policyTypes", ["spec"], problems);
  types.forEach((type, i) => {
    const path = ["spec", "policyTypes", i];
    if (!parsePart(PolicyType, type, path, problems).value) return;
    if (types.indexOf(type) < i) problems.push({ code: "policy.policy-types", path: joinPath("", path), message: `"${String(type)}" is listed twice` });
  });
  listAt(spec, "ingress", ["spec"], problems).forEach((rule, i) => problems.push(...checkRule(rule, ["spec", "ingress", i], "from")));
  listAt(spec, "egress", ["spec"], problems).forEach((rule, i) => problems.push(...checkRule(rule, ["spec", "egress", i], "to")));
  return problems;
}

/** metav1.LabelSelector validation: label syntax, and values present exactly where the operator needs them. */
function checkSelector(raw: unknown, at: readonly PropertyKey[]): Problem[] {
  if (raw == null) return [];
  const problems: Problem[] = [];
  const selector = parsePart(AnObject, raw, at, problems).value;
  if (!selector) return problems;
  const path = joinPath("", at);
  const add = (where: string, message: string): number => problems.push({ code: "policy.selector", path: where, message });
  const matchLabels = parsePart(LabelSelector.shape.matchLabels, selector.matchLabels, [...at, "matchLabels"], problems).value;
  for (const [key, value] of Object.entries(matchLabels ?? {})) {
    if (!isQualifiedName(key)) add(`${path}.matchLabels`, `"${key}" is not a label key (${LABEL_KEY_RULE})`);
    else if (!isLabelValue(value)) add(`${path}.matchLabels["${key}"]`, `"${value}" is not a label value (${LABEL_VALUE_RULE})`);
  }
  listAt(selector, "matchExpressions", at, problems).forEach((rawExpr, i) => {
    const expr = parsePart(LabelSelectorRequirement, rawExpr, [...at, "matchExpressions", i], problems).value;
    if (!expr) return;
    const where = `${path}.matchExpressions[${i}]`;
    const values = expr.values ?? [];
    if (!isQualifiedName(expr.key)) add(`${where}.key`, `"${expr.key}" is not a label key (${LABEL_KEY_RULE})`);
    if ((expr.operator === "In" || expr.operator === "NotIn") && values.length === 0) add(`${where}.values`, `operator ${expr.operator} needs at least one value`);
    if ((expr.operator === "Exists" || expr.operator === "DoesNotExist") && values.length > 0) add(`${where}.values`, `must be empty for operator ${expr.operator}`);
    values.forEach((value, j) => {
      if (!isLabelValue(value)) add(`${where}.values[${j}]`, `"${value}" is not a label value (${LABEL_VALUE_RULE})`);
    });
  });
  return problems;
}

function checkRule(raw: unknown, at: readonly PropertyKey[], field: "from" | "to"): Problem[] {
  const problems: Problem[] = [];
  const rule = parsePart(AnObject, raw, at, problems).value;
  if (!rule) return problems;
  listAt(rule, field, at, problems).forEach((peer, j) => problems.push(...checkPeer(peer, [...at, field, j], field)));
  listAt(rule, "ports", at, problems).forEach((port, k) => problems.push(...checkPort(port, [...at, "ports", k])));
  return problems;
}

function checkPeer(raw: unknown, at: readonly PropertyKey[], field: "from" | "to"): Problem[] {
  const problems: Problem[] = [];
  const peer = parsePart(AnObject, raw, at, problems).value;
  if (!peer) return problems;
  const path = joinPath("", at);
  const selectors = (["podSelector", "namespaceSelector"] as const).filter((key) => peer[key] != null);
  if (peer.ipBlock != null && selectors.length > 0) {
    problems.push({ code: "policy.peer", path, message: `ipBlock cannot be combined with ${selectors.join(" and ")} in one peer; make them separate peers` });
  }
  if (peer.ipBlock == null && selectors.length === 0) {
    const every = field === "from" ? "source" : "destination";
    problems.push({ code: "policy.peer", path, message: `sets none of podSelector, namespaceSelector, ipBlock; to allow every ${every}, leave out ${field}` });
  }
  for (const key of selectors) problems.push(...checkSelector(peer[key], [...at, key]));
  if (peer.ipBlock != null) {
    const block = parsePart(IPBlock, peer.ipBlock, [...at, "ipBlock"], problems).value;
    if (block) problems.push(...checkIpBlock(block, `${path}.ipBlock`));
  }
  return problems;
}

/** cidr a CIDR; each except an address or CIDR of the same family, strictly inside cidr. */
function checkIpBlock(block: { cidr: string; except?: string[] | null | undefined }, path: string): Problem[] {
  const cidr = parseCidr(block.cidr);
  if (!cidr) return [{ code: "policy.ip-block", path: `${path}.cidr`, message: `"${block.cidr}" is not a CIDR (address/prefix, e.g. "198.18.0.0/16")` }];
  const problems: Problem[] = [];
  (block.except ?? []).forEach((text, k) => {
    const add = (message: string): number => problems.push({ code: "policy.ip-block", path: `${path}.except[${k}]`, message });
    const except = parseCidr(text, { allowBare: true });
    const family = (f: number): string => (f === 4 ? "IPv4" : "IPv6");
    if (!except) add(`"${text}" is not an address or CIDR`);
    else if (except.family !== cidr.family) add(`${text} is ${family(except.family)} but cidr ${block.cidr} is ${family(cidr.family)}`);
    else if (except.prefix > cidr.prefix && cidrContains(cidr, except)) return;
    else if (cidrContains(except, cidr)) add(`${text} covers all of cidr ${block.cidr}; an except must be strictly inside it`);
    else add(`${text} is not inside cidr ${block.cidr}`);
  });
  return problems;
}

/** IANA_SVC_NAME (RFC 6335), as kube-apiserver checks named ports. */
export function isPortName(name: string): boolean {
  return name.length >= 1 && name.length <= 15 && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(name) && /[a-z]/.test(name);
}

/** Each field read on its own (a wrong protocol does not hide a port out of range); the range checks need both numbers read. */
function checkPort(raw: unknown, at: readonly PropertyKey[]): Problem[] {
  const problems: Problem[] = [];
  const port = parsePart(AnObject, raw, at, problems).value;
  if (!port) return problems;
  parsePart(PolicyPort.shape.protocol, port.protocol, [...at, "protocol"], problems);
  const value = parsePart(PolicyPort.shape.port, port.port, [...at, "port"], problems);
  const endPort = parsePart(PolicyPort.shape.endPort, port.endPort, [...at, "endPort"], problems);
  if (!("value" in value) || !("value" in endPort)) return problems;
  return [...problems, ...checkPortRange(value.value, endPort.value, joinPath("", at))];
}

function checkPortRange(value: PolicyPort["port"], endPort: PolicyPort["endPort"], path: string): Problem[] {
  const add = (field: string, message: string): Problem[] => [{ code: "policy.port", path: `${path}.${field}`, message }];
  if (value == null) return endPort == null ? [] : add("endPort", "needs a numeric port; set port to the first port of the range");
  if (typeof value === "string") {
    if (/^\d+$/.test(value)) return add("port", `"${value}" is a string, so a port name, and names need a letter; write ${value} without quotes`);
    if (!isPortName(value)) return add("port", `"${value}" is not a port name (${PORT_NAME_RULE})`);
    return endPort == null ? [] : add("endPort", `needs a numeric port, not the named port "${value}"`);
  }
  if (value < 1 || value > 65535) return add("port", `${value} is outside 1-65535`);
  if (endPort == null) return [];
  if (endPort < 1 || endPort > 65535) return add("endPort", `${endPort} is outside 1-65535`);
  return endPort < value ? add("endPort", `${endPort} is less than port ${value}`) : [];
}

// ---- warnings: what the policy means ----------------------------------------------------------

/** The warnings of a valid policy, in the order: NADs, pods selected, ignored rules, named ports, peers. */
function policyWarnings(raw: MultiNetworkPolicy, env: AdmissionEnv): string[] {
  const key = objectKey(raw.metadata.namespace!, raw.metadata.name ?? "");
  // The engine's model of a snapshot holding only this policy: what it selects and how it reads.
  const model = buildModel({ ...env.snapshot, policies: new Map([[key, raw]]) }, env.config);
  const policy = model.policies.get(key)!;
  const selected = model.selectedPods(key);
  return [
    ...nadWarnings(raw, env),
    ...(selected.size === 0 ? [`spec.podSelector selects no pod in ${policy.namespace} at the moment; the policy isolates nothing yet`] : []),
    ...ignoredRuleWarnings(raw),
    ...namedPortWarnings(policy, model, selected),
    ...podSelectorAloneWarning(raw),
  ];
}

/** Each policy-for NAD that does not exist, or that the enforcer does not handle (the engine's `unmanagedReason`). */
function nadWarnings(raw: MultiNetworkPolicy, env: AdmissionEnv): string[] {
  const plugins = new Set(env.config.enforcement.networkPlugins);
  const warnings: string[] = [];
  for (const nadKey of parsePolicyFor(annotationsOf(raw.metadata)[ANNOTATION_POLICY_FOR], raw.metadata.namespace!)) {
    const nad = env.snapshot.nads.get(nadKey);
    const type = nad && nadCniInfo(nad).types[0];
    if (!nad) warnings.push(`NAD ${nadKey} does not exist yet; the policy applies to it once it is created`);
    else if (type === undefined) warnings.push(`NAD ${nadKey}: CNI type unknown (empty or unreadable config); nothing will be enforced on it`);
    else if (!plugins.has(type)) warnings.push(`NAD ${nadKey}: CNI type ${type} is not in enforcement.networkPlugins; nothing will be enforced on it`);
  }
  return warnings;
}

/** Rules of a direction that policyTypes leaves out are ignored, as for NetworkPolicy. */
function ignoredRuleWarnings(raw: MultiNetworkPolicy): string[] {
  const types = raw.spec.policyTypes;
  if (!types || types.length === 0) return [];
  const warnings: string[] = [];
  if ((raw.spec.ingress ?? []).length > 0 && !types.includes("Ingress")) warnings.push("spec.ingress: ignored, since spec.policyTypes does not list Ingress");
  if ((raw.spec.egress ?? []).length > 0 && !types.includes("Egress")) warnings.push("spec.egress: ignored, since spec.policyTypes does not list Egress");
  return warnings;
}

/**
 * Named ports that no pod of the set they resolve against defines (as NetworkPolicy resolves them:
 * on the target pod for ingress, on each destination pod for egress). Ingress is skipped when the
 * policy selects no pod: that warning says it already.
 */
function namedPortWarnings(policy: Policy, model: PolicyModel, selected: ReadonlySet<string>): string[] {
  const found: string[] = [];
  const check = (direction: Direction, pods: (rule: Rule) => Iterable<PodInfo> | "ipBlocks"): void => {
    policy[direction]?.forEach((rule, i) => {
      rule.ports?.forEach((port, k) => {
        if (port.kind !== "named") return;
        const portKey = namedPortKey(port.name, port.protocol);
        const candidates = pods(rule);
        const at = `spec.${direction}[${i}].ports[${k}]`;
        if (candidates === "ipBlocks") found.push(`${at}: named port "${port.name}" never matches an ipBlock destination; nothing will match it`);
        else if (!someDefines(candidates, portKey)) {
          const whose = direction === "ingress" ? "selected" : "destination";
          found.push(`${at}: no ${whose} pod defines port "${port.name}" (${port.protocol}); nothing will match it`);
        }
      });
    });
  };
  if (selected.size > 0) check("ingress", () => [...selected].map((podKey) => model.pods.get(podKey)!));
  check("egress", (rule) => (rule.peers?.every((peer) => peer.kind === "ipBlock") ? "ipBlocks" : destinationPods(policy, rule, model)));
  if (found.length <= MAX_NAMED_PORT_WARNINGS) return found;
  return [...found.slice(0, MAX_NAMED_PORT_WARNINGS), `and ${found.length - MAX_NAMED_PORT_WARNINGS} more named ports that no pod defines`];
}

function someDefines(pods: Iterable<PodInfo>, portKey: string): boolean {
  for (const pod of pods) if (pod.namedPorts.has(portKey)) return true;
  return false;
}

/**
 * The pods an egress rule's peers select, whatever their networks or phase (a pod that defines the
 * port but is not yet attached is still a sign the name is right). A local stand-in for the
 * engine's peer sets, which the model does not expose per rule and which hold only attached,
 * Running pods. No peers: every pod.
 */
function* destinationPods(policy: Policy, rule: Rule, model: PolicyModel): Generator<PodInfo> {
  const namespaceLabels = (ns: string): Record<string, string> => model.snapshot.namespaces.get(ns)?.metadata.labels ?? {};
  for (const pod of model.pods.values()) {
    if (pod.hostNetwork) continue;
    const chosen =
      !rule.peers ||
      rule.peers.some(
        (peer) =>
          peer.kind === "pods" &&
          (peer.namespaceSelector ? peer.namespaceSelector.matches(namespaceLabels(pod.namespace)) : pod.namespace === policy.namespace) &&
          (!peer.podSelector || peer.podSelector.matches(pod.labels)),
      );
    if (chosen) yield pod;
  }
}

/** Once per policy: the first peer with podSelector alone, which matches only the policy's own namespace. */
function podSelectorAloneWarning(raw: MultiNetworkPolicy): string[] {
  const peers: [string, PolicyPeer][] = [
    ...(raw.spec.ingress ?? []).flatMap((rule, i) => (rule.from ?? []).map((peer, j): [string, PolicyPeer] => [`spec.ingress[${i}].from[${j}]`, peer])),
    ...(raw.spec.egress ?? []).flatMap((rule, i) => (rule.to ?? []).map((peer, j): [string, PolicyPeer] => [`spec.egress[${i}].to[${j}]`, peer])),
  ];
  const first = peers.find(([, peer]) => peer.podSelector != null && peer.namespaceSelector == null && peer.ipBlock == null);
  if (!first) return [];
  return [`${first[0]}: podSelector alone matches ${raw.metadata.namespace} only; add namespaceSelector: {} for all namespaces`];
}
