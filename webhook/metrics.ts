// Prometheus metrics of the webhook and `GET /metrics`. Each app has its own registry (given or
// fresh), never prom-client's global one, so that tests can build many apps in one process.
import fp from "fastify-plugin";
import type { FastifyPluginAsync, RawServerBase } from "fastify";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from "prom-client";
import type { AdmissionResponse } from "../src/api/admission-review.js";
import { REASON_ANNOTATION } from "../src/admission/decision.js";
import type { Endpoint, Outcome } from "./contract.js";

/**
 * Sub-millisecond decisions up to the 500 ms past which kube-apiserver traces a webhook call as
 * slow (k8s.io/apiserver's webhook dispatchers: `trace.LogIfLong(500 * time.Millisecond)`), then a
 * few buckets up to the 10 s default timeout so timeouts stay visible.
 */
export const DURATION_BUCKETS = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface WebhookMetrics {
  readonly registry: Registry;
  /** Records a finished review; a denial (any allowed:false) also counts under its status.reason. */
  observeReview(endpoint: Endpoint, outcome: Outcome, seconds: number, response: AdmissionResponse): void;
  /** Records a request that was not an AdmissionReview (answered 4xx). */
  observeMalformed(endpoint: Endpoint): void;
  observeTlsReload(result: "success" | "failure"): void;
  setCertificateNotAfter(seconds: number): void;
}

declare module "fastify" {
  interface FastifyInstance {
    webhookMetrics: WebhookMetrics;
  }
}

export function createWebhookMetrics(registry: Registry = new Registry()): WebhookMetrics {
  // A registry handed in may already carry them (a second app, or the caller's own collection).
  if (!registry.getSingleMetric("process_cpu_user_seconds_total")) collectDefaultMetrics({ register: registry });
  const duration = reuse(registry, "nadguard_admission_duration_seconds", () =>
    new Histogram({
      name: "nadguard_admission_duration_seconds",
      help: "Time from a parsed AdmissionReview to its response, by endpoint and outcome.",
      labelNames: ["endpoint", "outcome"] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
  );
  const requests = reuse(registry, "nadguard_admission_requests_total", () =>
    new Counter({
      name: "nadguard_admission_requests_total",
      help: "Admission requests by endpoint and outcome (allowed, denied, error, timeout, malformed).",
      labelNames: ["endpoint", "outcome"] as const,
      registers: [registry],
    }),
  );
  const denials = reuse(registry, "nadguard_admission_denials_total", () =>
    new Counter({
      name: "nadguard_admission_denials_total",
      help: "Admission responses with allowed=false, by status.reason (unknown when absent).",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
  );
  const tlsReloads = reuse(registry, "nadguard_tls_reloads_total", () =>
    new Counter({
      name: "nadguard_tls_reloads_total",
      help: "Attempts to load a changed serving certificate, by result; a failure keeps the previous one.",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
  );
  const notAfter = reuse(registry, "nadguard_tls_certificate_not_after_seconds", () =>
    new Gauge({
      name: "nadguard_tls_certificate_not_after_seconds",
      help: "Expiry (Unix time) of the serving certificate in use: alert well before it.",
      registers: [registry],
    }),
  );
  return {
    registry,
    observeReview(endpoint, outcome, seconds, response) {
      duration.observe({ endpoint, outcome }, seconds);
      requests.inc({ endpoint, outcome });
      if (!response.allowed) denials.inc({ reason: denialReason(response) });
    },
    observeMalformed(endpoint) {
      requests.inc({ endpoint, outcome: "malformed" });
    },
    observeTlsReload(result) {
      tlsReloads.inc({ result });
    },
    setCertificateNotAfter(seconds) {
      notAfter.set(seconds);
    },
  };
}

const serveMetrics: FastifyPluginAsync<{ registry?: Registry | undefined }, RawServerBase> = async (app, options) => {
  const metrics = createWebhookMetrics(options.registry);
  app.decorate("webhookMetrics", metrics);
  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });
};

/** Decorates `webhookMetrics` and serves `GET /metrics` in Prometheus text format. */
export const metricsPlugin = fp(serveMetrics, { name: "nadguard-metrics", fastify: "5.x" });

function reuse<T extends Metric>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * The label of a denial: nadguard's own reason (audit annotation `nadguard.io/reason`, a small fixed
 * set) when the decision gave one, else the Kubernetes status reason (InternalError, Timeout …).
 */
function denialReason(response: AdmissionResponse): string {
  return response.auditAnnotations?.[REASON_ANNOTATION] || response.status?.reason || "unknown";
}
