// Prometheus metrics of the enforcer and the tiny `GET /metrics` server of
// `nadguard enforce --metrics-listen`. Its own registry, never prom-client's global one, so that
// tests can build many enforcers in one process. node:http, not fastify: only webhook/ imports
// fastify (README, Architecture), and one route needs no framework.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ApplyMode } from "./plan.js";

/**
 * From the floor of one nft process (a few ms: the empty `nft -f` of bench/apply.ts) past the
 * 100 ms p99 target of event → rules applied (bench/convergence.ts) to the seconds a retry with
 * backoff takes.
 */
export const ENFORCER_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type SyncKind = "full" | "partial";

export interface EnforcerMetrics {
  readonly registry: Registry;
  observeSync(kind: SyncKind, seconds: number): void;
  /** Local pods that want a table, and netns whose table the enforcer has applied and knows. */
  setManaged(pods: number, netns: number): void;
  observeApply(mode: Exclude<ApplyMode, "none">): void;
  /** `reason`: the nft error reason (`exec`, `syntax`, …), `netns` when the namespace was not found, `read` for a failed read-back. */
  observeFailure(reason: string): void;
  observeEventToApplied(seconds: number): void;
  /** Something a policy asks that the ruleset cannot express (e.g. a named port no pod defines), by problem code. */
  observeWarning(code: string): void;
}

export function createEnforcerMetrics(registry: Registry = new Registry(), options: { defaultMetrics?: boolean } = {}): EnforcerMetrics {
  if (options.defaultMetrics !== false && !registry.getSingleMetric("process_cpu_user_seconds_total")) collectDefaultMetrics({ register: registry });
  const sync = new Histogram({
    name: "nadguard_enforcer_sync_duration_seconds",
    help: "Duration of one reconcile of the node's pods: full (periodic resync, start) or partial (changed pods only).",
    labelNames: ["kind"] as const,
    buckets: ENFORCER_BUCKETS,
    registers: [registry],
  });
  const pods = new Gauge({ name: "nadguard_enforcer_pods_managed", help: "Local pods with at least one enforced interface (a table wanted).", registers: [registry] });
  const netns = new Gauge({ name: "nadguard_enforcer_netns_managed", help: "Network namespaces holding the table the enforcer last applied.", registers: [registry] });
  const applies = new Counter({
    name: "nadguard_enforcer_applies_total",
    help: "nft transactions applied, by kind: elements, chains (flush and rebuild), fresh (whole table), remove.",
    labelNames: ["mode"] as const,
    registers: [registry],
  });
  const failures = new Counter({
    name: "nadguard_enforcer_apply_failures_total",
    help: "Netns that could not be brought to their desired state in a sync, by reason; each is rebuilt whole on the next sync.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "nadguard_enforcer_event_to_applied_seconds",
    help: "Time from a cluster state change to the rules applied in a netns it affects.",
    buckets: ENFORCER_BUCKETS,
    registers: [registry],
  });
  const warnings = new Counter({
    name: "nadguard_policy_warnings_total",
    help: "What policies ask that the applied rules could not express (the interface stays as isolated as asked), by problem code.",
    labelNames: ["code"] as const,
    registers: [registry],
  });
  return {
    registry,
    observeSync: (kind, seconds) => sync.observe({ kind }, seconds),
    setManaged(p, n) {
      pods.set(p);
      netns.set(n);
    },
    observeApply: (mode) => applies.inc({ mode }),
    observeFailure: (reason) => failures.inc({ reason }),
    observeEventToApplied: (seconds) => latency.observe(seconds),
    observeWarning: (code) => warnings.inc({ code }),
  };
}

export interface MetricsServer {
  /** `http://host:port`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (and `/healthz`) from a registry; with `ready`, also `GET /readyz` (200
 * while it answers true, else 503), for a kubelet that cannot probe a unix socket; everything else is 404.
 */
export async function serveMetrics(registry: Registry, host: string, port: number, ready?: () => boolean): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/metrics") {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(body);
        })
        .catch((error: Error) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`${error.message}\n`);
        });
      return;
    }
    if (req.method === "GET" && path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    if (ready !== undefined && req.method === "GET" && path === "/readyz") {
      const yes = ready();
      res.writeHead(yes ? 200 : 503, { "content-type": "text/plain" });
      res.end(yes ? "ok\n" : "not ready\n");
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    port: address.port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
