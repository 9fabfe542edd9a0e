// The pod annotation `k8s.v1.cni.cncf.io/networks`: which secondary networks a pod asks for.
// Faithful to the NPWG multi-net spec v1.3 (section 4.1.2.1) plus the Multus `@ifname` extension,
// and to what Multus itself accepts (pkg/k8sclient parsePodNetworkAnnotation), except where Multus
// only fails later at CNI time: there nadguard rejects at admission with a message that says why.
//
// Two forms:
// - comma form: `name`, `ns/name`, `name@ifname`, `ns/name@ifname`, separated by commas; each
//   element and, as in Multus, each part around '/' and '@' is trimmed of whitespace. This is the
//   admission hot path: a hand-written scanner, no zod, no JSON, no regex built per call.
// - JSON form (the value starts with `[`, `{` or `"` after whitespace; Multus looks for any of
//   these three characters): a list of objects with the spec keys. Keys containing '.' are custom
//   keys, kept in `extra` and otherwise ignored. As in Go's encoding/json (which Multus uses),
//   `null`, `""` and `[]` mean "absent" for optional keys.
//
// An empty value ("") is no network at all, as in Multus (NoK8sNetworkError, not an error).
// Every problem of an annotation is reported, not only the first; each names the element by its
// 1-based position and how it was written, e.g. `element 2 ("tenant-b/sriov@net1")`. Past
// MAX_KEPT_PROBLEMS problems are only counted (`omittedProblems`), not written out: an annotation
// of 128,000 broken elements fits in the API server's 256 KiB and would otherwise cost a message
// each.
//
// Problem codes (stable; `path` is the annotation path, plus `[i]` / `[i].key` in the JSON form):
// | code                               | rule broken                                                  |
// |------------------------------------|--------------------------------------------------------------|
// | selection.empty-element            | `a,,b`, leading/trailing comma, value of only commas/spaces  |
// | selection.too-many-slashes         | more than one '/' in a comma element                         |
// | selection.too-many-ats             | more than one '@' in a comma element                         |
// | selection.bad-namespace            | namespace not a DNS-1123 label (or empty before '/')         |
// | selection.bad-name                 | network name not a DNS-1123 label (or empty)                 |
// | selection.missing-name             | JSON element without "name" (or with "name": "")             |
// | selection.bad-interface            | interface name Linux rejects; comma form: Multus's rule too  |
// | selection.duplicate-interface      | two elements get the same interface (after automatic naming) |
// | selection.multiple-default-routes  | more than one element carries "default-route"                |
// | selection.ips-with-claim           | "ips" together with "ipam-claim-reference"                   |
// | selection.bad-ip                   | "ips" entry not IP/CIDR; "default-route" or hostIP not an IP |
// | selection.bad-mac                  | "mac" not a 6-byte MAC                                       |
// | selection.bad-infiniband-guid      | "infiniband-guid" not 8 colon-separated bytes                |
// | selection.bad-port                 | hostPort/containerPort missing or outside 1-65535            |
// | selection.bad-protocol             | portMappings protocol not TCP, UDP or SCTP (any case)        |
// | selection.bad-bandwidth            | bandwidth value negative, fractional, or burst over 4 GB     |
// | selection.burst-without-rate       | ingressBurst/egressBurst set, its rate not                   |
// | selection.rate-without-burst       | ingressRate/egressRate set, its burst not                    |
// | selection.invalid-json             | the value starts like JSON but does not parse                |
// | selection.not-a-list               | valid JSON that is not a list                                |
// | selection.not-an-object            | a JSON list element that is not an object                    |
// | selection.unknown-key              | a key outside the spec without a '.'                         |
// | selection.wrong-type               | a spec key with the wrong JSON type                          |
// | selection.multiple-default-networks| default-network annotation naming more than one network      |
// The bandwidth rules are the bandwidth CNI plugin's (validateRateAndBurst): it fails the pod's
// sandbox for a rate without burst as much as for a burst without rate.
import { type Problem, type ProblemCode, fail, joinPath, ok } from "../api/errors.js";
import { ANNOTATION_NETWORKS, objectKey } from "../api/objects.js";
import { cutText } from "../api/text.js";
import { isInfinibandGuid, isMac, parseCidr, parseIp } from "./addresses.js";
import { findDuplicateInterfaces, interfaceNameFor } from "./interfaces.js";
import { interfaceNameProblem, isDns1123Label } from "./names.js";

