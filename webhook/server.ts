// buildWebhook: the fastify app with every route and concern registered, not listening (tests use
// app.inject(); webhook/start.ts listens). With TLS it serves HTTP/2 — which kube-apiserver
// negotiates — and HTTP/1.1 over the same port; without TLS, plain HTTP/1.1.
import type { Server } from "node:http";
import type { Http2SecureServer } from "node:http2";
import Fastify, { type FastifyHttp2SecureOptions, type FastifyHttpOptions, LogController } from "fastify";
import { admissionRoutes } from "./admission-routes.js";
import type { WebhookApp, WebhookOptions } from "./contract.js";
import { healthPlugin } from "./health.js";
import { BODY_LIMIT, REVIEW_BODY_LIMITS } from "./limits.js";
import { metricsPlugin } from "./metrics.js";
import { DEFAULT_TIMEOUT_MS } from "./timeout.js";
import { readTlsMaterial, tlsReloadPlugin } from "./tls.js";

/** Builds the app; throws when the TLS files cannot be read or do not match. */
export async function buildWebhook(options: WebhookOptions): Promise<WebhookApp> {
  const tls = options.tls ? { files: options.tls, initial: await readTlsMaterial(options.tls) } : undefined;
  // pino options or a boolean, as the caller passed them; fastify types them per server kind.
  const logger: unknown = options.logger ?? false;
  const common = {
    bodyLimit: BODY_LIMIT,
    // One line per review, with its uid, comes from the admission routes; probes and scrapes
    // every few seconds would otherwise drown them.
    logController: new LogController({ disableRequestLogging: true }),
    // During a drain a review that still arrives on an open connection is answered properly:
    // a 503 would count as a failed call against the webhook's failurePolicy.
    return503OnClosing: false,
  };
  const app = (
    tls
      ? Fastify({
          ...common,
          logger: logger as FastifyHttp2SecureOptions<Http2SecureServer>["logger"],
          http2: true,
          https: { allowHTTP1: true, key: tls.initial.key, cert: tls.initial.cert },
        })
      : Fastify({ ...common, logger: logger as FastifyHttpOptions<Server>["logger"] })
  ) as unknown as WebhookApp; // one app type for both server kinds (see WebhookApp)

  await app.register(metricsPlugin, { registry: options.registry });
  await app.register(healthPlugin, { isReady: options.isReady });
  await app.register(tlsReloadPlugin, { tls: tls && { ...tls, pollIntervalMs: options.tlsPollIntervalMs } });
  await app.register(admissionRoutes, {
    handlers: { mutate: options.mutate, validate: options.validate },
    defaultTimeoutMs: options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    limits: { ...REVIEW_BODY_LIMITS, ...(options.maxBodyValues !== undefined && { maxValues: options.maxBodyValues }) },
  });
  return app;
}
