// `nadguard admit FILE --state DIR`: the webhook's decision for one AdmissionReview or bare
// manifest, through the same code path the webhook uses.
import { AdmissionReviewRequest, type AdmissionReviewResponse } from "../api/admission-review.js";
import { InputError, atPlace, problemsFromZod } from "../api/errors.js";
import type { Decision } from "../admission/decision.js";
import type { JsonPatchOp } from "../admission/json-patch.js";
import { toAdmissionResponse } from "../admission/decision.js";
import { decide, requestForManifest } from "../admission/review.js";
import { EXIT, readManifest } from "./io.js";
import { loadEnv } from "./env.js";

export interface AdmitOptions {
  file: string;
  state: string;
  config?: string | undefined;
  as?: string | undefined;
  asGroups: string[];
  output: "human" | "json";
}

export async function runAdmit(options: AdmitOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const manifest = await readManifest(options.file);
  const request = manifest.kind === "AdmissionReview" ? parseReview(manifest, options.file) : requestForManifest(manifest, {
    ...(options.as !== undefined && { username: options.as }),
    groups: options.asGroups,
  });
  const env = await loadEnv(options.state, options.config, err);
  const decision = await decide(request, env, "mutate");
  if (options.output === "json") {
    const review: AdmissionReviewResponse = {
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      response: toAdmissionResponse(request.uid, decision),
    };
    out(JSON.stringify(review, null, 2));
  } else {
    printHuman(decision, out);
  }
  return decision.allowed ? EXIT.ok : EXIT.denied;
}

function parseReview(manifest: unknown, file: string) {
  const parsed = AdmissionReviewRequest.safeParse(manifest);
  if (!parsed.success) throw new InputError(atPlace(problemsFromZod(parsed.error, "", "input.review"), file));
  return parsed.data.request;
}

function printHuman(decision: Decision, out: (line: string) => void): void {
  out(decision.allowed ? "ALLOWED" : `DENIED (${decision.reason})`);
  if (!decision.allowed) out(decision.message ?? "");
  if (decision.attachments.length > 0) {
    out("");
    out("attachments:");
    const rows = decision.attachments.map((a) => [a.interfaceName, a.network, a.cniType ?? "?", a.resourceName ?? ""]);
    for (const line of table([["INTERFACE", "NETWORK", "CNI TYPE", "RESOURCE"], ...rows])) out(`  ${line}`);
  }
  if (decision.patch.length > 0) {
    out("");
    out("patch:");
    for (const op of decision.patch) out(`  ${formatOp(op)}`);
  }
  for (const warning of decision.warnings) out(`warning: ${warning}`);
}

function formatOp(op: JsonPatchOp): string {
  const sign = op.op === "add" ? "+" : op.op === "remove" ? "-" : "~";
  return op.op === "remove" ? `${sign} ${op.path}` : `${sign} ${op.path} = ${JSON.stringify(op.value)}`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join("  ").trimEnd());
}