export const NETWORKS_ANNOTATION_PATH = `metadata.annotations["${ANNOTATION_NETWORKS}"]`;

/** How the annotation was written: decides how `written` is quoted in messages. */
export type SelectionForm = "comma" | "json";

/** A `portMappings` entry (CNI portmap runtime config). Ports are 1-65535. */
export interface PortMapping {
  readonly hostPort: number;
  readonly containerPort: number;
  /** As written (TCP, UDP or SCTP in any case). */
  readonly protocol?: string;
  readonly hostIP?: string;
}

/** The `bandwidth` object (CNI bandwidth runtime config): rates in bit/s, bursts in bits; absent means 0. */
export interface Bandwidth {
  readonly ingressRate?: number;
  readonly ingressBurst?: number;
  readonly egressRate?: number;
  readonly egressBurst?: number;
}

/** One element of the annotation, resolved: the namespace is always filled in. */
export interface NetworkSelection {
  /** 0-based position in the annotation. */
  readonly index: number;
  /** The element as written, for messages: trimmed text (comma form) or compact JSON cut at 60 characters. */
  readonly written: string;
  readonly form: SelectionForm;
  readonly namespace: string;
  readonly name: string;
  /** False when the namespace came from the caller (the pod's namespace). */
  readonly namespaceExplicit: boolean;
  readonly interfaceRequest?: string;
  /** IPs or CIDRs as written (`10.1.1.5/24` keeps its host part). */
  readonly ips?: readonly string[];
  readonly mac?: string;
  /** Gateway IPs. */
  readonly defaultRoute?: readonly string[];
  readonly infinibandGuid?: string;
  readonly cniArgs?: Readonly<Record<string, unknown>>;
  readonly portMappings?: readonly PortMapping[];
  readonly bandwidth?: Bandwidth;
  readonly ipamClaimReference?: string;
  /** Custom keys (containing '.'), kept and otherwise ignored. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** A selection with what every component derives from it, computed once. */
export interface Attachment {
  readonly selection: NetworkSelection;
  /** `namespace/name` of the NetworkAttachmentDefinition. */
  readonly key: string;
  /** The interface inside the pod: requested, or `net<index+1>` as Multus names it. */
  readonly interfaceName: string;
}

/** Elements of an annotation before cross-element rules that only the networks annotation has. */
export interface ParsedElements {
  /** Elements whose interface is known (valid or not requested), in order; others are left out. */
  readonly selections: NetworkSelection[];
  /** How many elements the annotation has, broken ones included. */
  readonly elements: number;
  /** The first MAX_KEPT_PROBLEMS problems. */
  readonly problems: Problem[];
  /** Problems found beyond MAX_KEPT_PROBLEMS, counted only. */
  readonly omittedProblems: number;
}

/** Problems written out per annotation; more are counted. A denial lists fewer still. */
export const MAX_KEPT_PROBLEMS = 100;

/** A parse result; a failure keeps at most MAX_KEPT_PROBLEMS problems and counts the others (absent when none). */
export type SelectionResult<T> = { ok: true; value: T } | { ok: false; error: Problem[]; omittedProblems?: number };

/** The failure of a parse that kept `problems` and counted `omitted` more. */
export function selectionFailure(problems: Problem[], omitted: number): { ok: false; error: Problem[]; omittedProblems?: number } {
  return omitted > 0 ? { ok: false, error: problems, omittedProblems: omitted } : fail(problems);
}

/**
 * Parses the networks annotation. Names without a namespace resolve to `podNamespace` (never
 * `default`). Returns every problem found; `""` and `[]` give an empty list.
 */
export function parseNetworkSelections(annotation: string, podNamespace: string): SelectionResult<Attachment[]> {
  const parsed = parseSelectionElements(annotation, podNamespace, NETWORKS_ANNOTATION_PATH);
  const { selections, problems } = parsed;
  let omitted = parsed.omittedProblems;
  const attachments: Attachment[] = [];
  // One name per parsed selection (broken elements are not in `selections`).
  const names: string[] = [];
  for (const selection of selections) {
    const interfaceName = interfaceNameFor(selection.index, selection.interfaceRequest);
    names.push(interfaceName);
    attachments.push({ selection, key: objectKey(selection.namespace, selection.name), interfaceName });
  }
  for (const [first, later] of findDuplicateInterfaces(names)) {
    if (problems.length < MAX_KEPT_PROBLEMS) problems.push(duplicateInterface(selections[first]!, selections[later]!, names[later]!, NETWORKS_ANNOTATION_PATH));
    else omitted++;
  }
  return problems.length > 0 ? selectionFailure(problems, omitted) : ok(attachments);
}

/**
 * Parses the elements of a selection-style annotation (the networks annotation or Multus's
 * default-network annotation, whose `path` is given) with the per-element rules and the
 * default-route rule, without interface naming. Never throws.
 */
export function parseSelectionElements(annotation: string, defaultNamespace: string, path: string): ParsedElements {
  const ctx: Context = { defaultNamespace, path, problems: [], omitted: 0, selections: [], defaultRouteOwner: undefined };
  let elements = 0;
  const first = annotation.search(NON_SPACE);
  const lead = first < 0 ? "" : annotation.charAt(first);
  if (lead === "[" || lead === "{" || lead === '"') elements = parseJsonList(annotation, ctx);
  else if (annotation.length === 0) elements = 0;
  else if (BLANK.test(annotation)) ctx.problems.push(blankProblem(annotation, path));
  else elements = parseCommaList(annotation, ctx);
  return { selections: ctx.selections, elements, problems: ctx.problems, omittedProblems: ctx.omitted };
}

/** `element 2 ("tenant-b/sriov@net1")` or `element 2 ({"name":"sriov"})`: how messages name an element. */
export function describeElement(index: number, written: string, form: SelectionForm): string {
  return `element ${index + 1} (${form === "json" ? written : JSON.stringify(cutText(written, PREVIEW))})`;
}

/** {@link describeElement} of a parsed selection. */
export function describeSelection(selection: NetworkSelection): string {
  return describeElement(selection.index, selection.written, selection.form);
}

// ---------------------------------------------------------------------------------------------
// Shared machinery

const NON_SPACE = /\S/;
const BLANK = /^[\s,]*$/;
/** Longest rendering of a value inside a message (warnings are cut past 256). */
const PREVIEW = 60;
/** Longest rendering of a JSON element's identifying keys: two 63-character labels and an interface fit. */
const ELEMENT_PREVIEW = 200;
const DNS_LABEL_RULE = "lower-case letters, digits and '-', starting and ending with a letter or digit";

type Draft = { -readonly [K in keyof NetworkSelection]: NetworkSelection[K] };
type JsonObject = Record<string, unknown>;

interface Context {
  readonly defaultNamespace: string;
  readonly path: string;
  readonly problems: Problem[];
  /** Problems past MAX_KEPT_PROBLEMS: counted, their messages never built. */
  omitted: number;
  readonly selections: NetworkSelection[];
  /** The first element with a non-empty "default-route". */
  defaultRouteOwner: Scope | undefined;
}

/** One element being parsed; problems found in it are reported through it. */
interface Scope {
  readonly ctx: Context;
  readonly index: number;
  readonly written: string;
  readonly form: SelectionForm;
  /** Set when the interface request is invalid: the element's interface is then unknown. */
  interfaceUnknown: boolean;
}

function report(scope: Scope, code: ProblemCode, segments: readonly PropertyKey[], message: string): void {
  if (scope.ctx.problems.length >= MAX_KEPT_PROBLEMS) {
    scope.ctx.omitted++;
    return;
  }
  const path = scope.form === "json" ? joinPath(scope.ctx.path, [scope.index, ...segments]) : scope.ctx.path;
  scope.ctx.problems.push({ code, path, message: `${describeElement(scope.index, scope.written, scope.form)} ${message}` });
}

function quote(value: string): string {
  return JSON.stringify(cutText(value, PREVIEW));
}

/** Why `value` is not a DNS-1123 label, phrased to follow "which", or undefined. */
function labelProblem(value: string): string | undefined {
  if (isDns1123Label(value)) return undefined;
  if (value.length > 63) return `is ${value.length} characters long; a DNS-1123 label has at most 63`;
  if (isDns1123Label(value.toLowerCase())) return "has upper-case letters; Kubernetes names are lower-case";
  return `is not a DNS-1123 label (${DNS_LABEL_RULE})`;
}

function blankProblem(annotation: string, path: string): Problem {
  const what = annotation.includes(",") ? "only commas and whitespace" : "only whitespace";
  return {
    code: "selection.empty-element",
    path,
    message: `names no network, ${what}; list networks as name, namespace/name or namespace/name@interface, or remove the annotation`,
  };
}

function duplicateInterface(first: NetworkSelection, later: NetworkSelection, name: string, path: string): Problem {
  const how = later.interfaceRequest === undefined ? " (automatic, from its position)" : "";
  const segments = later.interfaceRequest === undefined ? [later.index] : [later.index, "interface"];
  return {
    code: "selection.duplicate-interface",
    path: later.form === "json" ? joinPath(path, segments) : path,
    message:
      `${describeSelection(later)} gets interface ${quote(name)}${how}, the same as ${describeSelection(first)}; ` +
      "request a different interface for one of them",
  };
}

// ---------------------------------------------------------------------------------------------
// Comma form

function parseCommaList(text: string, ctx: Context): number {
  let index = 0;
  let start = 0;
  for (;;) {
    const comma = text.indexOf(",", start);
    const last = comma < 0;
    const written = text.slice(start, last ? text.length : comma).trim();
    if (written.length === 0) reportEmptyElement(ctx, index, last);
    else parseCommaElement(written, index, ctx);
    index++;
    if (last) return index;
    start = comma + 1;
  }
}

function reportEmptyElement(ctx: Context, index: number, last: boolean): void {
  const which = index === 0 ? "leading" : last ? "trailing" : "extra";
  const scope: Scope = { ctx, index, written: "", form: "comma", interfaceUnknown: true };
  report(scope, "selection.empty-element", [], `is empty; remove the ${which} comma`);
}

function parseCommaElement(written: string, index: number, ctx: Context): void {
  const scope: Scope = { ctx, index, written, form: "comma", interfaceUnknown: false };
  const slash = written.indexOf("/");
  // Multus splits at '/' first: an '@' before the '/' belongs to the namespace (and fails there).
  const at = written.indexOf("@", slash + 1);
  let broken = false;
  if (slash >= 0 && written.indexOf("/", slash + 1) >= 0) {
    report(scope, "selection.too-many-slashes", [], "has more than one '/'; write name, namespace/name or namespace/name@interface");
    broken = true;
  }
  if (at >= 0 && written.indexOf("@", at + 1) >= 0) {
    report(scope, "selection.too-many-ats", [], "has more than one '@'; write name@interface or namespace/name@interface");
    broken = true;
  }
  if (broken) return;
  const draft: Draft = { index, written, form: "comma", namespace: ctx.defaultNamespace, name: "", namespaceExplicit: false };
  if (slash >= 0) checkCommaNamespace(scope, draft, written.slice(0, slash).trim());
  checkCommaName(scope, draft, written.slice(slash + 1, at < 0 ? written.length : at).trim(), at >= 0);
  if (at >= 0) checkCommaInterface(scope, draft, written.slice(at + 1).trim());
  if (!scope.interfaceUnknown) ctx.selections.push(draft);
}

function checkCommaNamespace(scope: Scope, draft: Draft, namespace: string): void {
  draft.namespace = namespace;
  draft.namespaceExplicit = true;
  if (namespace.length === 0) {
    report(scope, "selection.bad-namespace", [], "has an empty namespace before '/'; write name or namespace/name");
    return;
  }
  const problem = labelProblem(namespace);
  if (problem) report(scope, "selection.bad-namespace", [], `has namespace ${quote(namespace)}, which ${problem}`);
}

function checkCommaName(scope: Scope, draft: Draft, name: string, hasAt: boolean): void {
  draft.name = name;
  if (name.length === 0) {
    const where = hasAt ? " before '@'" : "";
    report(scope, "selection.bad-name", [], `has an empty network name${where}; write name, namespace/name or namespace/name@interface`);
    return;
  }
  const problem = labelProblem(name);
  if (problem) report(scope, "selection.bad-name", [], `names network ${quote(name)}, which ${problem}`);
}

function checkCommaInterface(scope: Scope, draft: Draft, name: string): void {
  scope.interfaceUnknown = true;
  if (name.length === 0) {
    report(scope, "selection.bad-interface", [], "has an empty interface name after '@'; remove the '@' or name the interface");
    return;
  }
  const problem = interfaceNameProblem(name);
  if (problem) {
    report(scope, "selection.bad-interface", [], `requests interface ${quote(name)}, which ${problem}`);
    return;
  }
  // Multus checks the '@' part against the DNS-1123 label pattern too (parsePodNetworkObjectName).
  if (!isDns1123Label(name)) {
    report(
      scope,
      "selection.bad-interface",
      [],
      `requests interface ${quote(name)}, which Multus rejects in the comma form (${DNS_LABEL_RULE}); ` +
        'request it with "interface" in the JSON form',
    );
    return;
  }
  scope.interfaceUnknown = false;
  draft.interfaceRequest = name;
}

// ---------------------------------------------------------------------------------------------
// JSON form

function parseJsonList(text: string, ctx: Context): number {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    ctx.problems.push({
      code: "selection.invalid-json",
      path: ctx.path,
      message: `is not valid JSON (${(error as Error).message}); the JSON form is a list of objects, e.g. [{"name":"macvlan-conf"}]`,
    });
    return 0;
  }
  if (!Array.isArray(json)) {
    ctx.problems.push({
      code: "selection.not-a-list",
      path: ctx.path,
      message: `is ${typeName(json)} in JSON, not a list; the JSON form is a list of objects, e.g. [{"name":"macvlan-conf"}]`,
    });
    return 0;
  }
  for (let index = 0; index < json.length; index++) parseJsonElement(json[index], index, ctx);
  return json.length;
}

