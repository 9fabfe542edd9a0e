// startWebhook: builds the app, listens, and drains on close. A drain turns /readyz to 503 (so the
// Service stops routing here), optionally waits for that to propagate, stops accepting
// connections, lets HTTP/2 sessions finish their streams (GOAWAY) and in-flight reviews answer,
// then closes what is left; after the grace period whatever still runs is cut.
import type { EventEmitter } from "node:events";
import type { Http2Session } from "node:http2";
import { type AddressInfo, type Socket, createServer } from "node:net";
import type { WebhookApp, WebhookOptions } from "./contract.js";
import { buildWebhook } from "./server.js";

export interface StartWebhookOptions extends WebhookOptions {
  host: string;
  /** 0 picks a free port (tests); see RunningWebhook.port. */
  port: number;
  /** Drain on the first SIGTERM or SIGINT; a second one cuts in-flight requests at once. Default false. */
  handleSignals?: boolean;
  /**
   * Time between /readyz turning 503 and the listener closing, for the endpoints to drop this pod;
   * default 0 (a preStop sleep in the Deployment does the same).
   */
  drainDelayMs?: number;
  /** How long in-flight requests may still take once the drain closes the listener; default 25 s. */
  gracePeriodMs?: number;
}

export interface RunningWebhook {
  app: WebhookApp;
  /** As fastify reports it, e.g. `https://127.0.0.1:8443`. */
  address: string;
  port: number;
  /** Drains and closes; idempotent, every call returns the same promise. */
  close(): Promise<void>;
  /** Settles when the server has closed, by close() or by a signal. */
  closed: Promise<void>;
}

/** Below Kubernetes' default terminationGracePeriodSeconds (30 s), so the drain ends before SIGKILL. */
const DEFAULT_GRACE_MS = 25_000;
/** After in-flight requests are done, how long sockets get to flush and close before being cut. */
const LINGER_MS = 1_000;

/**
 * Resolves when `host:port` can be listened on right now, else rejects with the error listen would
 * give (EADDRINUSE, EADDRNOTAVAIL, EACCES...): lets a caller refuse before it changes anything, such
 * as rewriting certificate files. The socket is closed again at once.
 */
export async function checkListenAddress(host: string, port: number): Promise<void> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen({ host, port, exclusive: true }, resolve);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/** Builds and listens; when listening fails the app is closed again (no watcher keeps the process alive) and the error thrown. */
export async function startWebhook(options: StartWebhookOptions): Promise<RunningWebhook> {
  const app = await buildWebhook(options);
  const connections = trackConnections(app, options.tls !== undefined);
  let address: string;
  try {
    address = await app.listen({ host: options.host, port: options.port });
  } catch (error) {
    await app.close();
    throw error;
  }
  const port = (app.server.address() as AddressInfo).port;

  const hardStop = new AbortController();
  let closing: Promise<void> | undefined;
  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const close = (): Promise<void> => {
    closing ??= drain(app, connections, options, hardStop.signal).finally(() => {
      removeSignals();
      resolveClosed();
    });
    return closing;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      app.log.warn({ signal }, "second signal: cutting in-flight requests");
      hardStop.abort();
      return;
    }
    app.log.info({ signal }, "signal received: draining");
    void close();
  };
  const removeSignals = (): void => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
  if (options.handleSignals) {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  }
  return { app, address, port, close, closed };
}

interface Connections {
  sockets: Set<Socket>;
  sessions: Set<Http2Session>;
}

function trackConnections(app: WebhookApp, tls: boolean): Connections {
  const connections: Connections = { sockets: new Set(), sessions: new Set() };
  const server: EventEmitter = app.server;
  server.on(tls ? "secureConnection" : "connection", (socket: Socket) => {
    connections.sockets.add(socket);
    socket.once("close", () => connections.sockets.delete(socket));
  });
  server.on("session", (session: Http2Session) => {
    connections.sessions.add(session);
    session.once("close", () => connections.sessions.delete(session));
  });
  return connections;
}

async function drain(app: WebhookApp, connections: Connections, options: StartWebhookOptions, hardStop: AbortSignal): Promise<void> {
  app.lifecycle.startDraining();
  app.log.info({ inFlight: app.lifecycle.inFlight }, "drain started: /readyz answers 503");
  if (options.drainDelayMs) await settlesWithin(new Promise(() => undefined), options.drainDelayMs, hardStop);

  // Stops accepting connections; HTTP/1.1 responses from now on carry `Connection: close`.
  const appClosed = app.close();
  // GOAWAY: no new streams, the open ones complete, then the session closes by itself.
  for (const session of connections.sessions) session.close();

  const finished = await settlesWithin(app.lifecycle.whenIdle(), options.gracePeriodMs ?? DEFAULT_GRACE_MS, hardStop);
  if (finished) {
    // Idle keep-alive connections: end them gracefully (pending writes are flushed first).
    for (const socket of connections.sockets) socket.end();
    if (!(await settlesWithin(appClosed, LINGER_MS, hardStop))) destroyAll(connections);
  } else {
    app.log.warn({ inFlight: app.lifecycle.inFlight }, "grace period over: cutting in-flight requests");
    destroyAll(connections);
  }
  await appClosed;
  app.log.info("drain finished: server closed");
}

/** True when `promise` settles within `ms`; false on the timeout or when `stop` aborts first. */
async function settlesWithin(promise: Promise<unknown>, ms: number, stop: AbortSignal): Promise<boolean> {
  if (stop.aborted) return false;
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    onStop = () => resolve(false);
    stop.addEventListener("abort", onStop, { once: true });
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
    if (onStop) stop.removeEventListener("abort", onStop);
  }
}

function destroyAll(connections: Connections): void {
  for (const session of connections.sessions) session.destroy();
  for (const socket of connections.sockets) socket.destroy();
}
