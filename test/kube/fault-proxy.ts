// A fault-injecting HTTP proxy between nadguard and "the API server" — the fake of
// fake-apiserver.ts, or a real cluster when KUBECONFIG is set — so that the same suites inject the
// same faults into both: drop watch connections mid-stream, stall them (bytes stop, the socket
// stays open: a half-open TCP connection as the client sees it), rewrite a request's query
// (resourceVersion=1 makes the real server answer 410 by itself), answer in its place (HTTP
// 410/500), reset the connection, or hold a request until the test releases it. It also counts
// requests. nadguard talks plain HTTP to it; it talks to the upstream with the upstream's
// KubeConfig (TLS, client certificates, tokens) through KubeConfig.applyToHTTPSOptions.
import { type IncomingMessage, type Server, type ServerResponse, createServer, request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import type { KubeConfig } from "@kubernetes/client-node";
import { kubeConfigFor } from "./fake-apiserver.js";

export type Fault =
  | { readonly respond: { readonly status: number; readonly body: unknown } }
  | { readonly reset: true }
  | { readonly hold: Promise<void> }
  | { readonly rewriteQuery: Readonly<Record<string, string>> };

export interface Rule {
  readonly method?: string;
  /** A path prefix or a pattern, matched against the path without query. */
  readonly path: string | RegExp;
  /** Only watch requests (true) or only other requests (false); default both. */
  readonly watch?: boolean;
  /** How many matching requests the fault applies to; default 1. */
  readonly times?: number;
  readonly fault: Fault;
}

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly watch: boolean;
  /** Resolves when the connection of the request closes before the proxy answered it (the client gave up). */
  readonly abandoned: Promise<void>;
}

export interface RequestFilter {
  readonly method?: string;
  readonly path?: string | RegExp;
  readonly watch?: boolean;
}

export interface FaultProxy {
  readonly url: string;
  /** What the system under test uses: plain HTTP to the proxy, no credentials. */
  kubeConfig(): KubeConfig;
  /** Adds a fault; returns a function that removes it. */
  inject(rule: Rule): () => void;
  /** Destroys the client socket of every open watch matching; returns how many. */
  dropWatches(path?: string | RegExp): number;
  /** Stops forwarding bytes of every open watch matching (the socket stays open); returns how many. */
  stallWatches(path?: string | RegExp): number;
  /** Open watches matching. */
  openWatches(path?: string | RegExp): number;
  readonly requests: ProxiedRequest[];
  count(filter?: RequestFilter): number;
  close(): Promise<void>;
}

interface OpenWatch {
  readonly path: string;
  readonly res: ServerResponse;
  stalled: boolean;
}

const matchesPath = (pattern: string | RegExp | undefined, path: string): boolean =>
  pattern === undefined || (typeof pattern === "string" ? path.startsWith(pattern) : pattern.test(path));

function matches(filter: RequestFilter, request: ProxiedRequest): boolean {
  return (
    (filter.method === undefined || filter.method === request.method) &&
    matchesPath(filter.path, request.path) &&
    (filter.watch === undefined || filter.watch === request.watch)
  );
}

export async function startFaultProxy(upstream: KubeConfig): Promise<FaultProxy> {
  const rules: { rule: Rule; left: number }[] = [];
  const watches = new Set<OpenWatch>();
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });

  /** The next rule that applies to the request (in injection order) and has uses left, used once. */
  function takeFault(request: ProxiedRequest, after: number): { fault: Fault; index: number } | undefined {
    for (let index = after; index < rules.length; index++) {
      const entry = rules[index]!;
      if (entry.left > 0 && matches(entry.rule, request)) {
        entry.left -= 1;
        return { fault: entry.rule.fault, index: index + 1 };
      }
    }
    return undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://proxy");
    const watch = url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1";
    const abandoned = new Promise<void>((resolve) => res.once("close", () => !res.writableFinished && resolve()));
    const request: ProxiedRequest = { method: req.method ?? "GET", path: url.pathname, query: new URLSearchParams(url.searchParams), watch, abandoned };
    requests.push(request);
    // Holds and rewrites compose with the rules after them; a response or a reset ends the request.
    for (let next = takeFault(request, 0); next; next = takeFault(request, next.index)) {
      const { fault } = next;
      if ("hold" in fault) await fault.hold;
      if ("rewriteQuery" in fault) for (const [key, value] of Object.entries(fault.rewriteQuery)) url.searchParams.set(key, value);
      if ("reset" in fault) {
        req.socket.destroy();
        return;
      }
      if ("respond" in fault) {
        const text = JSON.stringify(fault.respond.body);
        res.writeHead(fault.respond.status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
        res.end(text);
        return;
      }
    }
    await forward(req, res, url, watch);
  }

  async function forward(req: IncomingMessage, res: ServerResponse, url: URL, watch: boolean): Promise<void> {
    const cluster = upstream.getCurrentCluster();
    if (!cluster) throw new Error("upstream kubeconfig has no current cluster");
    const target = new URL(cluster.server.replace(/\/+$/, "") + url.pathname + url.search);
    const options: Record<string, unknown> & { headers?: Record<string, string> } = { method: req.method, headers: {} };
    await upstream.applyToHTTPSOptions(options);
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    for (const name of ["accept", "content-type", "content-length", "user-agent"]) {
      const value = req.headers[name];
      if (typeof value === "string") headers[name] = value;
    }
    const send = target.protocol === "https:" ? httpsRequest : httpRequest;
    const outgoing = send(target, { ...options, headers }, (upstreamRes) => relay(upstreamRes, res, url.pathname, watch));
    outgoing.on("error", () => res.destroy());
    res.on("close", () => outgoing.destroy());
    req.pipe(outgoing);
  }

  function relay(upstreamRes: IncomingMessage, res: ServerResponse, path: string, watch: boolean): void {
    const headers = { ...upstreamRes.headers };
    delete headers["content-length"];
    delete headers["transfer-encoding"];
    delete headers.connection;
    res.writeHead(upstreamRes.statusCode ?? 502, headers);
    if (!watch) {
      upstreamRes.pipe(res);
      return;
    }
    res.flushHeaders();
    const open: OpenWatch = { path, res, stalled: false };
    watches.add(open);
    upstreamRes.on("data", (chunk: Buffer) => {
      if (!open.stalled && !res.destroyed) res.write(chunk);
    });
    upstreamRes.on("end", () => {
      if (!open.stalled) res.end();
    });
    upstreamRes.on("error", () => res.destroy());
    res.on("close", () => {
      watches.delete(open);
      upstreamRes.destroy();
    });
  }

  const selected = (path?: string | RegExp): OpenWatch[] => [...watches].filter((w) => matchesPath(path, w.path));

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    kubeConfig: () => kubeConfigFor(url),
    inject(rule) {
      const entry = { rule, left: rule.times ?? 1 };
      rules.push(entry);
      return () => {
        entry.left = 0;
      };
    },
    dropWatches(path) {
      const list = selected(path);
      for (const w of list) w.res.socket?.destroy();
      return list.length;
    },
    stallWatches(path) {
      const list = selected(path);
      for (const w of list) w.stalled = true;
      return list.length;
    },
    openWatches: (path) => selected(path).length,
    requests,
    count: (filter = {}) => requests.filter((r) => matches(filter, r)).length,
    async close() {
      for (const w of [...watches]) w.res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