function parseJsonElement(value: unknown, index: number, ctx: Context): void {
  const scope: Scope = { ctx, index, written: previewElement(value), form: "json", interfaceUnknown: false };
  if (!isObject(value)) {
    report(scope, "selection.not-an-object", [], `is ${typeName(value)}, not an object; each element of the JSON list is an object with at least "name"`);
    return;
  }
  const draft: Draft = { index, written: scope.written, form: "json", namespace: ctx.defaultNamespace, name: "", namespaceExplicit: false };
  for (const key of Object.keys(value)) applyKey(scope, draft, key, value[key]);
  if (value.name === undefined || value.name === null || value.name === "") {
    const how = value.name === "" ? 'an empty "name"' : 'no "name"';
    report(scope, "selection.missing-name", [], `has ${how}; name the NetworkAttachmentDefinition to attach`);
  }
  if (draft.ips !== undefined && draft.ipamClaimReference !== undefined) {
    report(scope, "selection.ips-with-claim", [], 'has both "ips" and "ipam-claim-reference", which exclude each other (multi-net spec v1.3); keep one');
  }
  if (draft.defaultRoute !== undefined) checkDefaultRouteOwner(scope);
  if (!scope.interfaceUnknown) ctx.selections.push(draft);
}

function checkDefaultRouteOwner(scope: Scope): void {
  const owner = scope.ctx.defaultRouteOwner;
  if (owner === undefined) {
    scope.ctx.defaultRouteOwner = scope;
    return;
  }
  report(
    scope,
    "selection.multiple-default-routes",
    ["default-route"],
    `has "default-route", and so has ${describeElement(owner.index, owner.written, owner.form)}; only one element may carry it (multi-net spec v1.3)`,
  );
}

