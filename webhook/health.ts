// Liveness, readiness and the drain state. /healthz answers while the process serves; /readyz
// only while the caller's isReady() holds and no drain has begun, so that the Service stops
// sending reviews before the listener closes. In-flight requests are counted so that a drain can
// wait for them (webhook/start.ts).
import fp from "fastify-plugin";
import type { FastifyPluginAsync, RawServerBase } from "fastify";

export interface Lifecycle {
  /** True once a drain has begun: /readyz answers 503 from then on. */
  readonly draining: boolean;
  startDraining(): void;
  /** Requests received and not yet answered (or abandoned by their client). */
  readonly inFlight: number;
  /** Resolves once no request is in flight (at once when none is). */
  whenIdle(): Promise<void>;
}

declare module "fastify" {
  interface FastifyInstance {
    lifecycle: Lifecycle;
  }
}

export function createLifecycle(): Lifecycle & { requestStarted(): () => void } {
  let draining = false;
  let inFlight = 0;
  let waiters: Array<() => void> = [];
  const release = (): void => {
    inFlight -= 1;
    if (inFlight > 0) return;
    const ready = waiters;
    waiters = [];
    for (const wake of ready) wake();
  };
  return {
    get draining() {
      return draining;
    },
    startDraining() {
      draining = true;
    },
    get inFlight() {
      return inFlight;
    },
    whenIdle() {
      return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve));
    },
    /** Counts a request in; the returned function counts it out, once however often it is called. */
    requestStarted() {
      inFlight += 1;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        release();
      };
    },
  };
}

const serveHealth: FastifyPluginAsync<{ isReady: () => boolean }, RawServerBase> = async (app, options) => {
  const lifecycle = createLifecycle();
  app.decorate("lifecycle", lifecycle);
  app.addHook("onRequest", async (request, reply) => {
    const finished = lifecycle.requestStarted();
    // 'close' follows both a sent response and a connection lost mid-request (HTTP/1.1 and HTTP/2).
    reply.raw.once("close", finished);
    request.raw.once("aborted", finished);
  });
  app.addHook("preClose", async () => lifecycle.startDraining());
  // Tell HTTP/1.1 clients not to reuse the connection once a drain has begun, also for requests
  // that arrived before it (fastify only marks those that arrive after close()). HTTP/2 gets GOAWAY.
  app.addHook("onSend", async (request, reply) => {
    if (lifecycle.draining && request.raw.httpVersionMajor === 1) reply.header("connection", "close");
  });

  app.get("/healthz", async (_request, reply) => reply.type("text/plain").send("ok"));
  app.get("/readyz", async (_request, reply) => {
    const ready = !lifecycle.draining && safeIsReady(options.isReady);
    return reply
      .code(ready ? 200 : 503)
      .type("text/plain")
      .send(ready ? "ok" : lifecycle.draining ? "draining" : "not ready");
  });
};

/** A readiness callback that throws means "not ready", not a 500. */
function safeIsReady(isReady: () => boolean): boolean {
  try {
    return isReady();
  } catch {
    return false;
  }
}

/** Decorates `lifecycle` and serves `GET /healthz` and `GET /readyz`. */
export const healthPlugin = fp(serveHealth, { name: "nadguard-health", fastify: "5.x" });
