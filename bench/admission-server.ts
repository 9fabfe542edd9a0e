// The webhook under load, in its own process: the real app (webhook/server.ts buildWebhook with
// the review handlers of `nadguard webhook`) over a synthetic snapshot, plus two routes of the
// bench on the same fastify instance and TLS listener:
//   POST /floor      answers a constant, precomputed AdmissionReview (the body is still parsed):
//                    the floor that nadguard's /mutate is compared with;
//   GET  /bench/memory  runs the GC and reports process.memoryUsage();
//   GET  /bench/loop    the event loop's delay (ms: p50, p99, max), the GC pauses (ms: total, max)
//                       and the process's CPU time (ms) since the last call, then resets.
// Usage: node --expose-gc --import tsx bench/admission-server.ts '{"namespaces":1000,"nadsPerNamespace":10,"certFile":...,"keyFile":...}'
// Prints one JSON line {"ready":true,"port":…} when listening; SIGTERM closes it.
import type { AddressInfo } from "node:net";
import { PerformanceObserver, monitorEventLoopDelay } from "node:perf_hooks";
import { DEFAULT_CONFIG } from "../src/config/config.js";
import { type AdmissionClusterOptions, admissionSnapshot, podReview } from "./synthetic.js";
import { engineModule } from "./system.js";

// nadguard's own modules as `nadguard webhook` runs them: from dist/ when the build is current.
const [reviewModule, envModule, envelopeModule, serverModule] = await Promise.all([
  engineModule<typeof import("../src/admission/review.js")>("src/admission/review.js"),
  engineModule<typeof import("../src/cli/env.js")>("src/cli/env.js"),
  engineModule<typeof import("../src/api/admission-review.js")>("src/api/admission-review.js"),
  engineModule<typeof import("../webhook/server.js")>("webhook/server.js"),
]);
const { review } = reviewModule.module;
const { envFor } = envModule.module;
const { AdmissionReviewRequest } = envelopeModule.module;
const { buildWebhook } = serverModule.module;

interface ServerArgs extends AdmissionClusterOptions {
  readonly certFile: string;
  readonly keyFile: string;
}

const FLOOR_BODY = JSON.stringify({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  response: { uid: "6f1c2b9a-3d4e-4f50-8a1b-2c3d4e5f6a7b", allowed: true },
});

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect) {
    collect();
    collect();
  }
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as ServerArgs;
  const started = performance.now();
  const snapshot = admissionSnapshot(args);
  const env = envFor(snapshot, DEFAULT_CONFIG);
  const buildMs = performance.now() - started;

  // A misconfigured bench must not measure denials: check both pods once, as the route will see them.
  for (const annotated of [true, false]) {
    const request = AdmissionReviewRequest.parse(podReview(args, annotated)).request;
    const response = await review(request, env, "mutate");
    if (!response.allowed || (annotated ? response.patch === undefined : response.patch !== undefined)) {
      throw new Error(`the ${annotated ? "annotated" : "plain"} pod is not reviewed as the bench expects: ${JSON.stringify(response).slice(0, 500)}`);
    }
  }

  const app = await buildWebhook({
    tls: { certFile: args.certFile, keyFile: args.keyFile },
    logger: false,
    isReady: () => true,
    mutate: (request) => review(request, env, "mutate"),
    validate: (request) => review(request, env, "validate"),
  });
  app.post("/floor", async (_request, reply) => reply.code(200).type("application/json").send(FLOOR_BODY));
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  // GC pauses of the main thread's heap (a worker thread's heap has its own, not seen here).
  const gcPauses = { total: 0, max: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcPauses.total += entry.duration;
      gcPauses.max = Math.max(gcPauses.max, entry.duration);
    }
  }).observe({ entryTypes: ["gc"] });
  let cpuSince = process.cpuUsage();
  app.get("/bench/loop", async (_request, reply) => {
    const cpu = process.cpuUsage(cpuSince);
    const delay = { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6, gcTotal: gcPauses.total, gcMax: gcPauses.max, cpuMs: (cpu.user + cpu.system) / 1000 };
    loop.reset();
    gcPauses.total = 0;
    gcPauses.max = 0;
    cpuSince = process.cpuUsage();
    return reply.send(delay);
  });
  app.get("/bench/memory", async (_request, reply) => {
    gc();
    return reply.send(process.memoryUsage());
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
  process.stdout.write(`${JSON.stringify({ ready: true, port, pid: process.pid, buildMs, nads: snapshot.nads.size, namespaces: snapshot.namespaces.size, from: serverModule.from })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`admission-server: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