type KeyHandler = (scope: Scope, draft: Draft, value: unknown) => void;

// A Map, not an object literal: keys such as "constructor" must not find Object.prototype members.
const KEY_HANDLERS = new Map<string, KeyHandler>([
  ["name", applyName],
  ["namespace", applyNamespace],
  ["interface", applyInterface],
  ["ips", applyIps],
  ["mac", applyMac],
  ["default-route", applyDefaultRoute],
  ["infiniband-guid", applyInfinibandGuid],
  ["cni-args", applyCniArgs],
  ["portMappings", applyPortMappings],
  ["bandwidth", applyBandwidth],
  ["ipam-claim-reference", applyIpamClaimReference],
]);
const SPEC_KEYS = [...KEY_HANDLERS.keys()];
const SPEC_KEYS_LOWER = new Map(SPEC_KEYS.map((key) => [key.toLowerCase(), key]));

function applyKey(scope: Scope, draft: Draft, key: string, value: unknown): void {
  const handler = KEY_HANDLERS.get(key);
  if (handler === undefined) {
    if (key.includes(".")) ((draft.extra ??= {}) as Record<string, unknown>)[key] = value;
    else report(scope, "selection.unknown-key", [key], `has unknown key ${quote(key)}; ${unknownKeyHint(key)}`);
    return;
  }
  // null is Go's zero value: the key is absent ("name": null then fails as a missing name).
  if (value !== null) handler(scope, draft, value);
}

