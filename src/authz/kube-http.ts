// One JSON request to the Kubernetes API with a KubeConfig's credentials, for what client-node's
// ListWatch leaves to its caller (the list) and for SubjectAccessReviews (sar.ts; here in authz/ so
// that both the informers and the reviewer use it). node:http(s) rather than the generated clients, so
// that a page of 500 pods is parsed once as plain JSON (no model classes, no Date objects) and
// stripped at once; KubeConfig.applyToHTTPSOptions supplies CA, client certificate, token, exec
// credentials and proxy agent exactly as for every other client-node request.
import { request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsRequest } from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";

/** An API answer other than 2xx, with the Status object's fields when the server sent one. */
export class KubeApiError extends Error {
  /** HTTP status; client-node's ListWatch reads `statusCode` (410 → relist). */
  readonly statusCode: number;
  /** The same number, as client-node's ApiException names it. */
  readonly code: number;
  /** Status.reason, e.g. `Expired`, `NotFound`, `Forbidden`. */
  readonly reason: string | undefined;
  /** The answer: the Status object when it was one, else its text (as client-node's ApiException). */
  readonly body: unknown;

  constructor(statusCode: number, message: string, reason?: string, body?: unknown) {
    super(message);
    this.name = "KubeApiError";
    this.statusCode = statusCode;
    this.code = statusCode;
    this.reason = reason;
    this.body = body;
  }
}

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface KubeRequest {
  readonly method?: "GET" | "POST" | "PUT" | "DELETE";
  /** Absolute API path, e.g. `/api/v1/pods`. */
  readonly path: string;
  readonly query?: Query;
  readonly body?: unknown;
  readonly signal?: AbortSignal;
  /** Whole-request limit; default 60 s. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** The URL of `path` on the current cluster, with the defined query parameters. */
export function apiUrl(kc: KubeConfig, path: string, query: Query = {}): URL {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const url = new URL(cluster.server.replace(/\/+$/, "") + path);
  for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
  return url;
}

/**
 * Sends one request and parses the JSON answer. Rejects with KubeApiError for a non-2xx answer
 * (message from the Status object when there is one), and with the transport's error otherwise.
 */
export async function kubeRequest<T>(kc: KubeConfig, req: KubeRequest): Promise<T> {
  const url = apiUrl(kc, req.path, req.query);
  const options: RequestOptions & Record<string, unknown> = { method: req.method ?? "GET", headers: {} };
  await kc.applyToHTTPSOptions(options);
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
  const headers: Record<string, string | number> = {
    ...(options.headers as Record<string, string>),
    Accept: "application/json",
    ...(payload && { "Content-Type": "application/json", "Content-Length": payload.length }),
  };
  const signals = [AbortSignal.timeout(req.timeoutMs ?? DEFAULT_TIMEOUT_MS), ...(req.signal ? [req.signal] : [])];
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const outgoing = send(url, { ...options, headers, signal: AbortSignal.any(signals) }, resolve);
    outgoing.on("error", reject);
    outgoing.end(payload);
  });
  const text = await readBody(response);
  const status = response.statusCode ?? 0;
  if (status < 200 || status >= 300) throw errorOf(status, text, `${req.method ?? "GET"} ${req.path}`);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`${req.method ?? "GET"} ${req.path}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
}

async function readBody(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function errorOf(status: number, text: string, what: string): KubeApiError {
  try {
    const body = JSON.parse(text) as { kind?: string; message?: string; reason?: string };
    if (body.kind === "Status") return new KubeApiError(status, `${what}: HTTP ${status}: ${body.message ?? body.reason ?? ""}`, body.reason, body);
  } catch {
    // not JSON: fall through to the raw text
  }
  return new KubeApiError(status, `${what}: HTTP ${status}: ${text.slice(0, 200)}`, undefined, text);
}
