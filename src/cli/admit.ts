// `nadguard admit FILE --state DIR`: the webhook's decision for every object of a manifest file
// (read as kubectl reads it: src/cli/manifests.ts) or for AdmissionReviews, through the same code
// path the webhook uses. A workload is judged by the pods it will create. With `--kube` (or
// `--kubeconfig`…) the objects come from the cluster and cross-namespace use is authorized by
// SubjectAccessReview, as the webhook does in Kubernetes mode.
import { type AdmissionRequest, AdmissionReviewRequest, type AdmissionReviewResponse } from "../api/admission-review.js";
import { InputError, type Problem, atPlace, problemsFromZod } from "../api/errors.js";
import type { AdmissionEnv, Decision } from "../admission/decision.js";
import type { JsonPatchOp } from "../admission/json-patch.js";
import { toAdmissionResponse } from "../admission/decision.js";
import { isJudged, requestForManifest, verdict } from "../admission/review.js";
import { templatePath, workloadKindOf } from "../admission/workload.js";
import { EXIT } from "./io.js";
import { loadEnv, reportStateProblems } from "./env.js";
import type { KubeFlags } from "./kube.js";
import { loadConfig } from "../config/config.js";
import { type ManifestItem, type Manifests, readManifests } from "./manifests.js";
import { importKube } from "./kube-import.js";

export interface AdmitOptions {
  file: string;
  /** A state directory; or `kube`, to read the cluster and authorize by SubjectAccessReview. */
  state?: string | undefined;
  kube?: KubeFlags | undefined;
  config?: string | undefined;
  as?: string | undefined;
  asGroups: string[];
  output: "human" | "json";
}

/** One object of the file and what nadguard answers for it. */
interface Judged {
  readonly item: ManifestItem;
  readonly request: AdmissionRequest;
  readonly decision: Decision;
}

export async function runAdmit(options: AdmitOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const manifests = await readManifests(options.file);
  const requests = requestsFor(manifests, options);
  for (const warning of manifests.warnings) err(`warning: ${warning}`);
  const judged: Judged[] = [];
  await withEnv(options, err, async (env) => {
    for (const [i, item] of manifests.items.entries()) {
      const request = requests[i]!;
      judged.push({ item, request, decision: await verdict(request, env) });
    }
  });
  if (options.output === "json") out(JSON.stringify(manifests.several ? judged.map((j) => jsonEntry(j, manifests)) : review(judged[0]!), null, 2));
  else if (manifests.several) printSeveral(judged, manifests, out);
  else printOne(judged[0]!, out);
  return judged.every((j) => j.decision.allowed) ? EXIT.ok : EXIT.denied;
}

/** How long `--kube` waits for the cluster's first lists before giving up (exit 1). */
const KUBE_SYNC_TIMEOUT_MS = 30_000;

/**
 * Runs `judge` with the env of a state directory, or of the cluster: its objects listed once by
 * the informers, stopped afterwards, and a SubjectAccessReview reviewer.
 */
async function withEnv(options: AdmitOptions, err: (line: string) => void, judge: (env: AdmissionEnv) => Promise<void>): Promise<void> {
  if (!options.kube) return judge(await loadEnv(options.state!, options.config, err));
  const config = await loadConfig(options.config);
  // Loaded only here: the Kubernetes client takes about a second to load.
  const { kubeStateFor, loadKubeConfig, sarReviewerFor } = await importKube();
  const kubeConfig = loadKubeConfig(options.kube);
  const state = kubeStateFor(kubeConfig, { log: err, allPods: config.nads.protectInUse, syncTimeoutMs: KUBE_SYNC_TIMEOUT_MS });
  try {
    await state.start();
    const snapshot = state.current()!;
    reportStateProblems(snapshot, err);
    await judge({ snapshot, config, access: sarReviewerFor(kubeConfig, { log: err }) });
  } finally {
    await state.stop();
  }
}

/** Every item's request; an AdmissionReview that does not parse is bad input, named by its place. */
function requestsFor(manifests: Manifests, options: AdmitOptions): AdmissionRequest[] {
  const problems: Problem[] = [];
  const requests = manifests.items.map((item) => {
    if (item.object.kind !== "AdmissionReview") {
      return requestForManifest(item.object, { ...(options.as !== undefined && { username: options.as }), groups: options.asGroups });
    }
    const parsed = AdmissionReviewRequest.safeParse(item.object);
    if (parsed.success) return parsed.data.request;
    problems.push(...atPlace(problemsFromZod(parsed.error, "", "input.review"), place(item, manifests)));
    return undefined;
  });
  if (problems.length > 0) throw new InputError(problems);
  return requests as AdmissionRequest[];
}

/** What `--output json` adds to an AdmissionReview under the key `nadguard`: the networks and how each was decided. */
interface AccessDetails {
  /** The pod's attachments, each with its access trail (`access`), when it is allowed. */
  readonly attachments?: Decision["attachments"];
  /** The networks it was refused (what was missing), when it is denied for them. */
  readonly refused?: Decision["refused"];
}

/**
 * The AdmissionReview /mutate answers, plus, under `nadguard`, what kube-apiserver never sees: the
 * pod's attachments with their access trails, or the networks refused.
 */