function unknownKeyHint(key: string): string {
  if (key === "interfaceRequest") return 'it is the pre-v3.2 Multus spelling of "interface": use "interface"';
  const known = SPEC_KEYS_LOWER.get(key.toLowerCase());
  if (known !== undefined) return `did you mean ${quote(known)}? keys are case-sensitive`;
  return `the keys are ${SPEC_KEYS.join(", ")}; a custom key must contain a '.'`;
}

/** The string at `segments`, `undefined` when it is "" (absent), or a wrong-type problem. */
function stringAt(scope: Scope, segments: readonly PropertyKey[], value: unknown): string | undefined {
  if (typeof value === "string") return value === "" ? undefined : value;
  wrongType(scope, segments, value, "a string");
  return undefined;
}

function wrongType(scope: Scope, segments: readonly PropertyKey[], value: unknown, expected: string): void {
  const label = keyLabel(segments);
  report(scope, "selection.wrong-type", segments, `has ${label}: ${preview(value)}, which is ${typeName(value)}; it must be ${expected}`);
}

function applyName(scope: Scope, draft: Draft, value: unknown): void {
  const name = stringAt(scope, ["name"], value);
  if (name === undefined) return;
  draft.name = name;
  const problem = labelProblem(name);
  if (problem) report(scope, "selection.bad-name", ["name"], `names network ${quote(name)}, which ${problem}`);
}

