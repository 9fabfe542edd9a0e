// The hostile client of the soak benchmark, in its own process: posts the corpus of hostile bodies
// (test/support/hostile-reviews.ts) to the webhook over HTTP/1.1 and TLS at a fixed rate, as a pod
// inside the cluster could post them straight to the webhook's Service. Open loop on a schedule,
// with at most `maxInFlight` requests outstanding (a send that would exceed it is counted as
// skipped, so that a stalled server cannot pile up unbounded work in the client).
// Usage: node --import tsx bench/hostile-load.ts PLAN.json — prints one JSON result line.
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";

export interface HostilePlan {
  readonly port: number;
  readonly caFile: string;
  readonly bodies: readonly { readonly file: string; readonly contentType: string; readonly shape: string; readonly uid: string | undefined }[];
  readonly rate: number;
  readonly durationS: number;
  readonly maxInFlight: number;
}

/** One answer as the client saw it. */
export interface HostileAnswer {
  readonly shape: string;
  readonly bytes: number;
  readonly status: number;
  readonly ms: number;
  /** The answer is an AdmissionReview v1 with a response. */
  readonly review: boolean;
  /** It echoes the uid the body carried (false when the body had no readable uid). */
  readonly uidEchoed: boolean;
  /** The connection failed before an answer (reset, closed). */
  readonly failed: boolean;
}

export interface HostileResult {
  readonly sent: number;
  readonly skipped: number;
  readonly seconds: number;
  readonly answers: HostileAnswer[];
}

function post(agent: Agent, plan: HostilePlan, ca: string, body: Buffer, contentType: string): Promise<{ status: number; text: string; failed: boolean }> {
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port: plan.port, path: "/mutate?timeout=10s", method: "POST", ca, agent, servername: "localhost", headers: { "content-type": contentType, "content-length": body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), failed: false }));
        res.on("error", () => resolve({ status: res.statusCode ?? 0, text: "", failed: true }));
      },
    );
    // The server may answer and close before the whole body is written (413): not a client failure.
    req.on("error", () => resolve({ status: 0, text: "", failed: true }));
    req.end(body);
  });
}

function readAnswer(text: string): { review: boolean; uid: unknown } {
  try {
    const parsed = JSON.parse(text) as { apiVersion?: unknown; kind?: unknown; response?: { uid?: unknown } };
    const review = parsed.apiVersion === "admission.k8s.io/v1" && parsed.kind === "AdmissionReview" && typeof parsed.response === "object";
    return { review, uid: parsed.response?.uid };
  } catch {
    return { review: false, uid: undefined };
  }
}

async function main(): Promise<void> {
  const plan = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as HostilePlan;
  const ca = readFileSync(plan.caFile, "utf8");
  const bodies = plan.bodies.map((b) => ({ ...b, body: readFileSync(b.file) }));
  const agent = new Agent({ keepAlive: true, maxSockets: plan.maxInFlight });
  const answers: HostileAnswer[] = [];
  const pending = new Set<Promise<void>>();
  const interval = 1000 / plan.rate;
  const total = Math.max(1, Math.round(plan.rate * plan.durationS));
  const start = performance.now();
  let sent = 0;
  let skipped = 0;
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (pending.size >= plan.maxInFlight) {
      skipped++;
      continue;
    }
    const item = bodies[i % bodies.length]!;
    const began = performance.now();
    sent++;
    const done = post(agent, plan, ca, item.body, item.contentType).then(({ status, text, failed }) => {
      const { review, uid } = readAnswer(text);
      answers.push({ shape: item.shape, bytes: item.body.length, status, ms: performance.now() - began, review, uidEchoed: item.uid !== undefined && uid === item.uid, failed });
      pending.delete(done);
    });
    pending.add(done);
  }
  await Promise.all(pending);
  agent.destroy();
  const result: HostileResult = { sent, skipped, seconds: (performance.now() - start) / 1000, answers };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`hostile-load: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