function review(judged: Judged): AdmissionReviewResponse & { nadguard?: AccessDetails } {
  const { decision } = judged;
  const details: AccessDetails = {
    ...(decision.attachments.length > 0 && { attachments: decision.attachments }),
    ...(decision.refused && decision.refused.length > 0 && { refused: decision.refused }),
  };
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    response: toAdmissionResponse(judged.request.uid, decision),
    ...(Object.keys(details).length > 0 && { nadguard: details }),
  };
}

/** `file:line`, then the document and list position when the file has several. */
function place(item: ManifestItem, manifests: Manifests): string {
  const parts = [`${manifests.file}:${item.line}`];
  if (manifests.documents > 1) parts.push(`document ${item.document}`);
  if (item.item !== undefined) parts.push(`items[${item.item}]`);
  return parts.join(", ");
}

/** `Pod tenant-a/web`, `Deployment tenant-a/web (pod template spec.template)`, `ConfigMap default/x (not checked by nadguard)`. */
function subject({ request }: Judged): string {
  const object = request.object as { metadata?: { name?: unknown; generateName?: unknown } } | undefined;
  const name = request.name || (typeof object?.metadata?.name === "string" ? object.metadata.name : `${typeof object?.metadata?.generateName === "string" ? object.metadata.generateName : ""}<generated>`);
  const who = `${request.kind.kind} ${request.namespace ? `${request.namespace}/` : ""}${name}`;
  const workload = workloadKindOf(request.kind);
  if (workload) return `${who} (pod template ${templatePath(workload)})`;
  return isJudged(request.kind) ? who : `${who} (not checked by nadguard)`;
}

function verdictWord(decision: Decision): string {
  return decision.allowed ? "ALLOWED" : `DENIED (${decision.reason})`;
}

/** One object: the verdict alone on the first line, as before, unless the object is a workload or a kind nadguard does not read. */
function printOne(judged: Judged, out: (line: string) => void): void {
  const plain = isJudged(judged.request.kind) && !workloadKindOf(judged.request.kind);
  out(plain ? verdictWord(judged.decision) : `${verdictWord(judged.decision)}  ${subject(judged)}`);
  printDetails(judged.decision, out);
}

/** Several objects: one verdict line each with its details indented below it, a blank line between them, then a count. */
function printSeveral(judged: readonly Judged[], manifests: Manifests, out: (line: string) => void): void {
  for (const entry of judged) {
    out(`${verdictWord(entry.decision)}  ${subject(entry)}  (${place(entry.item, manifests)})`);
    printDetails(entry.decision, (line) => line.trim() !== "" && out(`  ${line}`));
    out("");
  }
  const denied = judged.filter((j) => !j.decision.allowed).length;
  out(`${judged.length} objects: ${judged.length - denied} allowed, ${denied} denied`);
}

function printDetails(decision: Decision, out: (line: string) => void): void {
  if (!decision.allowed) for (const line of (decision.message ?? "").split("\n")) out(line);
  if (decision.attachments.length > 0) {
    out("");
    out("attachments:");
    const rows = decision.attachments.map((a) => [a.interfaceName, a.network, a.cniType ?? "?", a.resourceName ?? ""]);
    for (const line of table([["INTERFACE", "NETWORK", "CNI TYPE", "RESOURCE"], ...rows])) out(`  ${line}`);
  }
  printAccess(decision, out);
  if (decision.patch.length > 0) {
    out("");
    out("patch:");
    for (const op of decision.patch) out(`  ${formatOp(op)}`);
  }
  for (const warning of decision.warnings) out(`warning: ${warning}`);
}

/**
 * Per network, what granted the pod its use (`allowed by RoleBinding ns/x → ClusterRole y, granted
 * to …`) or, when denied, what was missing.
 */
function printAccess(decision: Decision, out: (line: string) => void): void {
  const rows = [
    ...decision.attachments.flatMap((a) => (a.access ? [[a.interfaceName, a.network, a.access.summary]] : [])),
    ...(decision.refused ?? []).map((r) => [r.interfaceName, r.network, r.notFound ? `missing: ${r.missing}` : r.access.summary]),
  ];
  if (rows.length === 0) return;
  out("");
  out("access:");
  for (const line of table(rows)) out(`  ${line}`);
}

/** One element of the JSON array printed for several objects. */
function jsonEntry(judged: Judged, manifests: Manifests): Record<string, unknown> {
  const { item, request } = judged;
  const workload = workloadKindOf(request.kind);
  const object = request.object as { metadata?: { name?: unknown } } | undefined;
  const name = request.name || (typeof object?.metadata?.name === "string" ? object.metadata.name : undefined);
  return {
    source: `${manifests.file}:${item.line}`,
    document: item.document,
    ...(item.item !== undefined && { item: item.item }),
    kind: request.kind.kind,
    namespace: request.namespace,
    ...(name !== undefined && { name }),
    checked: isJudged(request.kind),
    ...(workload && { template: templatePath(workload) }),
    review: review(judged),
  };
}

function formatOp(op: JsonPatchOp): string {
  const sign = op.op === "add" ? "+" : op.op === "remove" ? "-" : "~";
  return op.op === "remove" ? `${sign} ${op.path}` : `${sign} ${op.path} = ${JSON.stringify(op.value)}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join("  ").trimEnd());
}