function applyNamespace(scope: Scope, draft: Draft, value: unknown): void {
  const namespace = stringAt(scope, ["namespace"], value);
  if (namespace === undefined) return;
  draft.namespace = namespace;
  draft.namespaceExplicit = true;
  const problem = labelProblem(namespace);
  if (problem) report(scope, "selection.bad-namespace", ["namespace"], `has namespace ${quote(namespace)}, which ${problem}`);
}

function applyInterface(scope: Scope, draft: Draft, value: unknown): void {
  if (typeof value !== "string") scope.interfaceUnknown = true;
  const name = stringAt(scope, ["interface"], value);
  if (name === undefined) return;
  const problem = interfaceNameProblem(name);
  if (problem) {
    scope.interfaceUnknown = true;
    report(scope, "selection.bad-interface", ["interface"], `requests interface ${quote(name)}, which ${problem}`);
    return;
  }
  draft.interfaceRequest = name;
}

/** The strings of a list at `key`; wrong types are reported. `undefined` when absent or empty. */
function stringList(scope: Scope, key: string, value: unknown): string[] | undefined {
  if (!Array.isArray(value)) {
    wrongType(scope, [key], value, "a list of strings");
    return undefined;
  }
  if (value.length === 0) return undefined;
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item === "string") out.push(item);
    else wrongType(scope, [key, i], item, "a string");
  }
  return out;
}

function applyIps(scope: Scope, draft: Draft, value: unknown): void {
  const ips = stringList(scope, "ips", value);
  if (ips === undefined) return;
  draft.ips = ips;
  for (let i = 0; i < ips.length; i++) {
    const ip = ips[i]!;
    if (parseCidr(ip, { allowBare: true }) === undefined) {
      report(scope, "selection.bad-ip", ["ips", i], `has "ips"[${i}]: ${quote(ip)}, which is not an IP address or CIDR`);
    }
  }
}

function applyDefaultRoute(scope: Scope, draft: Draft, value: unknown): void {
  const gateways = stringList(scope, "default-route", value);
  if (gateways === undefined) return;
  draft.defaultRoute = gateways;
  for (let i = 0; i < gateways.length; i++) {
    const gateway = gateways[i]!;
    if (parseIp(gateway) === undefined) {
      report(scope, "selection.bad-ip", ["default-route", i], `has "default-route"[${i}]: ${quote(gateway)}, which is not an IP address`);
    }
  }
}

function applyMac(scope: Scope, draft: Draft, value: unknown): void {
  const mac = stringAt(scope, ["mac"], value);
  if (mac === undefined) return;
  draft.mac = mac;
  if (!isMac(mac)) {
    report(scope, "selection.bad-mac", ["mac"], `has "mac": ${quote(mac)}, which is not a MAC address; write 6 hex bytes separated by ':' or '-', e.g. 02:00:5e:10:00:01`);
  }
}

function applyInfinibandGuid(scope: Scope, draft: Draft, value: unknown): void {
  const guid = stringAt(scope, ["infiniband-guid"], value);
  if (guid === undefined) return;
  draft.infinibandGuid = guid;
  if (!isInfinibandGuid(guid)) {
    report(
      scope,
      "selection.bad-infiniband-guid",
      ["infiniband-guid"],
      `has "infiniband-guid": ${quote(guid)}, which is not an InfiniBand GUID; write 8 hex bytes separated by ':', e.g. c2:11:22:33:44:55:66:77`,
    );
  }
}

function applyCniArgs(scope: Scope, draft: Draft, value: unknown): void {
  if (isObject(value)) draft.cniArgs = value;
  else wrongType(scope, ["cni-args"], value, "an object");
}

function applyIpamClaimReference(scope: Scope, draft: Draft, value: unknown): void {
  const claim = stringAt(scope, ["ipam-claim-reference"], value);
  if (claim !== undefined) draft.ipamClaimReference = claim;
}

const PORT_MAPPING_KEYS = ["hostPort", "containerPort", "protocol", "hostIP"];
const PROTOCOLS = new Set(["TCP", "UDP", "SCTP"]);

function applyPortMappings(scope: Scope, draft: Draft, value: unknown): void {
  if (!Array.isArray(value)) {
    wrongType(scope, ["portMappings"], value, "a list of objects");
    return;
  }
  const mappings: PortMapping[] = [];
  for (let i = 0; i < value.length; i++) {
    const entry: unknown = value[i];
    if (!isObject(entry)) wrongType(scope, ["portMappings", i], entry, "an object");
    else mappings.push(portMapping(scope, i, entry));
  }
  if (mappings.length > 0) draft.portMappings = mappings;
}

function portMapping(scope: Scope, i: number, entry: JsonObject): PortMapping {
  rejectUnknownKeys(scope, ["portMappings", i], entry, PORT_MAPPING_KEYS);
  const mapping: { -readonly [K in keyof PortMapping]: PortMapping[K] } = {
    hostPort: port(scope, i, "hostPort", entry.hostPort),
    containerPort: port(scope, i, "containerPort", entry.containerPort),
  };
  const protocol = entry.protocol == null ? undefined : stringAt(scope, ["portMappings", i, "protocol"], entry.protocol);
  if (protocol !== undefined) {
    mapping.protocol = protocol;
    if (!PROTOCOLS.has(protocol.toUpperCase())) {
      report(scope, "selection.bad-protocol", ["portMappings", i, "protocol"], `has "portMappings"[${i}].protocol: ${quote(protocol)}, which is not TCP, UDP or SCTP (in any case)`);
    }
  }
  const hostIP = entry.hostIP == null ? undefined : stringAt(scope, ["portMappings", i, "hostIP"], entry.hostIP);
  if (hostIP !== undefined) {
    mapping.hostIP = hostIP;
    if (parseIp(hostIP) === undefined) {
      report(scope, "selection.bad-ip", ["portMappings", i, "hostIP"], `has "portMappings"[${i}].hostIP: ${quote(hostIP)}, which is not an IP address`);
    }
  }
  return mapping;
}

function port(scope: Scope, i: number, key: string, value: unknown): number {
  const segments = ["portMappings", i, key];
  if (value === undefined || value === null) {
    report(scope, "selection.bad-port", segments, `has no "portMappings"[${i}].${key}; give a port in 1-65535`);
  } else if (typeof value !== "number") {
    wrongType(scope, segments, value, "a number");
  } else if (!Number.isInteger(value) || value < 1 || value > 65535) {
    report(scope, "selection.bad-port", segments, `has "portMappings"[${i}].${key}: ${value}, which is not a port; ports are whole numbers in 1-65535`);
  } else return value;
  return 0;
}

const BANDWIDTH_KEYS = ["ingressRate", "ingressBurst", "egressRate", "egressBurst"] as const;
/** The bandwidth plugin refuses a burst of 4 GB or more (burst/8 >= MaxUint32 bytes). */
const MAX_BURST_BITS = 8 * 0xffffffff;

function applyBandwidth(scope: Scope, draft: Draft, value: unknown): void {
  if (!isObject(value)) {
    wrongType(scope, ["bandwidth"], value, "an object");
    return;
  }
  rejectUnknownKeys(scope, ["bandwidth"], value, BANDWIDTH_KEYS);
  const bandwidth: { -readonly [K in keyof Bandwidth]: Bandwidth[K] } = {};
  let valid = true;
  for (const key of BANDWIDTH_KEYS) {
    const amount = bandwidthValue(scope, key, value[key]);
    if (amount === INVALID) valid = false;
    else if (amount !== undefined) bandwidth[key] = amount;
  }
  // A value already reported would only repeat itself as a missing rate or burst.
  if (valid) {
    checkRateAndBurst(scope, bandwidth, "ingress");
    checkRateAndBurst(scope, bandwidth, "egress");
  }
  draft.bandwidth = bandwidth;
}

const INVALID = Symbol("invalid");

/** The amount at `key`; `undefined` when absent; {@link INVALID} once reported. */
function bandwidthValue(scope: Scope, key: string, value: unknown): number | undefined | typeof INVALID {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number") {
    wrongType(scope, ["bandwidth", key], value, "a number");
    return INVALID;
  }
  const unit = key.endsWith("Rate") ? "bit/s" : "bits";
  if (!Number.isInteger(value) || value < 0) {
    report(scope, "selection.bad-bandwidth", ["bandwidth", key], `has "bandwidth".${key}: ${value}, which is not a whole number of ${unit} (0 or more)`);
    return INVALID;
  }
  if (key.endsWith("Burst") && value >= MAX_BURST_BITS) {
    report(scope, "selection.bad-bandwidth", ["bandwidth", key], `has "bandwidth".${key}: ${value}, which the bandwidth plugin refuses: a burst must be under 4 GB (${MAX_BURST_BITS} bits)`);
    return INVALID;
  }
  return value;
}

function checkRateAndBurst(scope: Scope, bandwidth: Bandwidth, direction: "ingress" | "egress"): void {
  const rate = bandwidth[`${direction}Rate`] ?? 0;
  const burst = bandwidth[`${direction}Burst`] ?? 0;
  if (burst > 0 && rate === 0) {
    report(scope, "selection.burst-without-rate", ["bandwidth", `${direction}Burst`], `has "bandwidth".${direction}Burst without ${direction}Rate; the bandwidth plugin needs both`);
  } else if (rate > 0 && burst === 0) {
    report(scope, "selection.rate-without-burst", ["bandwidth", `${direction}Rate`], `has "bandwidth".${direction}Rate without ${direction}Burst; the bandwidth plugin needs both`);
  }
}

function rejectUnknownKeys(scope: Scope, segments: readonly PropertyKey[], object: JsonObject, known: readonly string[]): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    report(scope, "selection.unknown-key", [...segments, key], `has unknown key ${quote(key)} in ${keyLabel(segments)}; the keys are ${known.join(", ")}`);
  }
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** `"ips"[1]`, `"portMappings"[0].hostPort`: a key path as messages write it. */
function keyLabel(segments: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? quote(String(segment)) : `.${String(segment)}`;
  }
  return out;
}

const IDENTIFYING_KEYS = new Set(["name", "namespace", "interface"]);

/**
 * How a JSON element is shown in messages: its identifying keys as written, in their order, and
 * `…` for the rest, e.g. `{"name":"sriov","namespace":"tenant-b",…}`; other values as compact JSON.
 */
function previewElement(value: unknown): string {
  if (!isObject(value)) return preview(value);
  const out: Rendering = { text: "{", max: ELEMENT_PREVIEW };
  let others = false;
  for (const key in value) {
    if (!IDENTIFYING_KEYS.has(key)) {
      others = true;
      continue;
    }
    out.text += `${out.text.length > 1 ? "," : ""}${JSON.stringify(key)}:`;
    render(value[key], out);
  }
  if (others) out.text += out.text.length > 1 ? ",…" : "…";
  out.text += "}";
  return cutText(out.text, ELEMENT_PREVIEW);
}

/** Compact JSON of `value`, cut at {@link PREVIEW} characters without walking more of it than that. */
function preview(value: unknown): string {
  const out: Rendering = { text: "", max: PREVIEW };
  render(value, out);
  return cutText(out.text, PREVIEW);
}

interface Rendering {
  text: string;
  /** Stop walking once the text is longer than this: it will be cut there anyway. */
  readonly max: number;
}

function render(value: unknown, out: Rendering): void {
  if (out.text.length > out.max) return;
  if (Array.isArray(value)) {
    out.text += "[";
    for (let i = 0; i < value.length && out.text.length <= out.max; i++) {
      if (i > 0) out.text += ",";
      render(value[i], out);
    }
    out.text += "]";
  } else if (isObject(value)) {
    out.text += "{";
    let first = true;
    for (const key in value) {
      if (out.text.length > out.max) break;
      out.text += `${first ? "" : ","}${JSON.stringify(key.slice(0, out.max + 1))}:`;
      first = false;
      render(value[key], out);
    }
    out.text += "}";
  } else {
    out.text += typeof value === "string" ? JSON.stringify(value.slice(0, out.max + 1)) : String(value);
  }
}
